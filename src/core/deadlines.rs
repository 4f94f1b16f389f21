//! When the notifier's timer must look at a subscription again: its expiry (R30), a NOTIFY
//! held back by the rate limit (R61) or by a reply still on its way (R25).
//!
//! A binary min-heap of (deadline, subscription id) in the notifier's allocator, with at most
//! one live entry per subscription: `armed` holds each subscription's earliest deadline, and a
//! heap entry is live only while it matches it. Superseded and cancelled entries stay in the
//! heap until they surface or the heap is compacted (when it holds more dead entries than live
//! ones), so no operation has to find an entry inside the heap: arm O(log n), cancel O(1),
//! each due subscription O(log n), and the timer never looks at a subscription that has
//! nothing due.
use super::bytes::OutOfMemory;
use super::key::{new_map, Map};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: u64,
    id: u32,
}

/// Below this many entries the heap is never compacted (not worth a pass).
const COMPACT_MIN: usize = 64;

pub struct Deadlines<A: Allocator + Clone> {
    heap: AVec<Entry, A>,
    armed: Map<u32, u64, A>,
}

impl<A: Allocator + Clone> Deadlines<A> {
    pub fn new_in(seed: u64, alloc: A) -> Self {
        Deadlines {
            heap: AVec::new_in(alloc.clone()),
            armed: new_map(seed, alloc),
        }
    }

    /// Wakes `id` at `at` or earlier: an earlier deadline already armed is kept (whoever
    /// handles it re-arms what is still needed).
    pub fn arm(&mut self, id: u32, at: u64) -> Result<(), OutOfMemory> {
        if self.armed.get(&id).is_some_and(|&cur| cur <= at) {
            return Ok(());
        }
        self.compact_if_mostly_dead();
        self.heap.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.armed.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.armed.insert(id, at);
        self.heap.push(Entry { at, id });
        let last = self.heap.len() - 1;
        sift_up(&mut self.heap, last);
        Ok(())
    }

    /// Forgets `id` (its subscription is gone); its heap entry dies in place.
    pub fn cancel(&mut self, id: u32) {
        self.armed.remove(&id);
    }

    /// The next subscription whose deadline is `now` or earlier, disarmed; None when none is.
    pub fn pop_due(&mut self, now: u64) -> Option<u32> {
        while let Some(&top) = self.heap.first() {
            if top.at > now {
                return None;
            }
            pop_min(&mut self.heap);
            if self.armed.get(&top.id) == Some(&top.at) {
                self.armed.remove(&top.id);
                return Some(top.id);
            }
        }
        None
    }

    /// The deadline of `id`, if armed.
    pub fn deadline_of(&self, id: u32) -> Option<u64> {
        self.armed.get(&id).copied()
    }

    /// The earliest armed deadline (skipping dead entries at the top is left to `pop_due`, so
    /// this may be earlier than the earliest live one: a wake-up hint, never a late one).
    pub fn next_hint(&self) -> Option<u64> {
        self.heap.first().map(|e| e.at)
    }

    /// Subscriptions armed.
    pub fn armed(&self) -> usize {
        self.armed.len()
    }

    /// Heap entries, dead ones included (bounded by about twice `armed`).
    pub fn entries(&self) -> usize {
        self.heap.len()
    }

    /// Drops dead entries once they outnumber the live ones: amortised O(1) per arm/cancel,
    /// and the heap stays within about twice the number of armed subscriptions.
    fn compact_if_mostly_dead(&mut self) {
        if self.heap.len() < COMPACT_MIN || self.heap.len() <= 2 * self.armed.len() {
            return;
        }
        let armed = &self.armed;
        self.heap.retain(|e| armed.get(&e.id) == Some(&e.at));
        // a live id may appear twice (cancelled, then armed again at the same time): harmless,
        // the second one dies when the first is popped
        for i in (0..self.heap.len() / 2).rev() {
            sift_down(&mut self.heap, i);
        }
    }
}

fn sift_up<A: Allocator>(h: &mut AVec<Entry, A>, mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if h[parent] <= h[i] {
            break;
        }
        h.swap(parent, i);
        i = parent;
    }
}

fn sift_down<A: Allocator>(h: &mut AVec<Entry, A>, mut i: usize) {
    let n = h.len();
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < n && h[l] < h[m] {
            m = l;
        }
        if r < n && h[r] < h[m] {
            m = r;
        }
        if m == i {
            return;
        }
        h.swap(i, m);
        i = m;
    }
}

fn pop_min<A: Allocator>(h: &mut AVec<Entry, A>) {
    let last = h.len() - 1;
    h.swap(0, last);
    h.pop();
    if !h.is_empty() {
        sift_down(h, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    fn drain(d: &mut Deadlines<Global>, now: u64) -> std::vec::Vec<u32> {
        std::iter::from_fn(|| d.pop_due(now)).collect()
    }

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut d = Deadlines::new_in(1, Global);
        for (id, at) in [(1, 50), (2, 10), (3, 30), (4, 10)] {
            d.arm(id, at).unwrap();
        }
        assert_eq!(drain(&mut d, 5), [0u32; 0]);
        assert_eq!(drain(&mut d, 30), [2, 4, 3]);
        assert_eq!(drain(&mut d, 100), [1]);
        assert_eq!(d.armed(), 0);
    }

    #[test]
    fn earliest_deadline_wins_and_cancel_silences() {
        let mut d = Deadlines::new_in(1, Global);
        d.arm(7, 100).unwrap();
        d.arm(7, 200).unwrap(); // later: kept at 100
        assert_eq!(d.deadline_of(7), Some(100));
        d.arm(7, 40).unwrap(); // earlier: replaces
        assert_eq!(drain(&mut d, 99), [7]);
        assert_eq!(
            drain(&mut d, 1000),
            [0u32; 0],
            "the superseded entry is dead"
        );
        d.arm(8, 10).unwrap();
        d.cancel(8);
        assert_eq!(drain(&mut d, 1000), [0u32; 0]);
    }

    #[test]
    fn dead_entries_are_compacted() {
        let mut d = Deadlines::new_in(1, Global);
        for i in 0..100_000u32 {
            d.arm(i, 1_000_000 + u64::from(i)).unwrap();
            d.cancel(i);
        }
        assert!(d.entries() <= COMPACT_MIN + 1, "{} entries", d.entries());
    }
}
