//! The notifier's settings (docs/interface.md module parameters), validated once at start-up.
//! Created in mod_init before the workers fork, so every process holds the same copy.
use super::profile::DefaultProfile;

/// Everything the notifier needs from the operator's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// R16: Contact of the 2xx and of every NOTIFY.
    pub server_contact: String,
    /// R17: identity asserted for 1-1 and ad-hoc sessions.
    pub conference_factory_uri: String,
    /// R17: header that carries the asserted identity in the 2xx.
    pub assert_identity_header: String,
    /// R5: fall back to the From URI when there is no P-Asserted-Identity (labs only).
    pub trust_from_header: bool,
    /// R19 (seconds).
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    /// R61: per-subscription NOTIFY spacing.
    pub min_notify_interval_ms: u64,
    /// R65: a larger change set is sent as a full document.
    pub max_pending_changes: usize,
    /// R7: local policy limits.
    pub max_subs_per_session: usize,
    pub max_subs_per_user_per_session: usize,
    /// R68: end a leaver's own subscriptions.
    pub terminate_on_leave: bool,
    /// R58: after reporting a departure as `disconnected`, remove the user with
    /// `state="deleted"` in the next partial document (`oma` profile; `rfc4575` always does,
    /// `rcs` never, R91).
    pub emit_deleted_after_disconnect: bool,
    /// R59: list invitees that have not answered yet as `dialing-out`.
    pub report_dialing_out: bool,
    /// R92: accept the OMA CPM ICSI instead of +g.oma.sip-im.
    pub accept_cpm_icsi: bool,
    /// R94 (module parameters `output_profile`, `rcs_compat`): the output profile of a
    /// subscription the script names none for (core::profile).
    pub default_profile: DefaultProfile,
    /// Issue 16 (module parameter `admit_generic_subscribers`): a SUBSCRIBE without
    /// `+g.oma.sip-im` (R4) is admitted, with the `rfc4575` profile (R93, R94).
    pub admit_generic_subscribers: bool,
    /// R50 (module parameter `endpoint_entity`, `user` or `contact`): the endpoint entity is the
    /// participant's Contact/GRUU when it has one and is not private (R78), else the user entity.
    pub endpoint_entity_contact: bool,
    /// R52 (module parameter `emit_disconnection_method`): departures carry
    /// `disconnection-method` (and `disconnection-info/reason` when given) without the rest of
    /// the RCS profile. The `rcs` profile implies it.
    pub emit_disconnection_method: bool,
    /// Test hook: a SUBSCRIBE whose Request-URI user equals this panics inside the module.
    pub debug_panic_user: Option<String>,
    /// R66, issue 17 (module parameter `slow_notify_ms`): a NOTIFY unanswered this long gives
    /// up its place under `max_inflight_notifies`, so that destinations that stopped answering
    /// do not hold every place until tm times them out (0: never).
    pub slow_notify_ms: u64,
}

/// A parameter with a value the module refuses; names the parameter (docs/interface.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam {
    pub name: &'static str,
    pub why: String,
}

impl std::fmt::Display for BadParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "modparam \"{}\": {}", self.name, self.why)
    }
}

impl Config {
    /// Checks the relations between values (ranges are checked while reading each parameter).
    pub fn validate(&self) -> Result<(), BadParam> {
        let bad = |name, why: &str| {
            Err(BadParam {
                name,
                why: why.to_string(),
            })
        };
        if !crate::core::uri::is_valid(crate::core::uri::addr_spec(self.server_contact.as_bytes()))
        {
            return bad("server_contact", "required: a sip: URI of this server");
        }
        if !crate::core::uri::is_valid(self.conference_factory_uri.as_bytes()) {
            return bad("conference_factory_uri", "required: a sip: URI");
        }
        if self.assert_identity_header.is_empty()
            || !self
                .assert_identity_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return bad("assert_identity_header", "must be a header name");
        }
        if self.min_expires == 0 {
            return bad("min_expires", "must be at least 1");
        }
        if self.max_expires < self.min_expires {
            return bad("max_expires", "must not be below min_expires");
        }
        if self.default_expires < self.min_expires || self.default_expires > self.max_expires {
            return bad(
                "default_expires",
                "must lie between min_expires and max_expires",
            );
        }
        if self.max_pending_changes == 0 {
            return bad("max_pending_changes", "must be at least 1");
        }
        if self.max_subs_per_session == 0 || self.max_subs_per_user_per_session == 0 {
            return bad("max_subs_per_session", "limits must be at least 1");
        }
        Ok(())
    }
}
