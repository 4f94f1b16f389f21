//! Everything a Kamailio cfg, a KEMI script and kamcmd can name (docs/interface.md), declared
//! once: `module_exports!` (kam/exports.rs) generates the C entry points and Kamailio's tables.
//! The module parameters are declared in core/params.rs. A new script function or RPC command
//! is one line here and its handler (docs/architecture.md, "Where a newcomer adds things").
use crate::kam::exports::RET_ARRAY;
use crate::module::{handle_subscribe, rpc, script};

crate::module_exports! {
    // the SUBSCRIBE itself; the optional parameter names its output profile (R94). KEMI has one
    // arity per function: with the profile, it is KSR.imconf.imconf_handle_subscribe_profile
    request: c"imconf_handle_subscribe" (max 1)
        kemi c"imconf_handle_subscribe_profile" (profile) => handle_subscribe;
    functions: [
        // name (most native cfg parameters) kemi(its KEMI parameters, all given) in routes => handler
        c"imconf_session_open" (max 3) kemi(session_uri, kind, group_uri)
            in ANY_ROUTE => script::session_open,
        c"imconf_session_close" (max 1) kemi(session_uri) in ANY_ROUTE => script::session_close,
        // KEMI takes at most 6: parameters 7-12 come from imconf_participant_extra, on both paths
        c"imconf_participant" (max 12) kemi(session_uri, aoia, status, role, listed_uri, from_uri)
            in ANY_ROUTE => script::participant,
        // (its KEMI arity stays 5, as published; `when` is reached through KSR.x.modf)
        c"imconf_participant_extra" (max 6)
            kemi(privacy, nick, disconnection_method, disconnection_reason, contact)
            in ANY_ROUTE => script::participant_extra,
        c"imconf_groups_reload" (max 0) kemi() in ANY_ROUTE => script::groups_reload,
        // R95 (additions): the group's subject and chairman
        c"imconf_session_subject" (max 3) kemi(session_uri, subject, by)
            in ANY_ROUTE => script::session_subject,
        c"imconf_session_chairman" (max 2) kemi(session_uri, aoia)
            in ANY_ROUTE => script::session_chairman,
    ];
    rpcs: [
        c"imconf.session_open", 0, c"Open an IM session: session_uri kind [group_uri]"
            => rpc::session_open,
        c"imconf.session_close", 0, c"Release an IM session: session_uri" => rpc::session_close,
        c"imconf.participant", 0,
            c"Participant change: session_uri aoia status [role [listed_uri [from_uri [privacy [nick [disconnection_method [disconnection_reason [contact [when]]]]]]]]]]"
            => rpc::participant,
        c"imconf.groups_reload", 0, c"Reread groups_dir" => rpc::groups_reload,
        c"imconf.session_subject", 0, c"R95: the session's subject: session_uri subject [by]"
            => rpc::session_subject,
        c"imconf.session_chairman", 0, c"R95: the session's chairman: session_uri aoia"
            => rpc::session_chairman,
        c"imconf.sessions", RET_ARRAY, c"List open sessions" => rpc::sessions,
        c"imconf.subscriptions", RET_ARRAY, c"List subscriptions [session_uri]" => rpc::subscriptions,
        c"imconf.stats", 0, c"Module counters" => rpc::stats,
        c"imconf.cluster_rekey", 0, c"Reread dmq_secret_file (cluster key rotation)"
            => rpc::cluster_rekey,
    ];
}
