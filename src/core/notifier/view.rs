//! What a subscriber is shown: its document, with privacy (R73-R79) and its output profile (R94:
//! `oma`, `rcs` R91/R95, `rfc4575` R93; core::profile).
use super::*;

/// The status a document gives a present participant. R91: RCS clients drop a whole NOTIFY
/// that has `alerting` (R90); an invitee being called is `dialing-out` to them.
pub(super) fn reported_status(status: EndpointStatus, profile: Profile) -> EndpointStatus {
    match status {
        EndpointStatus::Alerting if profile.merges() => EndpointStatus::DialingOut,
        s => s,
    }
}

/// What a subscriber is shown of a present participant. R55, R78: the nick and Contact of a
/// private participant are never shown, so changing them changes nothing the subscriber sees.
pub(super) fn shown<A: Allocator>(p: &Participant<A>, cfg: &Config, profile: Profile) -> Seen {
    Seen {
        delete_pending: false,
        status: Some(reported_status(p.status, profile)),
        nick_tag: if p.privacy { 0 } else { p.nick_tag },
        endpoint_tag: p.endpoint_tag(cfg.endpoint_entity_contact),
        departure_tag: 0,
    }
}

/// R91: what a merging client keeps of a participant reported `disconnected` (R90: it never
/// forgets a user).
pub(super) fn shown_departed<A: Allocator>(
    p: &Participant<A>,
    cfg: &Config,
    profile: Profile,
) -> Seen {
    Seen {
        status: Some(EndpointStatus::Disconnected),
        departure_tag: if p.status == EndpointStatus::Disconnected {
            p.departure_tag
        } else {
            0 // not in the session, yet not gone either (R59 dialing-out): reported `departed`
        },
        ..shown(p, cfg, profile)
    }
}

/// A document for one subscription, and whether it is full.
pub(super) struct Body {
    pub(super) xml: Vec<u8>,
    pub(super) full: bool,
    /// R58: a deletion is due in a later NOTIFY of its own.
    pub(super) delete_follows: bool,
}

/// Builds the next document for `sub` and records what it tells (R33, R46, R54, R57, R65).
/// Ok(None): a partial document would be empty (R55).
pub(super) fn document<A: Allocator + Clone>(
    session: &Session<A>,
    sub: &mut Subscription<A>,
    cfg: &Config,
    mut full: bool,
) -> Result<Option<Body>, OutOfMemory> {
    let profile = sub.profile;
    let emits_deleted = profile.emits_deleted(cfg);
    // (participant index, status to report; None: R58 `state="deleted"`)
    let changes = |full: bool| {
        let mut changed: Vec<(usize, Option<EndpointStatus>)> = Vec::new();
        for (i, p) in session.participants.iter().enumerate() {
            let seen = sub.seen(i);
            if p.is_listed(cfg.report_dialing_out) {
                if full || seen != shown(p, cfg, profile) {
                    changed.push((i, Some(reported_status(p.status, profile))));
                }
            } else if profile.merges() {
                // R90, R91: a merging client keeps every user it heard of, with the last status
                // it was told. So a departure is reported to whoever was shown the user, again
                // whenever how the user left changes, and in every full document: the client's
                // list may be older than this subscription (an earlier one, a lost NOTIFY).
                let told = seen.status.is_some();
                let departed = p.status == EndpointStatus::Disconnected;
                if (full && (told || departed)) || (told && seen != shown_departed(p, cfg, profile))
                {
                    changed.push((i, Some(EndpointStatus::Disconnected)));
                }
            } else if seen.status.is_some() {
                // R57: a departure is reported once, in whatever the next document is
                changed.push((i, Some(EndpointStatus::Disconnected)));
            } else if seen.delete_pending && !full {
                // R58: then removed, when the option asks for it (a full document omits it)
                changed.push((i, None));
            }
        }
        changed
    };
    let mut changed = changes(full);
    if !full && changed.len() > cfg.max_pending_changes {
        // R65: a full document replaces the subscriber's list, so it lists everyone present
        // (not only the changes) and still reports the departures (R57)
        full = true;
        changed = changes(true);
    }
    if !full && changed.is_empty() {
        return Ok(None);
    }
    if full {
        // a full document records (nearly) every participant: room for all at once, not a
        // reallocation per doubling (each one a trip to the shm allocator's lock)
        sub.reserve_seen(session.participants.len())?;
    }
    let mut delete_follows = false;
    for &(i, report) in &changed {
        let seen = match report {
            Some(EndpointStatus::Disconnected) if profile.merges() => {
                shown_departed(&session.participants[i], cfg, profile)
            }
            Some(EndpointStatus::Disconnected) => {
                delete_follows |= emits_deleted;
                Seen {
                    delete_pending: emits_deleted,
                    ..Seen::default()
                }
            }
            Some(_) => shown(&session.participants[i], cfg, profile),
            None => Seen::default(),
        };
        sub.set_seen(i, seen)?;
    }
    if full {
        // a full document already dropped users it omits: no deletion left to send (R58)
        for i in 0..session.participants.len() {
            let s = sub.seen(i);
            if s.delete_pending && !changed.iter().any(|&(j, _)| j == i) {
                sub.set_seen(i, Seen::default())?;
            }
        }
    }
    let users: Vec<UserEntry<'_>> = changed
        .iter()
        .map(|&(i, report)| {
            let p = &session.participants[i];
            // R52, R91: a departure says how it happened (BYE when nobody said otherwise)
            let departure = report == Some(EndpointStatus::Disconnected)
                && profile.emits_disconnection_method(cfg);
            UserEntry {
                deleted: report.is_none(),
                entity: &p.entity,
                endpoint_entity: p.endpoint_entity(cfg.endpoint_entity_contact),
                display_text: p.display_text(),
                status: report.unwrap_or(EndpointStatus::Disconnected),
                disconnection_method: departure.then(|| {
                    p.disconnection_method
                        .unwrap_or(DisconnectionMethod::Departed)
                }),
                disconnection_reason: p.disconnection_reason.as_deref().filter(|_| departure),
            }
        })
        .collect();
    // R52, R91: the counts, for RCS clients. user-count is everyone a full document would
    // list as present now: connected, being alerted (and dialing-out when listed, R59).
    let user_count = profile.counts_users().then(|| {
        let present = session
            .participants
            .iter()
            .filter(|p| p.is_listed(cfg.report_dialing_out))
            .count();
        u32::try_from(present).unwrap_or(u32::MAX)
    });
    // R93: a generic RFC 4575 client drops a document without conference-description; each
    // one carries it whole (it replaces the client's copy)
    let description =
        (profile.counts_users() || profile.always_describes()).then_some(Description {
            maximum_user_count: session.max_user_count,
        });
    let description = description.filter(|d| profile.always_describes() || !d.is_empty());
    sub.version = sub.version.wrapping_add(1);
    let doc = Document {
        entity: session.root_entity(),
        state: if full {
            DocState::Full
        } else {
            DocState::Partial
        },
        version: sub.version,
        description,
        user_count,
        users: &users,
    };
    let mut xml = Vec::with_capacity(256 + 160 * users.len());
    conference_info::write(&doc, &mut xml);
    Ok(Some(Body {
        xml,
        full,
        delete_follows,
    }))
}
