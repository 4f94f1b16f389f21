//! Changes that queue their NOTIFYs (issue 18, lever 3). A change to a session of N
//! subscribers marks them and queues them here; the caller that fed it (an RPC, a script, a peer)
//! returns at once, and the module's fan-out processes drain the queue a batch at a time, each
//! batch under the lock only while its NOTIFYs are built. Order per dialog stays (R32): a
//! subscription is polled like any other, so it never has two NOTIFYs in flight.
use super::*;

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// Whether changes queue their NOTIFYs for `drain_fan_out` (true) or return them (false,
    /// the default).
    pub fn set_deferred_fan_out(&mut self, on: bool) {
        self.defer_fan_out = on;
    }

    /// Subscriptions queued and not drained yet.
    pub fn fan_out_pending(&self) -> usize {
        self.fan_out_queue.len() - self.fan_out_head
    }

    /// A change made subscription `id` due: queued when changes defer (and the queue can
    /// grow), else polled now into `out`.
    pub(super) fn poll_or_queue(
        &mut self,
        cfg: &Config,
        now: u64,
        id: u32,
        fan: &mut FanOut,
        out: &mut Vec<Notify>,
    ) {
        if self.defer_fan_out {
            let Some(sub) = self.subs.get_mut(&id) else {
                return;
            };
            if sub.queued {
                return;
            }
            if self.fan_out_queue.try_reserve(1).is_ok() {
                sub.queued = true;
                self.fan_out_queue.push(id);
                return;
            }
        }
        out.extend(self.poll_in(cfg, now, id, fan));
    }

    /// The NOTIFYs of at most `max` queued subscriptions, oldest first, sharing their work as
    /// one fan-out (`shared.rs`).
    pub fn drain_fan_out(&mut self, cfg: &Config, now: u64, max: usize) -> Vec<Notify> {
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        let end = self
            .fan_out_head
            .saturating_add(max)
            .min(self.fan_out_queue.len());
        while self.fan_out_head < end {
            let id = self.fan_out_queue[self.fan_out_head];
            self.fan_out_head += 1;
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.queued = false;
                out.extend(self.poll_in(cfg, now, id, &mut fan));
            }
        }
        if self.fan_out_head == self.fan_out_queue.len() {
            self.fan_out_queue.clear();
            self.fan_out_head = 0;
        }
        out
    }
}
