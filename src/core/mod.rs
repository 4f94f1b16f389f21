//! The notifier, sans-IO: sessions, participants, subscriptions, conference-info XML.
//! Nothing here knows Kamailio; every operation takes the time and returns actions.
#![forbid(unsafe_code)]
pub mod bytes;
pub mod changes;
pub mod cluster;
pub mod cluster_auth;
pub mod conference_info;
pub mod config;
pub mod deadlines;
pub mod early_ops;
pub mod gate;
pub mod groups;
pub mod headers;
pub mod history;
pub mod key;
pub mod log_line;
pub mod notifier;
pub mod param_checks;
pub mod params;
pub mod persist;
pub mod policy;
pub mod profile;
pub mod replicas;
pub mod reply;
pub mod session;
pub mod strpack;
pub mod subscription;
pub mod uri;
pub mod xml;
