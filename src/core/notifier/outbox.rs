//! The NOTIFY outbox: when a subscription's NOTIFY may go (R25, R32, R61, R66), completions,
//! the timer, and building the NOTIFY's header lines.
use super::*;

impl<A: Allocator + Clone, G: SendGate> Notifier<A, G> {
    /// The NOTIFY of `token` is over (answered, or refused by tm): its place under the cap is
    /// freed and its subscription's NOTIFY in flight cleared. Returns that subscription, or
    /// None for a terminating NOTIFY (R69: gone already) and for late or repeated tokens.
    pub(super) fn settle(&mut self, token: u64) -> Option<u32> {
        let id = ((token & ((1u64 << TOKEN_BITS) - 1)) >> CSEQ_BITS) as u32;
        let cseq_low = (token & ((1u64 << CSEQ_BITS) - 1)) as u32;
        let core_token = token & ((1u64 << TOKEN_BITS) - 1);
        if self.final_tokens.remove(&core_token).is_some() {
            self.gate.release();
            return None;
        }
        let sub = self.subs.get_mut(&id)?;
        match sub.in_flight {
            Some(c) if c & ((1 << CSEQ_BITS) - 1) == cseq_low => sub.in_flight = None,
            _ => return None,
        }
        if std::mem::take(&mut sub.holds_place) {
            self.gate.release();
        }
        Some(id)
    }

    /// R31: the final response of a NOTIFY. Returns the next NOTIFY of that subscription, if due.
    pub fn notify_completed(
        &mut self,
        cfg: &Config,
        now: u64,
        token: u64,
        code: u16,
    ) -> Vec<Notify> {
        let mut out = Vec::new();
        if let Some(id) = self.settle(token) {
            self.changes.sub(id); // confirmed: a restart need not resend it in full
            if (200..300).contains(&code) {
                self.stats.notify_ok += 1;
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.unsent = 0;
                }
                out.extend(self.poll(cfg, now, id));
            } else {
                // 481 MUST, 408 SHOULD, any other failure [ENG]: the subscription is removed
                self.stats.notify_failed += 1;
                self.remove(id);
            }
        }
        out.extend(self.kick(cfg, now));
        out
    }

    /// tm could not send the NOTIFY of `token` (no shared memory for its transaction, say):
    /// nothing reached the subscriber. The subscription stays and sends its state again, in
    /// full and with the same CSeq and version, after `UNSENT_RETRY_MS` (or with the next
    /// change); after `MAX_UNSENT` refusals in a row it is removed like a failed one (R31).
    /// A refused terminating NOTIFY only frees its place.
    pub fn notify_unsent(&mut self, cfg: &Config, now: u64, token: u64) -> Vec<Notify> {
        if let Some(id) = self.settle(token) {
            if let Some(sub) = self.subs.get_mut(&id) {
                // it never left: its CSeq and version are used again (R40, R33 stay gapless)
                sub.dialog.local_cseq = sub.dialog.local_cseq.wrapping_sub(1);
                sub.version = sub.version.saturating_sub(1);
                sub.unsent = sub.unsent.saturating_add(1);
                if sub.unsent >= MAX_UNSENT {
                    self.stats.notify_failed += 1;
                    self.remove(id);
                } else {
                    // what the subscriber was told is unknown now: a full document puts it right
                    sub.needs_full = true;
                    self.wake_at(id, now + UNSENT_RETRY_MS);
                }
            }
        }
        self.kick(cfg, now)
    }

    /// R66: NOTIFYs that waited for a place, oldest first, while places are free.
    pub(super) fn kick(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        let mut out = Vec::new();
        let mut fan = self.fan_out();
        while self.waiting_head < self.waiting.len() {
            let id = self.waiting[self.waiting_head];
            let Some(sub) = self.subs.get_mut(&id) else {
                self.waiting_head += 1;
                continue;
            };
            // leave the oldest at the head until a place is free (FIFO)
            if !self.gate.try_acquire() {
                break;
            }
            self.gate.release(); // poll takes it (another process may win it first: then
                                 // this one queues again, at the back)
            self.waiting_head += 1;
            sub.waiting = false;
            out.extend(self.poll_in(cfg, now, id, &mut fan));
        }
        if self.waiting_head == self.waiting.len() {
            self.waiting.clear();
            self.waiting_head = 0;
        }
        out
    }

    /// Takes a place under the cap, or queues `id` for one (R66).
    pub(super) fn admit(&mut self, id: u32) -> bool {
        if self.gate.try_acquire() {
            return true;
        }
        if let Some(sub) = self.subs.get_mut(&id) {
            if !sub.waiting {
                if self.waiting.try_reserve(1).is_ok() {
                    sub.waiting = true;
                    self.waiting.push(id);
                } else {
                    // the queue cannot grow: the next tick's full scan finds it due
                    self.rescan = true;
                }
            }
        }
        false
    }

    /// The reply that `SubscribeOutcome::held` waited for has left: the NOTIFYs may follow.
    pub fn reply_sent(&mut self, cfg: &Config, now: u64, id: u32) -> Vec<Notify> {
        match self.subs.get_mut(&id) {
            Some(sub) => sub.held_since = None,
            None => return Vec::new(),
        }
        self.poll(cfg, now, id).into_iter().collect()
    }

    /// Timer: R30 expiries, NOTIFYs held back by the rate limit (R61) or by a reply that never
    /// reported leaving (R25), and NOTIFYs that waited for a place under the cap (R66).
    ///
    /// It looks only at the subscriptions whose deadline has come (`Deadlines`), not at every
    /// subscription: O(due log n) rather than O(n) every `timer_interval_ms`. Only after an
    /// allocation failure (a deadline or a queue place that could not be recorded) does it
    /// scan them all once.
    pub fn tick(&mut self, cfg: &Config, now: u64) -> Vec<Notify> {
        self.release_slow_final(cfg, now);
        let mut out = self.kick(cfg, now);
        let due: Vec<u32> = if std::mem::take(&mut self.rescan) {
            self.subs.keys().copied().collect()
        } else {
            // collected first: what handling them arms for `now` waits for the next tick
            std::iter::from_fn(|| self.deadlines.pop_due(now)).collect()
        };
        let mut fan = self.fan_out();
        for id in due {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            if sub.terminate.is_none() && sub.expires_at <= now {
                sub.terminate = Some(Termination::Timeout);
            }
            if let Some(slow_at) = slow_since(sub, cfg) {
                if now >= slow_at {
                    // its destination does not answer: the place goes to one that does
                    sub.holds_place = false;
                    self.gate.release();
                    self.stats.notifies_slow += 1;
                } else {
                    self.wake_at(id, slow_at);
                }
            }
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            let has_work = sub.dirty || sub.terminate.is_some() || sub.needs_full;
            if sub.in_flight.is_none() && !sub.waiting && has_work {
                out.extend(self.poll_in(cfg, now, id, &mut fan));
            }
            // while it lives, a subscription stays armed for its expiry
            if let Some(sub) = self.subs.get(&id) {
                if sub.terminate.is_none() {
                    let expires_at = sub.expires_at;
                    self.wake_at(id, expires_at);
                }
            }
        }
        // the places given up above go to the NOTIFYs that wait (R66)
        out.extend(self.kick(cfg, now));
        out
    }

    /// Terminating NOTIFYs unanswered for `slow_notify_ms` give up their place (their
    /// subscription is gone, R69, so they are found here rather than by a deadline).
    fn release_slow_final(&mut self, cfg: &Config, now: u64) {
        if cfg.slow_notify_ms == 0 || self.final_tokens.is_empty() {
            return;
        }
        let before = self.final_tokens.len();
        self.final_tokens
            .retain(|_, sent| now < *sent + cfg.slow_notify_ms);
        for _ in self.final_tokens.len()..before {
            self.gate.release();
            self.stats.notifies_slow += 1;
        }
    }

    /// Arms the timer for subscription `id` at `at` (or keeps an earlier deadline).
    pub(super) fn wake_at(&mut self, id: u32, at: u64) {
        if self.deadlines.arm(id, at).is_err() {
            self.rescan = true;
        }
    }

    /// Subscriptions with a timer deadline, and the deadline structure's entries (dead ones
    /// included): for tests of its bounds.
    pub fn timer_load(&self) -> (usize, usize) {
        (self.deadlines.armed(), self.deadlines.entries())
    }

    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Decides the next NOTIFY of subscription `id` (R32: one in flight at a time).
    pub(super) fn poll(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        self.poll_in(cfg, now, id, &mut FanOut::single(self.share_documents))
    }

    /// Work shared by the subscriptions polled in one call (a fan-out: `shared.rs`).
    pub(super) fn fan_out(&self) -> FanOut {
        FanOut::new(self.share_documents)
    }

    /// `poll`, sharing `fan` with the other subscriptions polled in the same call.
    pub(super) fn poll_in(
        &mut self,
        cfg: &Config,
        now: u64,
        id: u32,
        fan: &mut FanOut,
    ) -> Option<Notify> {
        let sub = self.subs.get_mut(&id)?;
        if sub.terminate.is_none() && sub.expires_at <= now {
            // R30: expired, whether or not the timer saw it yet (a change fed between the
            // expiry and the next tick, or right after a start that restored it expired):
            // its next NOTIFY is the terminating one, never an active one (issue 17, fix 1)
            sub.terminate = Some(Termination::Timeout);
        }
        if sub.in_flight.is_some() || sub.awaiting_peers {
            return None;
        }
        if let Some(t) = sub.held_since.filter(|t| now < t + HOLD_LIMIT_MS) {
            // the reply to a SUBSCRIBE of this dialog has not left yet (R25): `reply_sent`
            // polls again, the timer at the latest when the hold lapses
            self.wake_at(id, t + HOLD_LIMIT_MS);
            return None;
        }
        sub.held_since = None;
        if sub.terminate.is_some() {
            return self.poll_final(cfg, now, id);
        }
        if !sub.needs_full && !sub.dirty {
            return None;
        }
        let earliest = sub
            .last_notify_at
            .map_or(0, |t| t + cfg.min_notify_interval_ms);
        if !sub.needs_full && now < earliest {
            self.wake_at(id, earliest); // R61: the timer sends it then
            return None;
        }
        if !self.admit(id) {
            return None;
        }
        let n = self.poll_admitted(id, cfg, now, fan);
        if n.is_none() {
            self.gate.release();
        }
        n
    }

    /// The last NOTIFY of a subscription (R64: never suppressed, pending changes dropped).
    pub(super) fn poll_final(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        if !self.admit(id) {
            return None;
        }
        let Some(n) = self.final_notify(cfg, now, id) else {
            self.gate.release();
            return None;
        };
        if self.final_tokens.try_reserve(1).is_ok() {
            self.final_tokens.insert(n.token, now);
        } else {
            self.gate.release(); // cannot track it: free its place now rather than leak it
        }
        Some(n)
    }

    /// The terminating NOTIFY of subscription `id` (its `terminate` set), which is then gone
    /// (R69: whatever the response).
    pub(super) fn final_notify(&mut self, cfg: &Config, now: u64, id: u32) -> Option<Notify> {
        let sub = self.subs.get_mut(&id)?;
        let t = sub.terminate?;
        let body = match self.sessions.get(sub.session()) {
            Some(s) if t.with_state() => document(s, sub, cfg, true, &mut FanOut::single(false))
                .ok()
                .flatten(),
            _ => None,
        };
        let state = format!("terminated;reason={}", t.reason());
        let n = build_notify(sub, cfg, now, NotifyKind::Terminated, &state, body);
        self.stats.notifies_terminated += 1;
        self.remove(id);
        Some(n)
    }

    /// A NOTIFY with state for subscription `id`, once it has a place under the cap.
    pub(super) fn poll_admitted(
        &mut self,
        id: u32,
        cfg: &Config,
        now: u64,
        fan: &mut FanOut,
    ) -> Option<Notify> {
        let sub = self.subs.get_mut(&id)?;
        let session = self.sessions.get(sub.session())?;
        let body = match document(session, sub, cfg, sub.needs_full, fan) {
            Ok(Some(b)) => b,
            Ok(None) => {
                sub.dirty = false; // R55: nothing to say
                return None;
            }
            Err(OutOfMemory) => {
                self.rescan = true; // retried at the next tick
                return None;
            }
        };
        let kind = if body.full {
            NotifyKind::Full
        } else {
            NotifyKind::Partial
        };
        sub.dirty = body.delete_follows;
        sub.needs_full = false;
        let state = format!("active;expires={}", sub.expires_in(now));
        match kind {
            NotifyKind::Full => self.stats.notifies_full += 1,
            _ => self.stats.notifies_partial += 1,
        }
        let n = build_notify(sub, cfg, now, kind, &state, Some(body));
        self.changes.sub(id); // CSeq, version and what the subscriber was told
        if cfg.slow_notify_ms > 0 {
            self.wake_at(id, now + cfg.slow_notify_ms); // see `slow_since`
        }
        Some(n)
    }

    pub(super) fn remove(&mut self, id: u32) {
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        self.deadlines.cancel(id);
        self.changes
            .sub_gone(sub.dialog.call_id(), sub.dialog.local_tag());
        if let Ok(entry) = self
            .dialogs
            .find_entry(dialog_hash(self.seed, &sub.dialog), |&x| x == id)
        {
            entry.remove();
        }
        if let Some(s) = self.sessions.get_mut(sub.session()) {
            s.remove_sub(id, sub.subscriber());
        }
    }
}

/// When the NOTIFY `sub` has in flight gives up its place under the cap if still unanswered
/// (issue 17: destinations that stopped answering must not hold the places of those that
/// answer until tm times them out); None when it holds none or the option is off.
fn slow_since<A: Allocator>(sub: &Subscription<A>, cfg: &Config) -> Option<u64> {
    if cfg.slow_notify_ms == 0 || sub.in_flight.is_none() || !sub.holds_place {
        return None;
    }
    Some(sub.last_notify_at? + cfg.slow_notify_ms)
}

pub(super) fn push_angle(out: &mut Vec<u8>, uri: &[u8]) {
    if uri.starts_with(b"<") {
        out.extend_from_slice(uri);
    } else {
        out.push(b'<');
        out.extend_from_slice(uri);
        out.push(b'>');
    }
}

/// R39-R43: copies the dialog out and assigns the next CSeq.
pub(super) fn build_notify<A: Allocator>(
    sub: &mut Subscription<A>,
    cfg: &Config,
    now: u64,
    kind: NotifyKind,
    state: &str,
    body: Option<Body>,
) -> Notify {
    sub.dialog.local_cseq = sub.dialog.local_cseq.wrapping_add(1).max(1);
    let cseq = sub.dialog.local_cseq;
    sub.in_flight = Some(cseq);
    sub.holds_place = true;
    sub.last_notify_at = Some(now);
    sub.claimed_at = now;
    sub.notifies_sent += 1;
    let d = &sub.dialog;
    let mut headers = Vec::with_capacity(200);
    headers.extend_from_slice(b"Event: conference");
    if let Some(id) = d.event_id() {
        headers.extend_from_slice(b";id=");
        headers.extend_from_slice(id);
    }
    headers.extend_from_slice(b"\r\nSubscription-State: ");
    headers.extend_from_slice(state.as_bytes());
    headers.extend_from_slice(b"\r\nContact: ");
    push_angle(&mut headers, cfg.server_contact.as_bytes());
    headers.extend_from_slice(b"\r\n");
    let body = body.map(|b| b.xml).unwrap_or_default();
    if !body.is_empty() {
        headers.extend_from_slice(b"Content-Type: application/conference-info+xml\r\n");
    }
    Notify {
        token: (u64::from(sub.id) << CSEQ_BITS) | u64::from(cseq & ((1 << CSEQ_BITS) - 1)),
        kind,
        call_id: d.call_id().to_vec(),
        local_tag: d.local_tag().to_vec(),
        remote_tag: d.remote_tag().to_vec(),
        local_uri: d.local_uri().to_vec(),
        remote_uri: d.remote_uri().to_vec(),
        remote_target: d.remote_target().to_vec(),
        route_set: d.route_set().to_vec(),
        socket: d.socket().to_vec(),
        cseq,
        headers,
        body,
    }
}
