//! The SUBSCRIBE being handled: a view of its parsed fields, its transaction and its reply.
use super::{bytes, sys, view, KamError};
use crate::core::notifier::SubscribeRequest;

/// Headers copied into the view; a SUBSCRIBE with more is answered 400 (R14).
const MAX_HEADERS: usize = 256;

pub enum ViewError {
    /// Unparsable mandatory header: 400 (R14).
    Malformed,
    /// Internal failure: 500.
    Internal,
}

/// The received message (valid only during the script function call).
pub struct Msg {
    raw: *mut std::ffi::c_void,
}

impl Msg {
    /// # Safety
    /// `raw` must be the `struct sip_msg*` of the current script call.
    pub unsafe fn from_raw(raw: *mut std::ffi::c_void) -> Self {
        Msg { raw }
    }

    /// Replies statelessly (sl), with no header of ours: when the module's own reply failed.
    pub fn reply_stateless(&self, code: u16, reason: &str) -> Result<(), KamError> {
        // SAFETY: raw is the current message; sl copies what it keeps.
        let rc = unsafe {
            sys::shim_reply_stateless(self.raw, i32::from(code), view(reason.as_bytes()))
        };
        if rc == 1 {
            Ok(())
        } else {
            Err(KamError("sl could not send the reply"))
        }
    }

    /// Parses the message and calls `f` with views of it; the views die when `f` returns.
    pub fn with_view<T>(&self, f: impl FnOnce(&SubscribeRequest<'_>) -> T) -> Result<T, ViewError> {
        let mut req = sys::shim_request_t::default();
        let mut hdrs = [sys::shim_header_t::default(); MAX_HEADERS];
        // SAFETY: raw is the current message; the arrays outlive the call.
        let rc = unsafe {
            sys::shim_request_view(self.raw, &mut req, hdrs.as_mut_ptr(), MAX_HEADERS as i32)
        };
        // a header beyond the array could be the one a check needs: refuse rather than misjudge
        let too_many = req.header_total > req.header_count;
        let result = if rc == sys::shim_request_status_SHIM_REQ_OK && too_many {
            Err(ViewError::Malformed)
        } else if rc == sys::shim_request_status_SHIM_REQ_OK {
            // SAFETY: the views point into the message buffer (or pkg memory released below),
            // both alive until shim_request_release.
            let pairs: Vec<(&[u8], &[u8])> = hdrs[..req.header_count.max(0) as usize]
                .iter()
                .map(|h| unsafe { (bytes(h.name), bytes(h.body)) })
                .collect();
            let r = unsafe {
                SubscribeRequest {
                    ruri: bytes(req.ruri),
                    call_id: bytes(req.call_id),
                    cseq: req.cseq,
                    from_uri: bytes(req.from_uri),
                    from_tag: bytes(req.from_tag),
                    to_uri: bytes(req.to_uri),
                    to_tag: bytes(req.to_tag),
                    contact: bytes(req.contact),
                    record_route: bytes(req.record_route),
                    socket: bytes(req.socket),
                    headers: &pairs,
                    profile: None,
                }
            };
            Ok(f(&r))
        } else if rc == sys::shim_request_status_SHIM_REQ_BAD {
            Err(ViewError::Malformed)
        } else {
            Err(ViewError::Internal)
        };
        // SAFETY: releases what shim_request_view allocated (no-op when nothing was).
        unsafe { sys::shim_request_release(&mut req) };
        result
    }

    /// Replies with `to_tag`: in the request's tm transaction if the script made one, else
    /// statelessly (sl; R22 is imconf's own, issue 18). Err when it could not be sent.
    pub fn reply(
        &self,
        code: u16,
        reason: &str,
        headers: &[u8],
        to_tag: &[u8],
    ) -> Result<(), KamError> {
        // SAFETY: all views outlive the call; tm copies what it keeps.
        let rc = unsafe {
            sys::shim_reply(
                self.raw,
                i32::from(code),
                view(reason.as_bytes()),
                view(headers),
                view(to_tag),
            )
        };
        if rc == 1 {
            Ok(())
        } else {
            Err(KamError("tm could not send the reply"))
        }
    }
}
