//! The core's tests, one module per area, in one test binary (quinn's `src/tests/` shape);
//! `common` is the harness they share. `cargo test --test core <area>::` runs one area.
mod common;

mod aliases;
mod cluster;
mod cluster_auth;
mod deleted;
mod dialing_out;
mod early_ops;
mod fuzz_parsers;
mod group_policy;
mod groups;
mod identity;
mod inflight_cap;
mod notifier;
mod oom;
mod persist;
mod persist_notifier;
mod profile_models;
mod profiles;
mod properties;
mod rcs;
mod reply_order;
mod shared_documents;
mod shm_footprint;
mod shutdown;
mod timers;
mod unsent;
