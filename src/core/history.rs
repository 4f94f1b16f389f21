//! What each participant of a session looked like before each recent change (issue 18, lever 4).
//!
//! A subscription told everything up to a mark believes what the session showed at that mark
//! (`Subscription::told_mark`), but for the few participants it believes otherwise
//! (`subscription::Beliefs`). So it keeps no copy of what it was told of every participant, and
//! its memory does not grow with the session's size. The facts at a mark are today's facts but
//! for the participants changed since, whose facts before their first change since the mark this
//! history holds.
//!
//! A partial document looks only at the participants changed since the subscription's mark (and
//! at those it believes otherwise): its cost grows with the changes, not with the session (issue
//! 16). The history is cut short only after every subscription still behind the cut has been
//! moved past it (`Notifier::trim_history`).
use super::bytes::OutOfMemory;
use super::conference_info::EndpointStatus;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// What a document's view of a participant depends on (`notifier::view::Shown`), as of a mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub status: EndpointStatus,
    pub privacy: bool,
    /// R95: the participant is the session's chairman.
    pub chair: bool,
    pub nick_tag: u32,
    pub contact_tag: u32,
    pub departure_tag: u32,
}

/// One change: participant `idx`'s facts just before it (None: not in the session yet).
#[derive(Debug, Clone, Copy)]
struct Entry {
    idx: u32,
    before: Option<Facts>,
}

/// The mark of a subscription never told anything: it believes nothing but its `Beliefs`.
pub const NEVER: u64 = 0;

/// Changes kept at least, whatever the session's size.
const MIN_KEPT: usize = 64;

#[derive(Debug)]
pub struct History<A: Allocator> {
    /// The mark of `entries[0]` (from 1: `NEVER` is no mark).
    first: u64,
    entries: Vec<Entry, A>,
}

impl<A: Allocator> History<A> {
    pub fn new_in(alloc: A) -> Self {
        History {
            first: 1,
            entries: Vec::new_in(alloc),
        }
    }

    /// The mark of a subscription told everything now.
    pub fn mark(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The oldest mark the history can answer for.
    pub fn oldest(&self) -> u64 {
        self.first
    }

    /// Room for `n` more changes, so that recording them cannot fail.
    pub fn reserve(&mut self, n: usize) -> Result<(), OutOfMemory> {
        self.entries.try_reserve(n).map_err(|_| OutOfMemory)
    }

    /// Participant `idx` is about to change; `before`: its facts now (None: a new one).
    pub fn record(&mut self, idx: usize, before: Option<Facts>) -> Result<(), OutOfMemory> {
        let idx = u32::try_from(idx).map_err(|_| OutOfMemory)?;
        self.reserve(1)?;
        self.entries.push(Entry { idx, before });
        Ok(())
    }

    /// The participants changed since `mark`, ascending and each once, with their facts at
    /// `mark` (None: not in the session then), into `out`; false when the history cannot tell
    /// (`NEVER`, cut short past it, or a mark it never gave).
    pub fn since(&self, mark: u64, out: &mut std::vec::Vec<(usize, Option<Facts>)>) -> bool {
        out.clear();
        if mark == NEVER || mark < self.first || mark > self.mark() {
            return false;
        }
        let from = (mark - self.first) as usize;
        out.extend(
            self.entries[from..]
                .iter()
                .map(|e| (e.idx as usize, e.before)),
        );
        // stable: of a participant's changes, the first since the mark comes first and stays
        out.sort_by_key(|&(i, _)| i);
        out.dedup_by_key(|&mut (i, _)| i);
        true
    }

    /// Changes a session of `participants` keeps at least.
    pub fn keeps(participants: usize) -> usize {
        participants.max(MIN_KEPT)
    }

    /// Where to cut the history short, if it holds more than twice the `keep` changes it
    /// needs (`keeps`): the mark that becomes the oldest. The subscriptions behind a cut are
    /// then moved along once per `keep` changes at most.
    pub fn cut_point(&self, keep: usize) -> Option<u64> {
        (self.entries.len() > keep.saturating_mul(2)).then(|| self.mark() - keep as u64)
    }

    /// Forgets the changes before `mark`; no subscription may still be behind it.
    pub fn cut(&mut self, mark: u64) {
        let n = (mark.saturating_sub(self.first) as usize).min(self.entries.len());
        self.entries.drain(..n);
        self.first += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    fn facts(nick_tag: u32) -> Option<Facts> {
        Some(Facts {
            status: EndpointStatus::Connected,
            privacy: false,
            chair: false,
            nick_tag,
            contact_tag: 0,
            departure_tag: 0,
        })
    }

    #[test]
    fn tells_the_facts_at_a_mark_of_the_participants_changed_since() {
        let mut h = History::new_in(Global);
        h.record(3, None).unwrap();
        let m = h.mark();
        let mut out = std::vec::Vec::new();
        assert!(h.since(m, &mut out));
        assert!(out.is_empty());
        h.record(7, facts(1)).unwrap();
        h.record(2, None).unwrap();
        h.record(7, facts(2)).unwrap();
        assert!(h.since(m, &mut out));
        assert_eq!(out, [(2, None), (7, facts(1))], "the first change's before");
        assert!(h.since(m + 2, &mut out));
        assert_eq!(out, [(7, facts(2))]);
    }

    #[test]
    fn cannot_tell_for_never_a_future_mark_or_one_cut_off() {
        let mut h = History::new_in(Global);
        let mut out = std::vec::Vec::new();
        assert!(!h.since(NEVER, &mut out));
        let m = h.mark();
        for i in 0..3 * MIN_KEPT {
            h.record(i, None).unwrap();
        }
        assert!(!h.since(h.mark() + 1, &mut out), "a future mark");
        let cut = h
            .cut_point(History::<Global>::keeps(10))
            .expect("more than twice what it keeps");
        assert_eq!(h.mark() - cut, MIN_KEPT as u64);
        h.cut(cut);
        assert_eq!(h.oldest(), cut);
        assert!(!h.since(m, &mut out), "cut off");
        assert!(h.since(cut, &mut out));
        assert_eq!(out.len(), MIN_KEPT);
        assert_eq!(h.cut_point(MIN_KEPT), None, "nothing more to cut");
        assert_eq!(
            History::<Global>::keeps(2 * MIN_KEPT),
            2 * MIN_KEPT,
            "a larger session keeps more"
        );
    }
}
