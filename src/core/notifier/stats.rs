//! What a notifier counts (`imconf.stats`, docs/interface.md).

/// Response codes counted by `Stats::replies`.
pub const COUNTED_CODES: [u16; 10] = [200, 400, 403, 404, 406, 423, 481, 489, 500, 0];

/// Counters of one notifier (docs/interface.md imconf.stats); the module sums them over slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Indexed like COUNTED_CODES; the last entry counts any other code.
    pub replies: [u64; COUNTED_CODES.len()],
    pub notifies_full: u64,
    pub notifies_partial: u64,
    pub notifies_terminated: u64,
    pub notify_ok: u64,
    pub notify_failed: u64,
    /// Participant changes merged into an already pending NOTIFY (R62).
    pub coalesced: u64,
    pub rejected_by_policy: u64,
    /// NOTIFYs that gave up their place under the cap, unanswered for `slow_notify_ms`.
    pub notifies_slow: u64,
    /// Retransmitted SUBSCRIBEs answered again from the subscription's state (R22, issue 18).
    pub retransmissions_answered: u64,
}

impl Stats {
    pub fn count_reply(&mut self, code: u16) {
        let i = COUNTED_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(COUNTED_CODES.len() - 1);
        self.replies[i] += 1;
    }

    pub fn add(&mut self, o: &Stats) {
        for (a, b) in self.replies.iter_mut().zip(o.replies.iter()) {
            *a += b;
        }
        self.notifies_full += o.notifies_full;
        self.retransmissions_answered += o.retransmissions_answered;
        self.notifies_partial += o.notifies_partial;
        self.notifies_terminated += o.notifies_terminated;
        self.notify_ok += o.notify_ok;
        self.notify_failed += o.notify_failed;
        self.coalesced += o.coalesced;
        self.rejected_by_policy += o.rejected_by_policy;
        self.notifies_slow += o.notifies_slow;
    }
}
