//! R94: output profiles, chosen per subscription. Three kinds of real subscriber read
//! conference-info in incompatible ways (R90, R93), so what a subscription is shown depends on
//! its profile: `oma` (the seed's output, R51/R52), `rcs` (R91, R95) or `rfc4575` (R93).
use super::config::Config;
use super::headers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Oma,
    Rcs,
    Rfc4575,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Oma, Profile::Rcs, Profile::Rfc4575];

    pub fn parse(s: &[u8]) -> Option<Profile> {
        Some(match s {
            b"oma" => Profile::Oma,
            b"rcs" => Profile::Rcs,
            b"rfc4575" => Profile::Rfc4575,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Oma => "oma",
            Profile::Rcs => "rcs",
            Profile::Rfc4575 => "rfc4575",
        }
    }

    /// The byte a persisted or replicated subscription stores (core::persist).
    pub fn code(self) -> u8 {
        match self {
            Profile::Oma => 1,
            Profile::Rcs => 2,
            Profile::Rfc4575 => 3,
        }
    }

    pub fn from_code(c: u8) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.code() == c)
    }

    /// R90, R91: an RCS client merges partial documents into a list it never forgets a user
    /// from; departures are reported to it as `disconnected`, for good, and `alerting` (which it
    /// drops the whole NOTIFY for) as `dialing-out`.
    pub fn merges(self) -> bool {
        self == Profile::Rcs
    }

    /// R58, R93: a departure, reported `disconnected`, is then removed with `state="deleted"`:
    /// always for a generic RFC 4575 client (it keeps a disconnected user on screen otherwise),
    /// never for RCS (R91), with `emit_deleted_after_disconnect` for OMA.
    pub fn emits_deleted(self, cfg: &Config) -> bool {
        match self {
            Profile::Oma => cfg.emit_deleted_after_disconnect,
            Profile::Rcs => false,
            Profile::Rfc4575 => true,
        }
    }

    /// R52, R91: departures carry `disconnection-method` (and the reason when given).
    pub fn emits_disconnection_method(self, cfg: &Config) -> bool {
        self == Profile::Rcs || cfg.emit_disconnection_method
    }

    /// R91: `user-count` in every document (and `maximum-user-count` when known).
    pub fn counts_users(self) -> bool {
        self == Profile::Rcs
    }

    /// R95: the group state RCS clients show: `yourown`, join and leave times, the reason as a
    /// Reason header value, a removal by the chairman as `deleted` with its endpoint.
    pub fn rich_state(self) -> bool {
        self == Profile::Rcs
    }

    /// R93: a `conference-description` in every document, complete in partial ones.
    pub fn always_describes(self) -> bool {
        self == Profile::Rfc4575
    }
}

/// The module parameter `output_profile`: a profile, or `auto` (by the SUBSCRIBE's tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultProfile {
    Fixed(Profile),
    Auto,
}

impl DefaultProfile {
    pub fn parse(s: &[u8]) -> Option<DefaultProfile> {
        match s {
            b"auto" => Some(DefaultProfile::Auto),
            p => Profile::parse(p).map(DefaultProfile::Fixed),
        }
    }

    /// What a restored record that predates profiles gets: the configured profile (`auto`
    /// cannot be applied without the SUBSCRIBE; such records were written under the seed's
    /// output, `oma`, or `rcs` with `rcs_compat`).
    pub fn for_old_records(self) -> Profile {
        match self {
            DefaultProfile::Fixed(p) => p,
            DefaultProfile::Auto => Profile::Oma,
        }
    }
}

/// R94 `auto`: from the feature tags of the SUBSCRIBE's Accept-Contact and Contact bodies. The
/// CPM ICSI or any `+g.gsma.rcs...` tag: `rcs`; `+g.oma.sip-im` (and neither of those): `oma`;
/// anything else: `rfc4575`.
pub fn by_feature_tags(accept_contact: &[&[u8]], contact: &[&[u8]]) -> Profile {
    let bodies = || accept_contact.iter().chain(contact.iter()).copied();
    let tags: Vec<(&[u8], Option<&[u8]>)> = bodies().flat_map(headers::feature_params).collect();
    let is = |name: &[u8], want: &[u8]| name.eq_ignore_ascii_case(want);
    let rcs = tags.iter().any(|&(name, value)| {
        (name.len() >= 11 && is(&name[..11], b"+g.gsma.rcs"))
            || (is(name, b"+g.3gpp.icsi-ref") && value.is_some_and(headers::lists_cpm_session))
    });
    if rcs {
        Profile::Rcs
    } else if tags.iter().any(|&(name, _)| is(name, b"+g.oma.sip-im")) {
        Profile::Oma
    } else {
        Profile::Rfc4575
    }
}

/// The profile of a new subscription (R94): the script's choice; else, under `auto`, the
/// SUBSCRIBE's feature tags; else the configured profile, except that a generic subscriber
/// admitted without `+g.oma.sip-im` (`admit_generic_subscribers`) gets `rfc4575`.
pub fn choose(
    cfg: &Config,
    script: Option<Profile>,
    generic: bool,
    accept_contact: &[&[u8]],
    contact: &[&[u8]],
) -> Profile {
    match (script, cfg.default_profile) {
        (Some(p), _) => p,
        (None, DefaultProfile::Auto) => by_feature_tags(accept_contact, contact),
        (None, DefaultProfile::Fixed(_)) if generic => Profile::Rfc4575,
        (None, DefaultProfile::Fixed(p)) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPM: &[u8] =
        b"*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"";

    #[test]
    fn r94_auto_by_feature_tags() {
        let by = |ac: &[&[u8]], c: &[&[u8]]| by_feature_tags(ac, c);
        assert_eq!(by(&[CPM], &[]), Profile::Rcs);
        assert_eq!(by(&[b"*;+g.oma.sip-im"], &[CPM]), Profile::Rcs, "CPM wins");
        assert_eq!(
            by(&[], &[b"<sip:a@h>;+g.gsma.rcs.botversion=\"#=1\""]),
            Profile::Rcs
        );
        assert_eq!(by(&[b"*;+g.oma.sip-im"], &[]), Profile::Oma);
        assert_eq!(
            by(&[], &[b"<sip:a@h;transport=tcp>;+G.OMA.SIP-IM"]),
            Profile::Oma
        );
        assert_eq!(by(&[], &[b"<sip:a@h>;expires=60"]), Profile::Rfc4575);
        assert_eq!(by(&[], &[]), Profile::Rfc4575);
        // a negated ICSI, or another one, is not CPM
        assert_eq!(
            by(
                &[b"*;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\""],
                &[]
            ),
            Profile::Rfc4575
        );
    }

    #[test]
    fn r94_the_script_then_auto_then_the_default() {
        let cfg = |d| Config {
            default_profile: d,
            ..Config::default()
        };
        let fixed = cfg(DefaultProfile::Fixed(Profile::Oma));
        let auto = cfg(DefaultProfile::Auto);
        let oma_tag: &[&[u8]] = &[b"*;+g.oma.sip-im"];
        assert_eq!(
            choose(&fixed, Some(Profile::Rcs), false, oma_tag, &[]),
            Profile::Rcs
        );
        assert_eq!(choose(&fixed, None, false, oma_tag, &[]), Profile::Oma);
        assert_eq!(
            choose(&fixed, None, true, &[], &[]),
            Profile::Rfc4575,
            "generic"
        );
        assert_eq!(
            choose(&fixed, Some(Profile::Oma), true, &[], &[]),
            Profile::Oma
        );
        assert_eq!(choose(&auto, None, true, &[CPM], &[]), Profile::Rcs);
        assert_eq!(choose(&auto, None, false, oma_tag, &[]), Profile::Oma);
        assert_eq!(choose(&auto, None, true, &[], &[]), Profile::Rfc4575);
    }

    #[test]
    fn names_and_codes_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str().as_bytes()), Some(p));
            assert_eq!(Profile::from_code(p.code()), Some(p));
        }
        assert_eq!(Profile::parse(b"OMA"), None);
        assert_eq!(Profile::from_code(0), None);
        assert_eq!(DefaultProfile::parse(b"auto"), Some(DefaultProfile::Auto));
    }
}
