//! Properties of the cluster seal (R96, src/core/cluster_auth.rs) and of the operations reader
//! (src/core/cluster.rs), on hostile input: no panic whatever the bytes; a sealed body opens only
//! unchanged and only under its key; the replay table agrees with a model that remembers every
//! (sender, counter) ever accepted. `PROPTEST_CASES` raises the case count (`make fuzz`: 20000).
use imconf::core::cluster::{decode, encode, Op};
use imconf::core::cluster_auth::{Keys, Refusal, Replay, Sealed, REPLAY_WINDOW};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const KEY: &[u8] = b"property-test-cluster-secret-0123";
const OTHER: &[u8] = b"property-test-other-secret-456789";

fn keys() -> Keys {
    Keys::new(KEY, &[]).unwrap()
}

/// Operation text: real operation shapes with damaged fields mixed in.
fn ops_text() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| {
            if b.is_empty() { b"-".to_vec() } else { b.iter().map(|c| format!("{c:02x}")).collect::<String>().into_bytes() }
        }),
        1 => "[0-9a-zA-Z\\-]{0,7}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..4),
    ];
    let line = (
        proptest::sample::select(vec![
            "O", "C", "P", "S", "Q", "D", "U", "X", "H", "B", "Z", "",
        ]),
        proptest::collection::vec(field, 0..13),
    )
        .prop_map(|(tag, fields)| {
            let mut l = tag.as_bytes().to_vec();
            for f in fields {
                l.push(b' ');
                l.extend(f);
            }
            l.push(b'\n');
            l
        });
    proptest::collection::vec(line, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn open_never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = keys().open(&body);
        let mut framed = b"imconf-cluster/2 ".to_vec();
        framed.extend_from_slice(&body);
        prop_assert!(keys().open(&framed).is_err());
    }

    #[test]
    fn decode_never_panics_and_round_trips_what_it_reads(text in ops_text()) {
        if let Ok(ops) = decode(&text) {
            let again: Vec<Op> = encode(&ops).iter().flat_map(|b| decode(b).unwrap()).collect();
            prop_assert_eq!(again, ops);
        }
    }

    #[test]
    fn a_sealed_body_opens_only_unchanged_and_only_under_its_key(
        ops in ops_text(),
        node in any::<u64>(),
        time in any::<u64>(),
        counter in any::<u64>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let body = keys().seal(node, time, counter, &ops);
        let m = keys().open(&body).unwrap();
        prop_assert_eq!((m.node, m.time_ms, m.counter, m.ops), (node, time, counter, &ops[..]));
        prop_assert_eq!(Keys::new(OTHER, &[]).unwrap().open(&body), Err(Refusal::BadMac));
        let mut damaged = body.clone();
        let i = at.index(damaged.len());
        damaged[i] ^= flip;
        prop_assert!(keys().open(&damaged).is_err(), "byte {} changed and still opened", i);
        let mut cut = body.clone();
        cut.truncate(i);
        prop_assert!(keys().open(&cut).is_err());
    }

    #[test]
    fn the_replay_table_accepts_each_counter_once(
        msgs in proptest::collection::vec((0u64..3, 0u64..3000, -40_000i64..40_000), 1..400),
    ) {
        let now: u64 = 10_000_000;
        let mut table = Replay::default();
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut top: HashMap<u64, u64> = HashMap::new();
        for (node, counter, skew) in msgs {
            let time = now.checked_add_signed(skew).unwrap();
            let m = Sealed { node, time_ms: time, counter, ops: b"" };
            let got = table.check(&m, now);
            let want = if skew.unsigned_abs() > 30_000 {
                Err(Refusal::Stale)
            } else if seen.contains(&(node, counter))
                || top.get(&node).is_some_and(|&t| counter + REPLAY_WINDOW <= t)
            {
                Err(Refusal::Replayed)
            } else {
                Ok(())
            };
            prop_assert_eq!(got, want, "node {} counter {} skew {}", node, counter, skew);
            if got.is_ok() {
                seen.insert((node, counter));
                let t = top.entry(node).or_insert(counter);
                *t = (*t).max(counter);
            }
        }
    }
}
