//! What a subscription costs the shared-memory allocator. In the module every shm allocation
//! and free takes Kamailio's one allocator lock, the measured bottleneck of the call rate
//! (docs/performance.md, "The missed targets"): a subscription's strings are one block, and
//! the notifier keeps no other per-subscription copy of them.
use crate::common::{alice_subscribe, connected, unthrottled_cfg, ALICE, SESSION};
use allocator_api2::alloc::{AllocError, Allocator, Global, Layout};
use imconf::core::config::Config;
use imconf::core::notifier::{Notifier, SubscribeRequest};
use imconf::core::session::SessionKind;
use std::cell::Cell;
use std::ptr::NonNull;

thread_local! {
    // allocate and grow/shrink calls (each one takes the allocator lock), frees, bytes held
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

/// The heap, counting what passes through it (per test thread). Zero-sized like the module's
/// `ShmAlloc`, so the structures measured have the module's sizes.
#[derive(Clone, Copy, Default)]
struct Counting;

impl Counting {
    fn allocs(&self) -> u64 {
        ALLOCS.get()
    }
    fn frees(&self) -> u64 {
        FREES.get()
    }
    fn live(&self) -> i64 {
        LIVE.get()
    }
    fn count(&self, added: usize, removed: usize) {
        LIVE.set(LIVE.get() + added as i64 - removed as i64);
        if added > 0 {
            ALLOCS.set(ALLOCS.get() + 1);
        } else {
            FREES.set(FREES.get() + 1);
        }
    }
}

unsafe impl Allocator for Counting {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.count(layout.size(), 0);
        Global.allocate(layout)
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.count(0, layout.size());
        Global.deallocate(ptr, layout)
    }
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.count(new.size(), old.size());
        Global.grow(ptr, old, new)
    }
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        ALLOCS.set(ALLOCS.get() + 1);
        LIVE.set(LIVE.get() + new.size() as i64 - old.size() as i64);
        Global.shrink(ptr, old, new)
    }
}

/// With 224 subscriptions the notifier's hash tables (256 buckets) are as full as they get:
/// the bytes per subscription below include the least of their share.
const SUBS: usize = 224;

/// Headers of a SUBSCRIBE that carries an Event `id` too (R34): every string a dialog keeps.
const HEADERS_WITH_ID: [(&[u8], &[u8]); 3] = [
    (b"Event", b"conference;id=e1"),
    (b"Accept-Contact", b"*;+g.oma.sip-im"),
    (b"P-Asserted-Identity", b"<sip:alice@example.net>"),
];

fn request<'a>(call_id: &'a [u8]) -> SubscribeRequest<'a> {
    SubscribeRequest {
        record_route: b"<sip:proxy.example.net;lr>",
        socket: b"udp:192.0.2.10:5060",
        ..alice_subscribe(call_id, &HEADERS_WITH_ID)
    }
}

fn config() -> Config {
    Config {
        max_subs_per_session: 100_000,
        max_subs_per_user_per_session: 100_000,
        ..unthrottled_cfg()
    }
}

/// A session with Alice and `others` more participants, and SUBS idle subscriptions of Alice
/// (first NOTIFY answered). Returns the allocator calls of each subscription (SUBSCRIBE,
/// first NOTIFY and its 200) and the bytes the subscriptions hold.
fn subscribe_all(
    n: &mut Notifier<Counting>,
    a: &Counting,
    cfg: &Config,
    others: usize,
) -> (Vec<u64>, i64) {
    n.open_session(SESSION, SessionKind::AdHoc, None).unwrap();
    n.participant(cfg, 0, SESSION, &connected(ALICE)).unwrap();
    for i in 0..others {
        let who = format!("sip:user{i}@example.net");
        n.participant(cfg, 0, SESSION, &connected(who.as_bytes()))
            .unwrap();
    }
    let live_before = a.live();
    let mut per_sub = Vec::new();
    for i in 0..SUBS {
        let call_id = format!("call-{i:05}@192.0.2.1");
        let before = a.allocs();
        let out = n.subscribe(cfg, 0, &request(call_id.as_bytes()), b"i0-0123456789abcdef");
        assert_eq!(out.reply.code, 200);
        let token = out.notifies[0].token;
        assert!(n.notify_completed(cfg, 0, token, 200).is_empty());
        per_sub.push(a.allocs() - before);
    }
    (per_sub, a.live() - live_before)
}

/// What most subscriptions cost (the others also grew a map or a heap, amortised).
fn typical(counts: &[u64]) -> u64 {
    let mut c = counts.to_vec();
    c.sort_unstable();
    c[c.len() / 2]
}

#[test]
fn subscription_strings_are_one_allocation() {
    let a = Counting;
    let cfg = config();
    let mut n = Notifier::new_in(7, a);
    let (per_sub, live) = subscribe_all(&mut n, &a, &cfg, 2);
    let total: u64 = per_sub.iter().sum();
    println!(
        "per subscription: {} allocator calls typically, {:.2} on average; {} bytes live \
         ({} in the subscription itself)",
        typical(&per_sub),
        total as f64 / SUBS as f64,
        live / SUBS as i64,
        std::mem::size_of::<imconf::core::subscription::Subscription<Counting>>()
    );
    // its strings, in one block; what its subscriber was told of three participants is inline
    assert_eq!(typical(&per_sub), 1);

    // unsubscribing frees the same blocks again
    let frees_before = a.frees();
    let mut frees = Vec::new();
    for i in 0..SUBS {
        let call_id = format!("call-{i:05}@192.0.2.1");
        let headers: [(&[u8], &[u8]); 4] = [
            HEADERS_WITH_ID[0],
            HEADERS_WITH_ID[1],
            HEADERS_WITH_ID[2],
            (b"Expires", b"0"),
        ];
        let req = SubscribeRequest {
            to_tag: b"i0-0123456789abcdef",
            cseq: 2,
            ..alice_subscribe(call_id.as_bytes(), &headers)
        };
        let before = a.frees();
        let out = n.subscribe(&cfg, 0, &req, b"");
        assert_eq!(out.reply.code, 200);
        n.notify_completed(&cfg, 0, out.notifies[0].token, 200);
        frees.push(a.frees() - before);
    }
    println!(
        "per unsubscription: {} frees typically, {} in all",
        typical(&frees),
        a.frees() - frees_before
    );
    assert_eq!(typical(&frees), 1);
    assert_eq!(n.subscription_count(), 0);
}

/// Issue 18, lever 4: a subscription keeps no copy of what it was told of each participant
/// (core::history), so it costs the same in a session of 1000 as in one of 3: one block, the
/// same bytes.
#[test]
fn a_subscription_costs_the_same_whatever_the_session_size() {
    let a = Counting;
    let cfg = config();
    let mut bytes = Vec::new();
    for others in [2, 40, 250, 1000] {
        let mut n = Notifier::new_in(7, a);
        let (per_sub, live) = subscribe_all(&mut n, &a, &cfg, others);
        assert_eq!(typical(&per_sub), 1, "{} participants", others + 1);
        bytes.push(live / SUBS as i64);
    }
    println!("bytes per subscription at 3, 41, 251, 1001 participants: {bytes:?}");
    assert!(bytes.iter().all(|&b| b == bytes[0]), "{bytes:?}");
}
