//! Which participants of a session changed lately: a subscription told everything up to a
//! mark looks only at the participants changed since, not at every participant (R55, R57: the
//! participants nobody changed have nothing new to report). The cost of a partial document then
//! grows with the changes, not with the session's size (issue 16: a change's cost grows with the
//! profiles in use, not with subscribers x participants).
//!
//! Fixed size, inside the session (no allocation); a mark older than the last `JOURNAL_LEN`
//! changes falls back to looking at every participant, which is always right.

/// Changes remembered.
pub const JOURNAL_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct Journal {
    /// The number the next change gets (from 1: a mark of 0 means "never told").
    next: u64,
    /// Participant index of change `c` at `recent[c % JOURNAL_LEN]`.
    recent: [u32; JOURNAL_LEN],
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            next: 1,
            recent: [0; JOURNAL_LEN],
        }
    }
}

/// The mark of a subscription never told anything (or whose state is not known to match).
pub const NEVER: u64 = 0;

impl Journal {
    /// The mark of a subscription told everything now.
    pub fn mark(&self) -> u64 {
        self.next
    }

    /// What a document shows of participant `idx` may have changed.
    pub fn changed(&mut self, idx: usize) {
        let Ok(idx) = u32::try_from(idx) else {
            return self.forget();
        };
        self.recent[(self.next % JOURNAL_LEN as u64) as usize] = idx;
        self.next += 1;
    }

    /// Anything may have changed: every mark given so far is too old.
    pub fn forget(&mut self) {
        self.next += JOURNAL_LEN as u64 + 1;
    }

    /// The participants changed since `mark`, ascending and each once, into `out`; false when
    /// the journal cannot tell (a mark of `NEVER`, or older than what it remembers).
    pub fn since(&self, mark: u64, out: &mut Vec<usize>) -> bool {
        if mark == NEVER || mark > self.next || self.next - mark > JOURNAL_LEN as u64 {
            return false;
        }
        out.clear();
        out.extend(
            (mark..self.next).map(|c| self.recent[(c % JOURNAL_LEN as u64) as usize] as usize),
        );
        out.sort_unstable();
        out.dedup();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_changes_since_a_mark_sorted_and_once() {
        let mut j = Journal::default();
        j.changed(3);
        let m = j.mark();
        let mut out = Vec::new();
        assert!(j.since(m, &mut out));
        assert!(out.is_empty());
        j.changed(7);
        j.changed(2);
        j.changed(7);
        assert!(j.since(m, &mut out));
        assert_eq!(out, [2, 7]);
    }

    #[test]
    fn cannot_tell_for_a_mark_never_told_or_too_old_or_forgotten() {
        let mut j = Journal::default();
        let mut out = Vec::new();
        assert!(!j.since(NEVER, &mut out));
        let m = j.mark();
        for i in 0..JOURNAL_LEN {
            j.changed(i);
        }
        assert!(
            j.since(m, &mut out),
            "exactly JOURNAL_LEN changes are remembered"
        );
        assert_eq!(out.len(), JOURNAL_LEN);
        j.changed(0);
        assert!(!j.since(m, &mut out), "one more: too old");
        let m = j.mark();
        j.forget();
        assert!(!j.since(m, &mut out));
        assert!(
            !j.since(m + 1000, &mut out),
            "a mark from the future is not believed"
        );
    }
}
