//! In-dialog NOTIFYs through tm. The final response comes back to `rs_notify_completed` with
//! the token, in whatever process tm runs the callback.
use super::{sys, view, KamError};
use crate::core::notifier::Notify;

/// Hands `n` to tm with `token`. Err: not sent, and no completion will come for it.
pub fn send_notify(n: &Notify, token: u64) -> Result<(), KamError> {
    let req = sys::shim_notify_t {
        call_id: view(&n.call_id),
        local_tag: view(&n.local_tag),
        remote_tag: view(&n.remote_tag),
        local_uri: view(&n.local_uri),
        remote_uri: view(&n.remote_uri),
        remote_target: view(&n.remote_target),
        route_set: view(&n.route_set),
        socket: view(&n.socket),
        cseq: n.cseq,
        headers: view(&n.headers),
        body: view(&n.body),
        token,
    };
    // SAFETY: every view borrows from `n`, alive for the call; tm copies what it keeps.
    if unsafe { sys::shim_send_notify(&req) } == 0 {
        Ok(())
    } else {
        Err(KamError("tm refused the NOTIFY"))
    }
}
