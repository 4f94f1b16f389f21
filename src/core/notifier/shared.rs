//! Work shared by the subscriptions polled in one call (a fan-out, a timer tick): what each
//! profile shows of every participant, computed once per session and profile rather than once
//! per subscriber, and each distinct document written once and copied with each subscriber's
//! version (issue 16, R94: the cost of a change grows with the profiles in use, not with the
//! documents built).
//!
//! A `FanOut` lives for one call of the notifier and in the caller's process memory (never in
//! shm): no session changes while it lives, so what it holds stays true. Sessions are told apart
//! by address, which nothing moves during the call.
use super::view::{shown, shown_departed};
use super::*;

/// What a profile shows of one participant (`view::shown`), precomputed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shown {
    /// Listed in documents now (R59).
    pub(super) listed: bool,
    pub(super) departed: bool,
    pub(super) present: Seen,
    /// R91: what a merging profile shows once the participant left.
    pub(super) gone: Seen,
}

impl Shown {
    pub(super) fn of<A: Allocator + Clone>(
        session: &Session<A>,
        p: &Participant<A>,
        cfg: &Config,
        profile: Profile,
    ) -> Shown {
        Shown::of_facts(&p.facts(session.is_chairman(p)), cfg, profile)
    }

    /// What `profile` shows of a participant whose facts are `f` (core::history).
    pub(super) fn of_facts(f: &Facts, cfg: &Config, profile: Profile) -> Shown {
        let listed = is_listed(f.status, cfg.report_dialing_out);
        Shown {
            listed,
            departed: f.status == EndpointStatus::Disconnected,
            present: shown(f, cfg, profile),
            // (only a merging profile keeps a user that is not listed)
            gone: if !listed && profile.merges() {
                shown_departed(f, cfg, profile)
            } else {
                Seen::default()
            },
        }
    }

    /// What a subscription told everything while this was shown believes (core::history): the
    /// participant as listed; gone, to a merging profile, once departed (R90, R91: a full
    /// document reports every departure to it, a partial one every departure of a user it was
    /// told of); else nothing (R57: a departure is reported once, then forgotten).
    pub(super) fn believed(&self) -> Seen {
        if self.listed {
            self.present
        } else if self.departed {
            self.gone
        } else {
            Seen::default()
        }
    }
}

/// The changes one document reports: (participant index, status; None: R58 `state="deleted"`).
pub(super) type Changed = Vec<(usize, Option<EndpointStatus>)>;

/// What decides a document's bytes, but for its version and `yourown` (R95, per subscriber).
#[derive(Clone, Copy)]
pub(super) struct DocKey<'c> {
    session: usize,
    pub(super) profile: Profile,
    pub(super) full: bool,
    pub(super) describes: bool,
    pub(super) changed: &'c [(usize, Option<EndpointStatus>)],
}

impl<'c> DocKey<'c> {
    pub(super) fn new<A: Allocator>(
        session: &Session<A>,
        profile: Profile,
        full: bool,
        describes: bool,
        changed: &'c [(usize, Option<EndpointStatus>)],
    ) -> Self {
        DocKey {
            session: address(session),
            profile,
            full,
            describes,
            changed,
        }
    }
}

struct SharedDoc {
    session: usize,
    profile: Profile,
    full: bool,
    describes: bool,
    changed: Changed,
    /// Written with no `yourown` (see `conference_info::personalize`).
    xml: Vec<u8>,
    marks: conference_info::Marks,
}

impl SharedDoc {
    fn fits(&self, k: &DocKey<'_>) -> bool {
        self.session == k.session
            && self.profile == k.profile
            && self.full == k.full
            && self.describes == k.describes
            && self.changed == k.changed
    }
}

struct ProfileView {
    session: usize,
    profile: Profile,
    shown: Vec<Shown>,
}

/// Documents and views kept at once: a call touches a few sessions' few profiles, a tick may
/// touch many sessions (the oldest are dropped).
const MAX_KEPT: usize = 12;

/// See the module doc.
pub(super) struct FanOut {
    /// Whether documents may skip the participants the journal says nothing changed for
    /// (core::journal); off only in tests that compare with and without.
    pub(super) recent_only: bool,
    /// Whether views and documents are kept for the next subscription (not for one polled
    /// alone).
    keep: bool,
    views: Vec<ProfileView>,
    docs: Vec<SharedDoc>,
}

fn address<A: Allocator>(session: &Session<A>) -> usize {
    std::ptr::from_ref(session) as usize
}

impl FanOut {
    /// For the subscriptions polled in one call; `share`: `Notifier::share_documents`.
    pub(super) fn new(share: bool) -> Self {
        FanOut {
            recent_only: share,
            keep: share,
            views: Vec::new(),
            docs: Vec::new(),
        }
    }

    /// For one subscription polled alone.
    pub(super) fn single(share: bool) -> Self {
        FanOut {
            keep: false,
            ..Self::new(share)
        }
    }

    /// Computes what `profile` shows of every participant of `session` (`view`), unless
    /// done already in this call or nothing is kept.
    pub(super) fn prepare_view<A: Allocator + Clone>(
        &mut self,
        session: &Session<A>,
        cfg: &Config,
        profile: Profile,
    ) {
        if !self.keep || self.view(session, profile).is_some() {
            return;
        }
        if self.views.len() == MAX_KEPT {
            self.views.remove(0);
        }
        let shown = session
            .participants
            .iter()
            .map(|p| Shown::of(session, p, cfg, profile))
            .collect();
        self.views.push(ProfileView {
            session: address(session),
            profile,
            shown,
        });
    }

    /// What `profile` shows of every participant of `session`, if `prepare_view` computed it.
    pub(super) fn view<A: Allocator>(
        &self,
        session: &Session<A>,
        profile: Profile,
    ) -> Option<&[Shown]> {
        let at = address(session);
        let v = self
            .views
            .iter()
            .find(|v| v.session == at && v.profile == profile)?;
        Some(&v.shown)
    }

    /// Whether views and documents are kept for the next subscription.
    pub(super) fn keeps(&self) -> bool {
        self.keep
    }

    /// A document already written in this call for `key`, as `version`, with `yourown` on
    /// the user entries `own`.
    pub(super) fn document(
        &self,
        key: &DocKey<'_>,
        version: u32,
        own: &[usize],
    ) -> Option<Vec<u8>> {
        let d = self.docs.iter().find(|d| d.fits(key))?;
        Some(conference_info::personalize(&d.xml, &d.marks, version, own))
    }

    /// Keeps a document just written for `key` (with no `yourown`), for the next subscriber
    /// it fits.
    pub(super) fn keep(&mut self, key: &DocKey<'_>, xml: Vec<u8>, marks: conference_info::Marks) {
        if !self.keep {
            return;
        }
        if self.docs.len() == MAX_KEPT {
            self.docs.remove(0);
        }
        self.docs.push(SharedDoc {
            session: key.session,
            profile: key.profile,
            full: key.full,
            describes: key.describes,
            changed: key.changed.to_vec(),
            xml,
            marks,
        });
    }
}
