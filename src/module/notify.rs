//! Sending NOTIFYs and applying their final responses, in whichever process that happens
//! (worker, timer process, RPC process). No slot lock is held while tm is called: tm may run
//! callbacks synchronously that re-enter this module.
use super::fan_out;
use super::state::{params, shared};
use crate::core::notifier::{Notify, TOKEN_BITS};
use crate::kam::lock::try_lock_for;
use crate::kam::{clock, process, tm};
use crate::{kdbg, kwarn};

/// Sends `notifies` of `slot`; a NOTIFY tm refuses counts as failed (R31), which may free the
/// subscription's turn for the next one.
pub fn send_all(slot: usize, notifies: Vec<Notify>) {
    let mut queue = notifies;
    while let Some(n) = queue.pop() {
        let token = ((slot as u64) << TOKEN_BITS) | n.token;
        if tm::send_notify(&n, token).is_ok() {
            kdbg!("NOTIFY cseq {} sent ({:?})", n.cseq, n.kind);
            continue;
        }
        kwarn!(
            "NOTIFY to {} not sent by tm; its state goes again shortly",
            String::from_utf8_lossy(&n.remote_target)
        );
        let more =
            shared().slots[slot]
                .lock()
                .notify_unsent(&params().config, clock::now_ms(), n.token);
        queue.extend(more);
    }
}

/// tm callback: the final response `code` of the NOTIFY sent with `token`.
pub fn completed(token: u64, code: u16) {
    let s = shared();
    let Some(slot) = s.slot_of_token(token) else {
        kwarn!("NOTIFY completion with a foreign token {token:#x}");
        return;
    };
    let next =
        s.slots[slot]
            .lock()
            .notify_completed(&params().config, clock::now_ms(), token, code);
    send_all(slot, next);
}

/// Timer process: expiries (R30) and rate-limited NOTIFYs (R61), one slot lock at a time; a
/// fan-out queue left waiting (a lost wake) gets a fan-out process again.
pub fn tick() {
    let s = shared();
    let cfg = &params().config;
    for slot in 0..s.slots.len() {
        let (due, queued) = {
            let mut n = s.slots[slot].lock();
            if n.subscription_count() == 0 {
                continue;
            }
            (n.tick(cfg, clock::now_ms()), n.fan_out_pending() > 0)
        };
        send_all(slot, due);
        fan_out::start(slot, queued);
    }
}

/// mod_destroy: R72 without persistence or cluster peers, `deactivated` to every subscriber.
/// In a copy of this process bounded in time: a tm lock left taken by an exited child would
/// block a send forever (kam/process.rs).
pub fn shutdown() {
    if let Err(why) = process::bounded(SHUTDOWN_LIMIT, deactivate_all) {
        kwarn!("shutdown: the deactivated NOTIFYs were not all sent ({why})");
    }
}

/// The longest a stop waits for its `deactivated` NOTIFYs (10 000 take about a second).
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(8);

fn deactivate_all() {
    let s = shared();
    let cfg = &params().config;
    for slot in 0..s.slots.len() {
        // Kamailio's children exit on SIGTERM wherever they are, possibly holding a slot lock
        // that nobody will release: waiting for it would hang the server's exit. R72 is best
        // effort, so such a slot is skipped after a short wait.
        let Some(mut notifier) = try_lock_for(&s.slots[slot], SHUTDOWN_LOCK_WAIT_MS) else {
            kwarn!("shutdown: hash slot {slot} is held by a process that exited; its subscribers get no deactivated NOTIFY");
            continue;
        };
        let last = notifier.shutdown(cfg, clock::now_ms());
        drop(notifier);
        send_all(slot, last);
    }
}

/// How long shutdown waits for a slot lock (a live holder keeps it for microseconds).
const SHUTDOWN_LOCK_WAIT_MS: u64 = 200;
