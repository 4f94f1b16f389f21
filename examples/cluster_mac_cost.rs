//! What authenticating the cluster's messages costs (R96, docs/performance.md): the sender's
//! and the receiver's CPU time per message with the seal (HMAC-SHA-256, freshness, replay
//! table) against the same message without it (encoding, decoding), for the messages a cluster
//! sends: a heartbeat, one participant change, and a full 60 kB body of subscription records.
//! Each figure is the median of 7 runs of `iters` messages, in one process.
//!
//! `cargo run --release --example cluster_mac_cost` (or `make bench-mac`).
use imconf::core::cluster::{decode, encode, Op};
use imconf::core::cluster_auth::{Keys, Replay};
use std::hint::black_box;
use std::time::Instant;

fn median_ns_per(iters: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut runs: Vec<f64> = (0..7)
        .map(|r| {
            let t = Instant::now();
            for i in 0..iters {
                f(r * iters + i);
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

fn participant() -> Vec<Op> {
    let args = [
        "sip:chat-4711@conf.example.net",
        "sip:+15551230001@ims.example.net",
        "connected",
        "joined",
        "-",
        "sip:+15551230001@ims.example.net",
        "0",
        "Alice",
    ];
    vec![Op::Participant {
        stamp: 0x1234_5678_9abc,
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
    }]
}

fn subscriptions() -> Vec<Op> {
    (0..)
        .map(|i| Op::Sub {
            call_id: format!("{i:08x}-subscribe@10.0.0.7").into_bytes(),
            local_tag: format!("i3-{i:x}").into_bytes(),
            session_uri: b"sip:chat-4711@conf.example.net".to_vec(),
            record: vec![(i % 251) as u8; 180],
        })
        .take_while({
            let mut len = 0;
            move |op| {
                let mut line = encode(std::slice::from_ref(op)).concat();
                len += line.len();
                line.clear();
                len < 59_000
            }
        })
        .collect()
}

fn main() {
    let keys = Keys::new(b"3f0c9a7e5d1b2c4a6e8f0a1b2c3d4e5f", &[]).unwrap();
    let cases: [(&str, Vec<Op>, u64); 3] = [
        ("heartbeat (H)", vec![Op::Heartbeat], 400_000),
        ("participant change (P)", participant(), 200_000),
        (
            "subscription records (U, one full body)",
            subscriptions(),
            500,
        ),
    ];
    println!(
        "| message | body bytes | send: encode | send: encode + seal | receive: decode | receive: open + replay + decode | ratio send | ratio receive |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, ops, iters) in cases {
        let plain = encode(&ops);
        assert_eq!(plain.len(), 1, "{name}: one body");
        let sealed = keys.seal(7, 1_000_000, 0, &plain[0]);
        let enc = median_ns_per(iters, |_| {
            black_box(encode(black_box(&ops)));
        });
        let enc_seal = median_ns_per(iters, |i| {
            let b = encode(black_box(&ops));
            black_box(keys.seal(7, 1_000_000, i, &b[0]));
        });
        let dec = median_ns_per(iters, |_| {
            black_box(decode(black_box(&plain[0])).unwrap());
        });
        // a fresh counter each time, as on the wire: the replay table records every one
        let bodies: Vec<Vec<u8>> = (0..iters.min(4096))
            .map(|i| keys.seal(7, 1_000_000, i, &plain[0]))
            .collect();
        let mut replay = Replay::default();
        let mut next = 0u64;
        let open = median_ns_per(iters, |_| {
            let body = &bodies[(next % bodies.len() as u64) as usize];
            let m = keys.open(black_box(body)).unwrap();
            // the table sees counters move on (a new sender every wrap keeps it accepting)
            let m = imconf::core::cluster_auth::Sealed {
                node: next / bodies.len() as u64,
                counter: next % bodies.len() as u64,
                ..m
            };
            next += 1;
            replay.check(&m, 1_000_000).ok();
            black_box(decode(m.ops).unwrap());
        });
        println!(
            "| {name} | {} | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} | {:.2} |",
            sealed.len(),
            enc / 1e3,
            enc_seal / 1e3,
            dec / 1e3,
            open / 1e3,
            enc_seal / enc,
            open / dec
        );
    }
}
