//! The module parameters Kamailio stored in C (c-shim/shim_mod.c), read into the core's Config.
use super::sys;
use crate::core::config::{BadParam, Config};
use crate::core::param_checks::{at_least, between, endpoint_entity, flag, non_negative};
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
        endpoint_entity_contact: endpoint_entity(text(p.endpoint_entity).as_deref())?,
        emit_disconnection_method: flag("emit_disconnection_method", p.emit_disconnection_method)?,
        debug_panic_user: text(p.debug_panic_user),
    };
    config.validate()?;
    let db_flush_interval_ms = at_least("db_flush_interval_ms", p.db_flush_interval_ms, 1)?;
    let groups_dir = text(p.groups_dir);
    if let Some(dir) = &groups_dir {
        if !std::path::Path::new(dir).is_dir() {
            return Err(BadParam {
                name: "groups_dir",
                why: format!("{dir} is not a directory"),
            });
        }
    }
    let hash_slots = between("hash_slots", p.hash_slots, 1, 4096)? as usize;
    between("timer_interval_ms", p.timer_interval_ms, 10, 1000)?;
    let max_inflight_notifies = at_least("max_inflight_notifies", p.max_inflight_notifies, 1)?;
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
