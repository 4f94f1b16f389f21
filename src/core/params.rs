//! Every module parameter (docs/interface.md, "Module parameters"), declared once: its name,
//! type, default and range. kam/params.rs builds Kamailio's parameter table and the storage
//! Kamailio writes from `PARAMS`; `settings` turns what the cfg set into checked settings. A
//! new parameter is one line here plus the field that carries it (docs/architecture.md).
use super::config::{BadParam, Config};
use super::param_checks::{at_least, between, endpoint_entity, flag, non_negative};
use super::profile::{DefaultProfile, Profile};
use std::ffi::CStr;

/// What values a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// 0 or 1.
    Flag,
    NonNegative,
    AtLeast(u32),
    Between(u32, u32),
    /// A string: checked where it is used (URIs, header names, paths).
    Text,
}

/// The value before the cfg sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    Int(i32),
    /// None: unset (a required parameter, or an optional one without a value).
    Text(Option<&'static CStr>),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static CStr,
    pub default: Initial,
    pub check: Check,
}

const fn int(name: &'static CStr, default: i32, check: Check) -> Param {
    Param {
        name,
        default: Initial::Int(default),
        check,
    }
}

const fn text(name: &'static CStr, default: Option<&'static CStr>) -> Param {
    Param {
        name,
        default: Initial::Text(default),
        check: Check::Text,
    }
}

use Check::{AtLeast, Between, Flag, NonNegative};

/// The module's parameters, in the order Kamailio lists them.
pub const PARAMS: [Param; 35] = [
    text(c"server_contact", None),
    text(c"conference_factory_uri", None),
    text(c"assert_identity_header", Some(c"P-Asserted-Identity")),
    int(c"trust_from_header", 0, Flag),
    int(c"default_expires", 3600, NonNegative),
    int(c"min_expires", 60, NonNegative),
    int(c"max_expires", 3600, NonNegative),
    int(c"min_notify_interval_ms", 1000, NonNegative),
    int(c"max_pending_changes", 200, NonNegative),
    int(c"max_subs_per_session", 256, NonNegative),
    int(c"max_subs_per_user_per_session", 4, NonNegative),
    int(c"terminate_on_leave", 1, Flag),
    text(c"groups_dir", None),
    int(c"rcs_compat", 0, Flag),
    int(c"emit_deleted_after_disconnect", 0, Flag),
    int(c"report_dialing_out", 0, Flag),
    int(c"accept_cpm_icsi", 0, Flag),
    text(c"db_url", None),
    int(c"db_flush_interval_ms", 1000, AtLeast(1)),
    int(c"enable_dmq", 0, Flag),
    text(c"dmq_secret", None),
    text(c"dmq_secret_file", None),
    int(c"hash_slots", 64, Between(1, 4096)),
    int(c"timer_interval_ms", 100, Between(10, 1000)),
    int(c"max_inflight_notifies", 1024, AtLeast(1)),
    text(c"debug_panic_user", None),
    int(c"tel_sip_equivalence", 1, Flag),
    text(c"endpoint_entity", Some(c"user")),
    int(c"emit_disconnection_method", 0, Flag),
    text(c"output_profile", None),
    int(c"admit_generic_subscribers", 0, Flag),
    int(c"slow_notify_ms", 1000, NonNegative),
    int(c"dmq_replicas", 2, Between(0, 64)),
    text(c"db_node_name", None),
    int(c"fanout_workers", 2, Between(0, 64)),
];

/// One parameter's value as the cfg left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    Int(i32),
    /// Trimmed; None when unset or blank.
    Text(Option<String>),
}

/// The values of `PARAMS`, in order.
#[derive(Debug, Clone)]
pub struct Values(Vec<Raw>);

impl Values {
    /// Every parameter at its default.
    pub fn defaults() -> Self {
        Values(
            PARAMS
                .iter()
                .map(|p| match p.default {
                    Initial::Int(v) => Raw::Int(v),
                    Initial::Text(t) => Raw::Text(t.map(|c| c.to_string_lossy().into_owned())),
                })
                .collect(),
        )
    }

    /// The values read from Kamailio, in `PARAMS` order.
    pub fn from_raw(raw: Vec<Raw>) -> Self {
        debug_assert_eq!(raw.len(), PARAMS.len());
        Values(raw)
    }

    /// Sets one value (tests, and callers that build settings without Kamailio).
    pub fn set(mut self, name: &str, v: Raw) -> Self {
        let i = index(name);
        self.0[i] = match v {
            Raw::Text(t) => Raw::Text(t.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())),
            int => int,
        };
        self
    }

    fn declared(&self, name: &'static str) -> (&Param, &Raw) {
        let i = index(name);
        (&PARAMS[i], &self.0[i])
    }

    fn text(&self, name: &'static str) -> Option<String> {
        match self.declared(name) {
            (_, Raw::Text(t)) => t.clone(),
            _ => panic!("parameter {name} is not a string"),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, BadParam> {
        match self.declared(name) {
            (
                Param {
                    check: Check::Flag, ..
                },
                Raw::Int(v),
            ) => flag(name, *v),
            _ => panic!("parameter {name} is not a flag"),
        }
    }

    /// A number, checked against its declared range.
    fn num(&self, name: &'static str) -> Result<u32, BadParam> {
        match self.declared(name) {
            (p, Raw::Int(v)) => match p.check {
                Check::NonNegative => non_negative(name, *v),
                Check::AtLeast(min) => at_least(name, *v, min),
                Check::Between(min, max) => between(name, *v, min, max),
                Check::Flag | Check::Text => panic!("parameter {name} is not a number"),
            },
            _ => panic!("parameter {name} is not a number"),
        }
    }
}

fn index(name: &str) -> usize {
    PARAMS
        .iter()
        .position(|p| p.name.to_bytes() == name.as_bytes())
        .unwrap_or_else(|| panic!("no module parameter {name}"))
}

/// The module's settings: the notifier's `Config` and what the module itself uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub hash_slots: usize,
    /// R66: NOTIFYs in flight on the whole node.
    pub max_inflight_notifies: u32,
    /// Directory of group documents (R81-R88); None: group sessions use R6.
    pub groups_dir: Option<String>,
    /// R86: `tel:+N` equals `sip:+N@host;user=phone` in group documents.
    pub tel_sip_equivalence: bool,
    /// Where sessions and subscriptions are persisted (docs/persistence.md); None: memory only.
    pub db_url: Option<String>,
    /// How often changes are written back to `db_url`.
    pub db_flush_interval_ms: u64,
    /// Replicate session state to the other nodes over dmq (docs/cluster.md).
    pub enable_dmq: bool,
    /// Issue 17: how many successors of a subscription keep its replica (0: every peer).
    pub dmq_replicas: u32,
    /// Whose rows of `db_url` are this node's (the `owner` column, issue 17).
    pub db_node_name: String,
    /// The cluster's shared secret (R96), or the file holding it (rotation: `imconf.cluster_rekey`).
    pub dmq_secret: Option<String>,
    pub dmq_secret_file: Option<String>,
    /// How often the timer process runs (expiries, delayed NOTIFYs, the cluster's tick).
    pub timer_interval_ms: u32,
    /// Processes that send the NOTIFYs of a change (issue 18); 0: the caller that fed it does.
    pub fanout_workers: u32,
}

/// R94: `output_profile` (oma, rcs, rfc4575 or auto; unset: oma), and `rcs_compat=1`, which
/// means `rcs` (it predates profiles).
fn default_profile(v: &Values) -> Result<DefaultProfile, BadParam> {
    let bad = |why: String| BadParam {
        name: "output_profile",
        why,
    };
    let rcs_compat = v.flag("rcs_compat")?;
    let named = match v.text("output_profile") {
        None => None,
        Some(t) => Some(
            DefaultProfile::parse(t.as_bytes())
                .ok_or_else(|| bad(format!("must be oma, rcs, rfc4575 or auto (got {t})")))?,
        ),
    };
    match (named, rcs_compat) {
        (None, false) => Ok(DefaultProfile::Fixed(Profile::Oma)),
        (None, true) => Ok(DefaultProfile::Fixed(Profile::Rcs)),
        (Some(p), false) => Ok(p),
        (Some(DefaultProfile::Fixed(Profile::Rcs)), true) => {
            Ok(DefaultProfile::Fixed(Profile::Rcs))
        }
        (Some(_), true) => Err(bad(
            "rcs_compat=1 means output_profile rcs: set only one of them".into(),
        )),
    }
}

/// The name this node's rows are stored under in `db_url` (issue 17): as given; in a cluster
/// by default its `server_contact` (each node has its own), alone by default none.
fn db_node_name(v: &Values) -> Result<String, BadParam> {
    match v.text("db_node_name") {
        Some(name) if name.len() > 255 => Err(BadParam {
            name: "db_node_name",
            why: "is longer than 255 bytes (the owner column)".into(),
        }),
        Some(name) => Ok(name),
        None if v.flag("enable_dmq")? => Ok(v.text("server_contact").unwrap_or_default()),
        None => Ok(String::new()),
    }
}

/// Checks every value (docs/interface.md): the first bad one is reported by name.
pub fn settings(v: &Values) -> Result<Settings, BadParam> {
    let required = |name: &'static str| {
        v.text(name).ok_or(BadParam {
            name,
            why: "is required".into(),
        })
    };
    let config = Config {
        server_contact: required("server_contact")?,
        conference_factory_uri: required("conference_factory_uri")?,
        assert_identity_header: v.text("assert_identity_header").unwrap_or_default(),
        trust_from_header: v.flag("trust_from_header")?,
        default_expires: v.num("default_expires")?,
        min_expires: v.num("min_expires")?,
        max_expires: v.num("max_expires")?,
        min_notify_interval_ms: v.num("min_notify_interval_ms")?.into(),
        max_pending_changes: v.num("max_pending_changes")? as usize,
        max_subs_per_session: v.num("max_subs_per_session")? as usize,
        max_subs_per_user_per_session: v.num("max_subs_per_user_per_session")? as usize,
        terminate_on_leave: v.flag("terminate_on_leave")?,
        emit_deleted_after_disconnect: v.flag("emit_deleted_after_disconnect")?,
        report_dialing_out: v.flag("report_dialing_out")?,
        accept_cpm_icsi: v.flag("accept_cpm_icsi")?,
        default_profile: default_profile(v)?,
        admit_generic_subscribers: v.flag("admit_generic_subscribers")?,
        slow_notify_ms: v.num("slow_notify_ms")?.into(),
        endpoint_entity_contact: endpoint_entity(v.text("endpoint_entity").as_deref())?,
        emit_disconnection_method: v.flag("emit_disconnection_method")?,
        debug_panic_user: v.text("debug_panic_user"),
    };
    config.validate()?;
    Ok(Settings {
        config,
        hash_slots: v.num("hash_slots")? as usize,
        max_inflight_notifies: v.num("max_inflight_notifies")?,
        groups_dir: v.text("groups_dir"),
        tel_sip_equivalence: v.flag("tel_sip_equivalence")?,
        db_url: v.text("db_url"),
        db_flush_interval_ms: v.num("db_flush_interval_ms")?.into(),
        enable_dmq: v.flag("enable_dmq")?,
        dmq_replicas: v.num("dmq_replicas")?,
        db_node_name: db_node_name(v)?,
        dmq_secret: v.text("dmq_secret"),
        dmq_secret_file: v.text("dmq_secret_file"),
        timer_interval_ms: v.num("timer_interval_ms")?,
        fanout_workers: v.num("fanout_workers")?,
    })
}

/// The declared defaults, with placeholders for the two required URIs (tests, examples).
fn with_required() -> Values {
    Values::defaults()
        .set(
            "server_contact",
            Raw::Text(Some("sip:imconf@127.0.0.1".into())),
        )
        .set(
            "conference_factory_uri",
            Raw::Text(Some("sip:factory@127.0.0.1".into())),
        )
}

/// The notifier's settings at the declared defaults (`PARAMS`), with placeholder URIs.
impl Default for Config {
    fn default() -> Self {
        settings(&with_required())
            .expect("the declared defaults pass their own checks")
            .config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = settings(&with_required()).unwrap();
        assert_eq!(s.config.assert_identity_header, "P-Asserted-Identity");
        assert_eq!(
            (
                s.config.min_expires,
                s.config.default_expires,
                s.config.max_expires
            ),
            (60, 3600, 3600)
        );
        assert!(s.config.terminate_on_leave && !s.config.admit_generic_subscribers);
        assert_eq!(
            s.config.default_profile,
            DefaultProfile::Fixed(Profile::Oma)
        );
        assert_eq!((s.hash_slots, s.timer_interval_ms), (64, 100));
        assert_eq!(s.max_inflight_notifies, 1024);
        assert!(s.tel_sip_equivalence && !s.enable_dmq && s.db_url.is_none());
    }

    #[test]
    fn required_and_out_of_range_values_are_named() {
        let why = |v: &Values| settings(v).unwrap_err().to_string();
        assert_eq!(
            why(&Values::defaults()),
            "modparam \"server_contact\": is required"
        );
        assert_eq!(
            why(&with_required().set("hash_slots", Raw::Int(0))),
            "modparam \"hash_slots\": must be between 1 and 4096 (got 0)"
        );
        assert_eq!(
            why(&with_required().set("rcs_compat", Raw::Int(2))),
            "modparam \"rcs_compat\": must be 0 or 1 (got 2)"
        );
        assert_eq!(
            why(&with_required().set("db_flush_interval_ms", Raw::Int(0))),
            "modparam \"db_flush_interval_ms\": must be at least 1"
        );
        let blank = with_required().set("db_url", Raw::Text(Some("  ".into())));
        assert_eq!(settings(&blank).unwrap().db_url, None);
    }

    #[test]
    fn r94_output_profile_and_rcs_compat() {
        let with = |profile: Option<&str>, rcs: i32| {
            settings(
                &with_required()
                    .set("output_profile", Raw::Text(profile.map(String::from)))
                    .set("rcs_compat", Raw::Int(rcs)),
            )
            .map(|s| s.config.default_profile)
            .map_err(|e| e.to_string())
        };
        use DefaultProfile::{Auto, Fixed};
        assert_eq!(with(None, 0), Ok(Fixed(Profile::Oma)));
        assert_eq!(with(None, 1), Ok(Fixed(Profile::Rcs)));
        assert_eq!(with(Some("rfc4575"), 0), Ok(Fixed(Profile::Rfc4575)));
        assert_eq!(with(Some("auto"), 0), Ok(Auto));
        assert_eq!(with(Some("rcs"), 1), Ok(Fixed(Profile::Rcs)));
        assert_eq!(
            with(Some("auto"), 1),
            Err("modparam \"output_profile\": rcs_compat=1 means output_profile rcs: set only one of them".into())
        );
        assert_eq!(
            with(Some("jitsi"), 0),
            Err(
                "modparam \"output_profile\": must be oma, rcs, rfc4575 or auto (got jitsi)".into()
            )
        );
    }

    #[test]
    fn every_declared_parameter_is_read_with_its_declared_type() {
        // `settings` reads each name through Values, which panics on a name that is not declared
        // or is read as another type; this checks the converse: nothing declared goes unread.
        let source = include_str!("params.rs");
        let readers = source.find("fn default_profile").unwrap();
        let body = &source[readers..source.find("#[cfg(test)]").unwrap()];
        for p in PARAMS {
            let name = p.name.to_str().unwrap();
            assert!(
                body.contains(&format!("\"{name}\"")),
                "parameter {name} is declared but `settings` never reads it"
            );
        }
        let names: std::collections::HashSet<_> = PARAMS.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), PARAMS.len(), "a parameter declared twice");
        for p in PARAMS {
            match (p.default, p.check) {
                (Initial::Text(_), Check::Text) => {}
                (Initial::Int(v), Check::Flag) => assert!(v == 0 || v == 1),
                (Initial::Int(_), Check::Text) => panic!("{:?}: a number checked as text", p.name),
                (Initial::Int(v), c) => {
                    let mut vals = with_required();
                    vals = vals.set(p.name.to_str().unwrap(), Raw::Int(v));
                    assert!(
                        settings(&vals).is_ok(),
                        "{:?}'s default {v} fails {c:?}",
                        p.name
                    );
                }
                (Initial::Text(_), c) => panic!("{:?}: a string checked as {c:?}", p.name),
            }
        }
    }
}
