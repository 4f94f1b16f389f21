//! Sessions and their participants: open, close, participant changes, group re-authorisation.
use super::*;

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// docs/interface.md `imconf_session_open`. Opening an open session changes nothing.
    pub fn open_session(
        &mut self,
        session_uri: &[u8],
        kind: SessionKind,
        group: Option<&[u8]>,
    ) -> Result<(), SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        if self.sessions.contains_key(key.as_slice()) {
            return Err(SessionError::AlreadyOpen);
        }
        let session = Session::try_new(session_uri, kind, group, self.seed, self.alloc.clone())?;
        let key = Key::try_new(&key, self.alloc.clone())?;
        self.sessions.try_reserve(1).map_err(|_| OutOfMemory)?;
        if let Some(g) = group {
            // R3: the group identity stands for this session (the module adds the same alias
            // in the group URI's own slot when that is another notifier)
            self.add_alias(g, session_uri)?;
        }
        self.changes.session(&key.0);
        self.sessions.insert(key, session);
        Ok(())
    }

    /// R67, R38: every subscription gets `terminated;reason=noresource` and the session is gone.
    pub fn close_session(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
    ) -> Result<Vec<Notify>, SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .remove(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        let ids: Vec<u32> = session.subs.iter().copied().collect();
        if let Some(g) = &session.group {
            self.remove_alias(g, session_uri);
        }
        self.changes.session_gone(&session.uri);
        drop(session);
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::NoResource);
            }
            self.poll_or_queue(cfg, now, id, &mut fan, &mut out);
        }
        Ok(out)
    }

    /// R72: the node stops and its subscriptions will not outlive it: every subscription gets
    /// `terminated;reason=deactivated` at once (best effort: no response will be awaited, so a
    /// NOTIFY still in flight does not hold the last one back, and none takes a place under
    /// the cap: every subscriber is told, not only the first `max_inflight_notifies`) and is
    /// forgotten.
    pub fn shutdown(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        let ids: Vec<u32> = self.subs.keys().copied().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::Deactivated);
                if sub.in_flight.take().is_some() && std::mem::take(&mut sub.holds_place) {
                    self.gate.release(); // its response will never be read
                }
            }
            out.extend(self.final_notify(cfg, now, id));
        }
        out
    }

    /// R71: after the group documents changed, every live subscription of a group session
    /// whose subscriber `policy` now denies ends with `terminated;reason=rejected`, no body.
    /// An unreadable document (`Unavailable`) ends nothing: it is not a policy decision.
    pub fn reauthorize(&mut self, cfg: &Config, now: u64, policy: &dyn GroupPolicy) -> Vec<Notify> {
        let mut revoked = Vec::new();
        for (id, sub) in self.subs.iter() {
            if sub.terminate.is_some() {
                continue;
            }
            let Some(session) = self.sessions.get(sub.session()) else {
                continue;
            };
            let Some(group) = session.group.as_ref().filter(|_| session.kind.is_group()) else {
                continue;
            };
            if policy.authorize(group, sub.asserted(), sub.anonymous) == Some(GroupAuth::Deny) {
                revoked.push(*id);
            }
        }
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        for id in revoked {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.terminate = Some(Termination::Rejected);
                self.stats.rejected_by_policy += 1;
            }
            // (a new document may revoke thousands: queued like a change's fan-out, issue 18)
            self.poll_or_queue(cfg, now, id, &mut fan, &mut out);
        }
        out
    }

    /// Every open group session with its group URI (R88 when the documents change).
    pub fn group_sessions(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.sessions
            .values()
            .filter(|s| s.kind.is_group())
            .filter_map(|s| Some((s.uri.to_vec(), s.group.as_ref()?.to_vec())))
            .collect()
    }

    /// Whether `aoia` is a participant of the session with a Nick Name already (R49: a name the
    /// participant asserted wins over the group document's `rl:display-name`).
    pub fn has_nick(&self, session_uri: &[u8], aoia: &[u8]) -> bool {
        let Some(key) = uri::session_key(session_uri) else {
            return false;
        };
        let Some(session) = self.sessions.get(key.as_slice()) else {
            return false;
        };
        session
            .participant_index(aoia)
            .and_then(|i| session.participants.get(i))
            .is_some_and(|p| p.nick.is_some())
    }

    /// The open sessions of `group_uri` (R67 when its document is removed).
    pub fn sessions_of_group(&self, group_uri: &[u8]) -> Vec<Vec<u8>> {
        let Some(gkey) = uri::session_key(group_uri) else {
            return Vec::new();
        };
        self.sessions
            .values()
            .filter(|s| {
                s.group
                    .as_ref()
                    .and_then(|g| uri::session_key(g))
                    .is_some_and(|k| k.as_slice() == gkey.as_slice())
            })
            .map(|s| s.uri.to_vec())
            .collect()
    }

    /// docs/interface.md `imconf_participant`: R26 partial NOTIFYs (rate limited, R61-R62) and R68.
    pub fn participant(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        update: &ParticipantUpdate<'_>,
    ) -> Result<Vec<Notify>, SessionError> {
        self.participant_stamped(cfg, now, session_uri, update, 0)
    }

    /// `participant` with a cluster stamp (docs/cluster.md): a change stamped at or below the
    /// one that last changed this user is older and changes nothing (last writer wins), so
    /// nodes that apply the same changes in different orders end in the same state.
    pub fn participant_stamped(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        update: &ParticipantUpdate<'_>,
        stamp: u64,
    ) -> Result<Vec<Notify>, SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .get_mut(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        if stamp != 0 && session.stamp_of(update.aoia) >= stamp {
            return Ok(Vec::new());
        }
        let Some(idx) = session.apply(update, self.alloc.clone())? else {
            if stamp != 0 {
                session.remember_departure(update, stamp, self.alloc.clone())?;
                self.trim_history(cfg, &key);
            }
            return Ok(Vec::new());
        };
        if let Some(p) = session.participants.get_mut(idx) {
            p.stamp = stamp;
        }
        let session = self.trim_history(cfg, &key);
        let ids: Vec<u32> = session.subs.iter().copied().collect();
        self.changes.session(&key);
        let leaving = update.status == EndpointStatus::Disconnected && cfg.terminate_on_leave;
        let leaver = uri::identity_key(update.aoia);
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        for id in ids {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if leaving && sub.subscriber() == leaver.as_slice() && sub.terminate.is_none() {
                // R68: the leaver's own subscriptions end; the others hear of the departure (R57)
                sub.terminate = Some(Termination::NoResource);
            } else if sub.dirty || sub.in_flight.is_some() {
                sub.dirty = true;
                self.stats.coalesced += 1;
            } else {
                sub.dirty = true;
            }
            self.poll_or_queue(cfg, now, id, &mut fan, &mut out);
        }
        Ok(out)
    }

    /// R95: the session's subject (`text` None: none), set by `by` at `when_ms` (wall-clock
    /// ms). The subscribers whose profile shows it (`rcs`, `rfc4575`) are sent the description
    /// again. `stamp`: the cluster stamp (0: none); a change older than the one in force is
    /// dropped.
    pub fn set_subject(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        u: &SubjectUpdate<'_>,
        stamp: u64,
    ) -> Result<Vec<Notify>, SessionError> {
        let a = self.alloc.clone();
        let subject = match u.text {
            Some(text) => Some(Subject {
                text: try_bytes(text, a.clone())?,
                by: u.by.map(|b| try_bytes(b, a.clone())).transpose()?,
                when_ms: u.when_ms,
            }),
            None => None,
        };
        self.change_session(cfg, now, session_uri, |s| {
            Ok(last_writer_wins(
                &mut s.subject,
                &mut s.subject_stamp,
                subject,
                stamp,
            ))
        })
    }

    /// R95: the session's chairman (an AOIA; None: none), shown to `rcs` subscribers as the
    /// `chairman` role of that user.
    pub fn set_chairman(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        chairman: Option<&[u8]>,
        stamp: u64,
    ) -> Result<Vec<Notify>, SessionError> {
        let key = chairman.map(uri::identity_key);
        let chairman = match key {
            Some(k) => Some(try_bytes(&k, self.alloc.clone())?),
            None => None,
        };
        self.change_session(cfg, now, session_uri, |s| {
            // (last writer wins, as `last_writer_wins`; the session records what the old and
            // the new chairman's records showed before: core::history)
            if stamp != 0 && s.chairman_stamp >= stamp {
                return Ok(false);
            }
            s.set_chairman(chairman)?;
            s.chairman_stamp = stamp;
            Ok(true)
        })
    }

    /// Applies `change` to a session's own state (false: nothing changed) and lets each
    /// subscription's next document say so (those it changes nothing for send nothing: an empty
    /// partial is not sent, R55).
    fn change_session(
        &mut self,
        cfg: &Config,
        now: u64,
        session_uri: &[u8],
        change: impl FnOnce(&mut Session<A>) -> Result<bool, OutOfMemory>,
    ) -> Result<Vec<Notify>, SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .get_mut(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        if !change(session)? {
            return Ok(Vec::new());
        }
        let session = self.trim_history(cfg, &key);
        let ids: Vec<u32> = session.subs.iter().copied().collect();
        self.changes.session(&key);
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                if sub.dirty || sub.in_flight.is_some() {
                    self.stats.coalesced += 1;
                }
                sub.dirty = true;
            }
            self.poll_or_queue(cfg, now, id, &mut fan, &mut out);
        }
        Ok(out)
    }

    /// Cuts the history of the session `key` short once it holds more than it needs
    /// (`History::cut_point`), first moving the subscriptions still behind the cut past it,
    /// their beliefs unchanged (`view::move_mark`). Returns the session. When memory runs out
    /// the history stays whole: it is cut at a later change.
    fn trim_history(&mut self, cfg: &Config, key: &[u8]) -> &Session<A> {
        let session = self
            .sessions
            .get_mut(key)
            .expect("the session just changed");
        let keep = self
            .history_keep
            .unwrap_or_else(|| History::<A>::keeps(session.participants.len()));
        if let Some(cut) = session.history.cut_point(keep) {
            let mut moved = true;
            for id in session.subs.iter() {
                let Some(sub) = self.subs.get_mut(id) else {
                    continue;
                };
                if sub.told_mark != history::NEVER && sub.told_mark < cut {
                    moved &= view::move_mark(session, sub, cfg).is_ok();
                }
            }
            if moved {
                session.history.cut(cut);
            }
        }
        session
    }

    /// R52, R88: the session's `maximum-user-count` (the group document's
    /// `<max-participant-count>`; None: unknown), written under `rcs_compat` (R91). It sends
    /// nothing by itself: the next document of each subscription carries it.
    pub fn set_max_user_count(
        &mut self,
        session_uri: &[u8],
        max: Option<u32>,
    ) -> Result<(), SessionError> {
        let key = uri::session_key(session_uri).ok_or(SessionError::UnknownSession)?;
        let session = self
            .sessions
            .get_mut(key.as_slice())
            .ok_or(SessionError::UnknownSession)?;
        if session.max_user_count != max {
            session.max_user_count = max;
            self.changes.session(&key);
        }
        Ok(())
    }
}

/// Sets `field` to `value` unless a change stamped at or after `stamp` is in force (a peer's
/// older change, docs/cluster.md "Conflicts"); unstamped changes (0) always apply. Whether it did.
fn last_writer_wins<T>(field: &mut T, field_stamp: &mut u64, value: T, stamp: u64) -> bool {
    if stamp != 0 && *field_stamp >= stamp {
        return false;
    }
    *field = value;
    *field_stamp = stamp;
    true
}
