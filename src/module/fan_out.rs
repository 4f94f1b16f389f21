//! The fan-out processes (issue 18, lever 3; core/notifier/fan_out_queue.rs). With
//! `fanout_workers` > 0 a change queues its NOTIFYs in its slot's notifier and the caller that
//! fed it only wakes a fan-out process: an RPC or a script call returns at once whatever the
//! number of subscribers, and a large fan-out is sent by several processes (cores) at a time.
use super::notify::send_all;
use super::state::{params, shared};
use crate::kam::{clock, fanout};

/// Subscriptions polled per lock of the slot: the lock is held only while their NOTIFYs are
/// built, and the rest of the queue goes to the next free process meanwhile.
const BATCH: usize = 128;

/// After a change: its queued NOTIFYs (if any) go to a fan-out process; when none can be
/// woken, this caller sends them itself.
pub fn start(slot: usize, queued: bool) {
    if queued && fanout::wake(slot).is_err() {
        work(slot);
    }
}

/// One batch of `slot`'s queue; what is left goes to the next process woken (or, when none
/// can be, is sent by this one too).
pub fn work(slot: usize) {
    let Some(notifier) = shared().slots.get(slot) else {
        return;
    };
    loop {
        let (batch, more) = {
            let mut n = notifier.lock();
            let batch = n.drain_fan_out(&params().config, clock::now_ms(), BATCH);
            (batch, n.fan_out_pending() > 0)
        };
        let handed = more && fanout::wake(slot).is_ok();
        send_all(slot, batch);
        if !more || handed {
            return;
        }
    }
}
