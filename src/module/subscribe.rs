//! `imconf_handle_subscribe()`: one SUBSCRIBE, end to end (R1-R38, docs/conformance.md).
use super::cluster;
use super::group_policy::DocumentPolicy;
use super::notify::send_all;
use super::state::{initial_local_tag, new_local_tag, params, shared, slot_of_tag};
use crate::core::notifier::{strings_block, SubscribeOutcome, SubscribeRequest};
use crate::core::profile::Profile;
use crate::core::reply::SubscribeError;
use crate::core::uri;
use crate::kam::clock;
use crate::kam::request::{Msg, ViewError};
use crate::kam::shm::ShmAlloc;
use crate::{kerr, kinfo};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `imconf_handle_subscribe([profile])`: the optional parameter names the subscription's
/// output profile (R94: oma, rcs, rfc4575; "" or "-": the configured default). Script return
/// value: 1 when a reply was sent (any code), -1 when none could be or the profile is unknown
/// (then nothing was sent: the script decides).
pub fn handle(msg: &Msg, args: &[&[u8]]) -> i32 {
    let profile = match args.first().copied() {
        None | Some(b"") | Some(b"-") => None,
        Some(name) => match Profile::parse(name) {
            Some(p) => Some(p),
            None => {
                kerr!(
                    "imconf_handle_subscribe: profile {:?} is not one of oma, rcs, rfc4575",
                    String::from_utf8_lossy(name)
                );
                return -1;
            }
        },
    };
    if args.len() > 1 {
        kerr!("imconf_handle_subscribe: at most one parameter, the profile");
        return -1;
    }
    // no tm transaction (issue 18): the reply goes statelessly, and a retransmission is
    // answered from the subscription it created (R22, `initial_local_tag`)
    let result = catch_unwind(AssertUnwindSafe(|| process(msg, profile)));
    let (slot, outcome, tag) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let code = match e {
                ViewError::Malformed => SubscribeError::Malformed,
                ViewError::Internal => SubscribeError::Internal,
            };
            let r = code.reply();
            kinfo!("SUBSCRIBE refused with {}: unparsable request", r.code);
            count_reply(r.code);
            return reply_or_fail(msg, r.code, r.reason, &r.headers, &new_local_tag(0));
        }
        Err(_) => {
            // A panic: the worker lives on and the subscriber gets a 500 (docs/interface.md).
            kerr!("panic while handling a SUBSCRIBE; answered 500");
            count_reply(500);
            return reply_or_fail(msg, 500, "Server Internal Error", b"", &new_local_tag(0));
        }
    };
    let rc = reply_or_fail(
        msg,
        outcome.reply.code,
        outcome.reply.reason,
        &outcome.reply.headers,
        &tag,
    );
    if rc < 0 {
        return reply_failed(msg, slot, outcome);
    }
    // R25: the NOTIFYs leave after the response
    send_all(slot, outcome.notifies);
    if let Some(id) = outcome.held {
        let next = shared().slots[slot]
            .lock()
            .reply_sent(&params().config, clock::now_ms(), id);
        send_all(slot, next);
    }
    rc
}

/// tm could not send the reply (shm is full). A subscriber answered nothing (or, by the script,
/// an error) must not keep a subscription it was never told about: its NOTIFYs fail as if tm had
/// refused them, which ends it (R31); then the module's own error goes out statelessly (sl needs
/// no shm). Regression test: robustness_shm_exhaustion (tests/integration/run.py).
fn reply_failed(msg: &Msg, slot: usize, outcome: SubscribeOutcome) -> i32 {
    let cfg = &params().config;
    let mut failed = outcome.notifies;
    if let Some(id) = outcome.held {
        failed.extend(
            shared().slots[slot]
                .lock()
                .reply_sent(cfg, clock::now_ms(), id),
        );
    }
    for n in failed {
        let more = shared().slots[slot]
            .lock()
            .notify_completed(cfg, clock::now_ms(), n.token, 500);
        send_all(slot, more);
    }
    let (code, reason) = if outcome.reply.code < 300 {
        (500, "Server Internal Error")
    } else {
        (outcome.reply.code, outcome.reply.reason)
    };
    kinfo!("SUBSCRIBE: tm could not send the reply; answered {code} statelessly");
    match msg.reply_stateless(code, reason) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

/// `imconf.stats` for a reply the core did not decide (and so did not count): the counters are
/// summed over the slots, so slot 0's serve.
fn count_reply(code: u16) {
    shared().slots[0].lock().stats.count_reply(code);
}

fn reply_or_fail(msg: &Msg, code: u16, reason: &str, headers: &[u8], tag: &[u8]) -> i32 {
    match msg.reply(code, reason, headers, tag) {
        Ok(()) => 1,
        Err(_) => -1,
    }
}

/// Runs the core under the slot's lock; returns the slot, the outcome and the reply's To-tag.
fn process(
    msg: &Msg,
    profile: Option<Profile>,
) -> Result<(usize, SubscribeOutcome, Vec<u8>), ViewError> {
    msg.with_view(|req| {
        let s = shared();
        // before any slot lock: it may parse reloaded group documents (groups.rs)
        let policy = DocumentPolicy::current();
        let cfg = &params().config;
        let now = clock::now_ms();
        let initial = req.to_tag.is_empty();
        if (initial && !cluster::serving()) || (!initial && !cluster::serving_in_dialog()) {
            let reply = SubscribeError::Starting.reply();
            kinfo!("SUBSCRIBE refused with 503: waiting for the cluster's sessions");
            count_reply(503);
            let outcome = SubscribeOutcome {
                reply,
                notifies: Vec::new(),
                held: None,
            };
            return (0, outcome, new_local_tag(0));
        }
        let mut slot = if initial {
            s.slot_of_uri(req.ruri).unwrap_or(0)
        } else {
            // a tag that is not ours finds no dialog in slot 0: 481 (R13)
            slot_of_tag(req.to_tag)
                .filter(|&i| i < s.slots.len())
                .unwrap_or(0)
        };
        let mut tag = if initial {
            initial_local_tag(slot, req.call_id, req.from_tag, req.cseq)
        } else {
            req.to_tag.to_vec()
        };
        // a new subscription's strings take one shm block: allocated before the slot lock, so
        // that lock is never held waiting for the shm allocator's (docs/performance.md)
        let mut block = strings_block(cfg, req, &tag, ShmAlloc);
        let mut notifier = s.slots[slot].lock();
        if let Some(user) = &cfg.debug_panic_user {
            if uri::user_part(req.ruri) == Some(user.as_bytes()) {
                panic!("debug_panic_user: deliberate panic for {user}");
            }
        }
        // R3: a group identity stands for its session, which may live in another slot
        let resolved = if initial {
            notifier.resolve(req.ruri)
        } else {
            None
        };
        if let Some(target) = &resolved {
            let home = s.slot_of_uri(target).unwrap_or(slot);
            if home != slot {
                drop(notifier); // never hold two slot locks
                slot = home;
                tag = initial_local_tag(slot, req.call_id, req.from_tag, req.cseq);
                notifier = s.slots[slot].lock();
            }
        }
        let routed = SubscribeRequest {
            ruri: resolved.as_deref().unwrap_or(req.ruri),
            profile,
            ..*req
        };
        let outcome = notifier.subscribe_in_block(cfg, now, &routed, &tag, &policy, &mut block);
        drop(notifier);
        drop(block); // unused (refused, in-dialog): freed outside the lock too
        if outcome.reply.code >= 300 {
            kinfo!(
                "SUBSCRIBE to {} refused with {} {}",
                String::from_utf8_lossy(req.ruri),
                outcome.reply.code,
                outcome.reply.reason
            );
        }
        (slot, outcome, tag)
    })
}
