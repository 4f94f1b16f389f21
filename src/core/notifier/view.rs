//! What a subscriber is shown: its document, with privacy (R73-R79) and its output profile (R94:
//! `oma`, `rcs` R91/R95, `rfc4575` R93; core::profile).
use super::shared::{Changed, DocKey, FanOut, Shown};
use super::*;

/// The status a document gives a present participant. R91: RCS clients drop a whole NOTIFY
/// that has `alerting` (R90); an invitee being called is `dialing-out` to them.
pub(super) fn reported_status(status: EndpointStatus, profile: Profile) -> EndpointStatus {
    match status {
        EndpointStatus::Alerting if profile.merges() => EndpointStatus::DialingOut,
        s => s,
    }
}

/// What a subscriber is shown of a present participant whose facts are `f`. R55, R78: the nick
/// and Contact of a private participant are never shown, so changing them changes nothing the
/// subscriber sees. R95: `chair` (the participant is the session's chairman) is shown to `rcs`
/// subscribers as a role; it is folded into the shown nick's digest, so that a change of
/// chairman is reported.
pub(super) fn shown(f: &Facts, cfg: &Config, profile: Profile) -> Seen {
    let nick_tag = if f.privacy { 0 } else { f.nick_tag };
    Seen {
        delete_pending: false,
        status: Some(reported_status(f.status, profile)),
        nick_tag: if f.chair && profile.rich_state() {
            nick_tag ^ CHAIRMAN_TAG
        } else {
            nick_tag
        },
        // R50, R78: the Contact, when asked for and not private
        endpoint_tag: if cfg.endpoint_entity_contact && !f.privacy {
            f.contact_tag
        } else {
            0
        },
        departure_tag: 0,
    }
}

/// R91: what a merging client keeps of a participant reported `disconnected` (R90: it never
/// forgets a user).
pub(super) fn shown_departed(f: &Facts, cfg: &Config, profile: Profile) -> Seen {
    Seen {
        status: Some(EndpointStatus::Disconnected),
        departure_tag: if f.status == EndpointStatus::Disconnected {
            f.departure_tag
        } else {
            0 // not in the session, yet not gone either (R59 dialing-out): reported `departed`
        },
        ..shown(f, cfg, profile)
    }
}

/// R95: a departure's reason as a SIP Reason header value, as the RCS clients read it: a fed
/// `603 Decline` becomes `SIP;cause=603;text="Decline"`; anything not starting with a three-digit
/// code (or already a Reason value) is kept as fed.
pub(crate) fn reason_value(fed: &[u8]) -> Vec<u8> {
    let digits = fed.len() >= 3 && fed[..3].iter().all(u8::is_ascii_digit);
    if !digits || fed.get(3).is_some_and(|&b| b != b' ') {
        return fed.to_vec();
    }
    let mut out = b"SIP;cause=".to_vec();
    out.extend_from_slice(&fed[..3]);
    let text = fed.get(4..).unwrap_or_default().trim_ascii();
    if !text.is_empty() {
        out.extend_from_slice(b";text=\"");
        for &b in text {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
    out
}

/// What a subscription believes of each participant: the session's facts at its mark
/// (`Subscription::told_mark`, core::history) but for its `beliefs`.
struct Believer {
    /// The participants changed since the mark, with their facts then (`History::since`).
    before: Vec<(usize, Option<Facts>)>,
    /// Whether the mark is one the history can answer for (not `NEVER`).
    based: bool,
}

impl Believer {
    fn of<A: Allocator + Clone>(session: &Session<A>, sub: &Subscription<A>) -> Self {
        let mut before = Vec::new();
        let based = session.history.since(sub.told_mark, &mut before);
        Believer { before, based }
    }

    /// What `sub` believes of participant `i`; `now`: what it shows now.
    fn at<A: Allocator>(
        &self,
        sub: &Subscription<A>,
        cfg: &Config,
        i: usize,
        now: impl FnOnce() -> Shown,
    ) -> Seen {
        if let Some(b) = sub.beliefs.get(i) {
            return b;
        }
        if !self.based {
            return Seen::default();
        }
        match self.before.binary_search_by_key(&i, |&(j, _)| j) {
            Ok(k) => self.before[k].1.map_or_else(Seen::default, |f| {
                Shown::of_facts(&f, cfg, sub.profile).believed()
            }),
            Err(_) => now().believed(),
        }
    }

    /// The participants whose belief may differ from what they show now: changed since the
    /// mark, or believed otherwise; ascending.
    fn looked_at<A: Allocator>(&self, sub: &Subscription<A>) -> Vec<usize> {
        let mut r: Vec<usize> = self.before.iter().map(|&(i, _)| i).collect();
        r.extend(sub.beliefs.indexes());
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// What `sub` believes of every participant of `session`, in order (trailing nothing-believed
/// ones left out): what a stored record keeps (persist.rs).
pub(super) fn told<A: Allocator + Clone>(
    session: &Session<A>,
    sub: &Subscription<A>,
    cfg: &Config,
) -> Vec<Seen> {
    let belief = Believer::of(session, sub);
    let mut told: Vec<Seen> = (0..session.participants.len())
        .map(|i| {
            belief.at(sub, cfg, i, || {
                Shown::of(session, &session.participants[i], cfg, sub.profile)
            })
        })
        .collect();
    while told.last() == Some(&Seen::default()) {
        told.pop();
    }
    told
}

/// Moves `sub`'s mark to now, its beliefs unchanged: so that the history before its mark can
/// be forgotten (`Notifier::trim_history`). A subscription never told anything stays so.
pub(super) fn move_mark<A: Allocator + Clone>(
    session: &Session<A>,
    sub: &mut Subscription<A>,
    cfg: &Config,
) -> Result<(), OutOfMemory> {
    let belief = Believer::of(session, sub);
    if !belief.based {
        return Ok(());
    }
    let mut beliefs: Vec<(u32, Seen)> = Vec::new();
    for i in belief.looked_at(sub) {
        let now = Shown::of(session, &session.participants[i], cfg, sub.profile);
        let old = belief.at(sub, cfg, i, || now);
        if old != now.believed() {
            beliefs.push((i as u32, old));
        }
    }
    sub.beliefs.replace(&beliefs)?;
    sub.told_mark = session.history.mark();
    Ok(())
}

/// Folded into a chairman's shown nick digest (`shown`).
const CHAIRMAN_TAG: u32 = 0x5bd1_e995;

/// A document for one subscription, and whether it is full.
pub(super) struct Body {
    pub(super) xml: Vec<u8>,
    pub(super) full: bool,
    /// R58: a deletion is due in a later NOTIFY of its own.
    pub(super) delete_follows: bool,
}

/// Builds the next document for `sub` and records what it tells (R33, R46, R54, R57, R65).
/// Ok(None): a partial document would be empty (R55). `fan` shares what the other
/// subscriptions polled in the same call computed (`shared.rs`).
pub(super) fn document<A: Allocator + Clone>(
    session: &Session<A>,
    sub: &mut Subscription<A>,
    cfg: &Config,
    mut full: bool,
    fan: &mut FanOut,
) -> Result<Option<Body>, OutOfMemory> {
    let profile = sub.profile;
    let emits_deleted = profile.emits_deleted(cfg);
    // what the subscriber believes: the session's facts at its mark (core::history), but for
    // its `beliefs`; a partial document looks only at the participants changed since and at
    // those, when the history can tell
    let belief = Believer::of(session, sub);
    let recent_known = fan.recent_only && belief.based;
    let recent = if recent_known {
        belief.looked_at(sub)
    } else {
        Vec::new()
    };
    // what each participant shows: from the view computed once per profile in this call
    // (`fan`) when every participant is looked at, else computed for the few looked at
    let shown_at = |view: Option<&[Shown]>, i: usize| match view {
        Some(v) => v[i],
        None => Shown::of(session, &session.participants[i], cfg, profile),
    };
    if full || !recent_known {
        fan.prepare_view(session, cfg, profile);
    }
    // the participants a document looks at, ascending: everyone, or the recent few (no copy
    // of either: a full document of a big session is every SUBSCRIBE's first)
    let looked_at = |full: bool| {
        let every = full || !recent_known;
        let all = if every {
            0..session.participants.len()
        } else {
            0..0
        };
        let few: &[usize] = if every { &[] } else { &recent };
        all.chain(few.iter().copied())
    };
    // (participant index, status to report; None: R58 `state="deleted"`), ascending
    let changes = |full: bool, view: Option<&[Shown]>| {
        let mut changed: Changed = Vec::new();
        for i in looked_at(full) {
            let p = &session.participants[i];
            let shown = shown_at(view, i);
            let seen = belief.at(sub, cfg, i, || shown);
            if shown.listed {
                if full || seen != shown.present {
                    changed.push((i, Some(reported_status(p.status, profile))));
                }
            } else if profile.merges() {
                // R90, R91: a merging client keeps every user it heard of, with the last status
                // it was told. So a departure is reported to whoever was shown the user, again
                // whenever how the user left changes, and in every full document: the client's
                // list may be older than this subscription (an earlier one, a lost NOTIFY).
                let told = seen.status.is_some();
                if (full && (told || shown.departed)) || (told && seen != shown.gone) {
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
    let mut changed = changes(full, fan.view(session, profile));
    // R93, R95: the profiles that show a description are sent it again when it changed
    let has_description = session.subject.is_some() || session.max_user_count.is_some();
    // (an rcs subscriber once told a subject is told its removal too: an emptied description)
    let describes = profile.always_describes()
        || (profile.counts_users() && (has_description || sub.seen_description != 0));
    // (the digest only where a description is written: `oma` never needs it)
    let description_tag = if describes {
        session.description_tag()
    } else {
        0
    };
    let stale_description = describes && sub.seen_description != description_tag;
    if !full && changed.len() > cfg.max_pending_changes {
        // R65: a full document replaces the subscriber's list, so it lists everyone present
        // (not only the changes) and still reports the departures (R57)
        full = true;
        fan.prepare_view(session, cfg, profile);
        changed = changes(true, fan.view(session, profile));
    }
    let sends = full || !changed.is_empty() || stale_description;
    // what the subscriber believes once told this document (nothing, when none is sent: R55),
    // where the facts now do not say it
    let view = fan.view(session, profile);
    let mut delete_follows = false;
    let mut beliefs: Vec<(u32, Seen)> = Vec::new();
    let mut reported = changed.iter().peekable();
    for i in looked_at(full) {
        // (what it shows now, computed once per participant looked at)
        let now = shown_at(view, i);
        let old = belief.at(sub, cfg, i, || now);
        let new = match reported.next_if(|&&(j, _)| j == i) {
            Some(&(_, report)) if sends => match report {
                Some(EndpointStatus::Disconnected) if profile.merges() => now.gone,
                Some(EndpointStatus::Disconnected) => {
                    delete_follows |= emits_deleted;
                    Seen {
                        delete_pending: emits_deleted,
                        ..Seen::default()
                    }
                }
                Some(_) => now.present,
                None => Seen::default(),
            },
            // a full document already dropped users it omits: no deletion left to send (R58)
            _ if full && old.delete_pending => Seen::default(),
            _ => old,
        };
        if new != now.believed() {
            beliefs.push((i as u32, new));
        }
    }
    sub.beliefs.replace(&beliefs)?;
    sub.told_mark = session.history.mark();
    if !sends {
        return Ok(None);
    }
    if describes {
        sub.seen_description = description_tag;
    }
    sub.version = sub.version.wrapping_add(1);
    let subscriber = sub.subscriber();
    let key = DocKey::new(session, profile, full, describes, &changed);
    let xml = if fan.keeps() {
        // written once for the subscribers it fits, each copy with its own version and
        // `yourown` on the subscriber's own entries (R95)
        let own: Vec<usize> = if profile.rich_state() {
            let own_entry = |&(i, report): &(usize, Option<EndpointStatus>)| {
                report.is_some() && session.participants[i].aoia.as_slice() == subscriber
            };
            (0..changed.len())
                .filter(|&k| own_entry(&changed[k]))
                .collect()
        } else {
            Vec::new()
        };
        match fan.document(&key, sub.version, &own) {
            Some(xml) => xml,
            None => {
                let mut marks = conference_info::Marks::default();
                let xml = write_document(session, cfg, &key, None, sub.version, Some(&mut marks));
                let mine = conference_info::personalize(&xml, &marks, sub.version, &own);
                fan.keep(&key, xml, marks);
                mine
            }
        }
    } else {
        write_document(session, cfg, &key, Some(subscriber), sub.version, None)
    };
    Ok(Some(Body {
        xml,
        full,
        delete_follows,
    }))
}

/// Writes the document `key` describes, as `version`, with `yourown` on the entries of
/// `subscriber` (R95; None: on none), recording `marks` when given.
fn write_document<A: Allocator + Clone>(
    session: &Session<A>,
    cfg: &Config,
    key: &DocKey<'_>,
    subscriber: Option<&[u8]>,
    version: u32,
    marks: Option<&mut conference_info::Marks>,
) -> Vec<u8> {
    let (changed, full, describes, profile) = (key.changed, key.full, key.describes, key.profile);
    // R95: the RCS clients read a departure's reason as a Reason header value; the other
    // profiles write it as fed, with no copy (this runs for every NOTIFY)
    let rich = profile.rich_state();
    let reasons: Vec<Option<Vec<u8>>> = if rich {
        changed
            .iter()
            .map(|&(i, _)| {
                let reason = session.participants[i].disconnection_reason.as_deref();
                reason.map(reason_value)
            })
            .collect()
    } else {
        Vec::new()
    };
    let users: Vec<UserEntry<'_>> = changed
        .iter()
        .enumerate()
        .map(|(k, &(i, report))| {
            let p = &session.participants[i];
            let departed = report == Some(EndpointStatus::Disconnected);
            // R52, R91: a departure says how it happened (BYE when nobody said otherwise)
            let departure = departed && profile.emits_disconnection_method(cfg);
            let method = departure.then(|| {
                p.disconnection_method
                    .unwrap_or(DisconnectionMethod::Departed)
            });
            let known = |ms: u64| (rich && ms != 0).then_some(ms);
            UserEntry {
                deleted: report.is_none(),
                // R95: a removal by the chairman is a deletion the RCS clients still read
                removed: rich && method == Some(DisconnectionMethod::Booted),
                yourown: rich && subscriber == Some(p.aoia.as_slice()),
                chairman: rich && !departed && session.is_chairman(p),
                entity: &p.entity,
                endpoint_entity: p.endpoint_entity(cfg.endpoint_entity_contact),
                display_text: p.display_text(),
                status: report.unwrap_or(EndpointStatus::Disconnected),
                joined_at: if departed { None } else { known(p.joined_ms) },
                left_at: if departed { known(p.left_ms) } else { None },
                disconnection_method: method,
                disconnection_reason: match reasons.get(k) {
                    Some(rich_reason) => rich_reason.as_deref(),
                    None => p.disconnection_reason.as_deref(),
                }
                .filter(|_| departure),
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
    let description = describes.then(|| Description {
        subject: session.subject.as_ref().map(|s| s.text.as_slice()),
        maximum_user_count: session.max_user_count,
    });
    let doc = Document {
        entity: session.root_entity(),
        state: if full {
            DocState::Full
        } else {
            DocState::Partial
        },
        version,
        description,
        user_count,
        users: &users,
    };
    let mut xml = Vec::with_capacity(256 + 160 * users.len());
    conference_info::write(&doc, &mut xml, marks);
    xml
}
