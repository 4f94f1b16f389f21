//! The module parameters Kamailio stored in C (c-shim/shim_mod.c), read into the core's Config.
use super::sys;
use crate::core::config::{BadParam, Config};
use std::ffi::CStr;

/// Settings the module itself uses besides the core's Config.
#[derive(Debug, Clone)]
pub struct ModuleParams {
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
    /// The cluster's shared secret (R96), or the file holding it (rotation: `imconf.cluster_rekey`).
    pub dmq_secret: Option<String>,
    pub dmq_secret_file: Option<String>,
}

fn text(p: *const std::os::raw::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: Kamailio stores NUL-terminated strings from the cfg (or our static defaults).
    let s = unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn non_negative(name: &'static str, v: i32) -> Result<u32, BadParam> {
    u32::try_from(v).map_err(|_| BadParam {
        name,
        why: format!("must not be negative (got {v})"),
    })
}

fn flag(name: &'static str, v: i32) -> Result<bool, BadParam> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(BadParam {
            name,
            why: format!("must be 0 or 1 (got {v})"),
        }),
    }
}

/// R50: `user` (default) or `contact`; true for `contact`.
fn endpoint_entity(v: Option<String>) -> Result<bool, BadParam> {
    match v.as_deref() {
        None | Some("user") => Ok(false),
        Some("contact") => Ok(true),
        Some(other) => Err(BadParam {
            name: "endpoint_entity",
            why: format!("must be user or contact (got {other})"),
        }),
    }
}

/// Reads and validates every parameter (docs/interface.md): the first bad one is reported by name.
pub fn read() -> Result<ModuleParams, BadParam> {
    // SAFETY: shim_get_params returns a pointer to a static struct, written only before mod_init.
    let p = unsafe { &*sys::shim_get_params() };
    let required = |name: &'static str, v| {
        text(v).ok_or(BadParam {
            name,
            why: "is required".into(),
        })
    };
    let config = Config {
        server_contact: required("server_contact", p.server_contact)?,
        conference_factory_uri: required("conference_factory_uri", p.conference_factory_uri)?,
        assert_identity_header: text(p.assert_identity_header).unwrap_or_default(),
        trust_from_header: flag("trust_from_header", p.trust_from_header)?,
        default_expires: non_negative("default_expires", p.default_expires)?,
        min_expires: non_negative("min_expires", p.min_expires)?,
        max_expires: non_negative("max_expires", p.max_expires)?,
        min_notify_interval_ms: non_negative("min_notify_interval_ms", p.min_notify_interval_ms)?
            .into(),
        max_pending_changes: non_negative("max_pending_changes", p.max_pending_changes)? as usize,
        max_subs_per_session: non_negative("max_subs_per_session", p.max_subs_per_session)?
            as usize,
        max_subs_per_user_per_session: non_negative(
            "max_subs_per_user_per_session",
            p.max_subs_per_user_per_session,
        )? as usize,
        terminate_on_leave: flag("terminate_on_leave", p.terminate_on_leave)?,
        emit_deleted_after_disconnect: flag(
            "emit_deleted_after_disconnect",
            p.emit_deleted_after_disconnect,
        )?,
        report_dialing_out: flag("report_dialing_out", p.report_dialing_out)?,
        accept_cpm_icsi: flag("accept_cpm_icsi", p.accept_cpm_icsi)?,
        rcs_compat: flag("rcs_compat", p.rcs_compat)?,
        endpoint_entity_contact: endpoint_entity(text(p.endpoint_entity))?,
        emit_disconnection_method: flag("emit_disconnection_method", p.emit_disconnection_method)?,
        debug_panic_user: text(p.debug_panic_user),
    };
    config.validate()?;
    let db_flush_interval_ms = non_negative("db_flush_interval_ms", p.db_flush_interval_ms)?;
    if db_flush_interval_ms == 0 {
        return Err(BadParam {
            name: "db_flush_interval_ms",
            why: "must be at least 1".into(),
        });
    }
    let groups_dir = text(p.groups_dir);
    if let Some(dir) = &groups_dir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(BadParam {
                name: "groups_dir",
                why: format!("{dir} is not a directory"),
            });
        }
    }
    let hash_slots = non_negative("hash_slots", p.hash_slots)? as usize;
    if !(1..=4096).contains(&hash_slots) {
        return Err(BadParam {
            name: "hash_slots",
            why: format!("must be between 1 and 4096 (got {hash_slots})"),
        });
    }
    let timer = non_negative("timer_interval_ms", p.timer_interval_ms)?;
    if !(10..=1000).contains(&timer) {
        return Err(BadParam {
            name: "timer_interval_ms",
            why: format!("must be between 10 and 1000 (got {timer})"),
        });
    }
    let max_inflight_notifies = non_negative("max_inflight_notifies", p.max_inflight_notifies)?;
    if max_inflight_notifies == 0 {
        return Err(BadParam {
            name: "max_inflight_notifies",
            why: "must be at least 1".into(),
        });
    }
    Ok(ModuleParams {
        config,
        hash_slots,
        max_inflight_notifies,
        groups_dir,
        tel_sip_equivalence: flag("tel_sip_equivalence", p.tel_sip_equivalence)?,
        db_url: text(p.db_url).filter(|u| !u.is_empty()),
        db_flush_interval_ms: db_flush_interval_ms.into(),
        enable_dmq: flag("enable_dmq", p.enable_dmq)?,
        dmq_secret: text(p.dmq_secret),
        dmq_secret_file: text(p.dmq_secret_file),
    })
}
