//! Kamailio's dmq module as the cluster bus (`enable_dmq`): bind and register the peer in
//! mod_init, broadcast to every active node, or answer the node a message came from.
use super::{sys, view, KamError};
use std::os::raw::c_void;

/// Binds dmq and registers the DMQ peer "imconf" (dmq must be loaded before imconf).
pub fn bind() -> Result<(), KamError> {
    // SAFETY: no arguments; called once, in mod_init.
    match unsafe { sys::shim_dmq_bind() } {
        0 => Ok(()),
        _ => Err(KamError(
            "cannot bind the dmq module (loadmodule \"dmq.so\" first)",
        )),
    }
}

/// Sends `body` to every active node but this one.
pub fn broadcast(body: &[u8]) -> Result<(), KamError> {
    // SAFETY: a view valid for the call; dmq copies what it keeps.
    match unsafe { sys::shim_dmq_broadcast(view(body)) } {
        0 => Ok(()),
        _ => Err(KamError("dmq could not send to the peers")),
    }
}

/// The node a received message came from; valid only while that message is handled.
pub struct Node<'a> {
    raw: *mut c_void,
    _during: std::marker::PhantomData<&'a ()>,
}

impl Node<'_> {
    /// # Safety
    /// `raw` is the `dmq_node_t*` dmq passed with the message being handled (or NULL).
    pub(crate) unsafe fn from_raw(raw: *mut c_void) -> Self {
        Node {
            raw,
            _during: std::marker::PhantomData,
        }
    }

    /// The URI dmq knows this node by (`send_to`), copied.
    pub fn uri(&self) -> Option<Vec<u8>> {
        if self.raw.is_null() {
            return None;
        }
        let mut out = sys::shim_str_t {
            s: std::ptr::null(),
            len: 0,
        };
        // SAFETY: the node lives while its message is handled (the lifetime); the view it fills
        // points into it and is copied before returning.
        let rc = unsafe { sys::shim_dmq_node_uri(self.raw, &mut out) };
        if rc != 0 || out.s.is_null() || out.len <= 0 {
            return None;
        }
        // SAFETY: dmq's node URI, `len` bytes, valid for this call (see above).
        let bytes = unsafe { std::slice::from_raw_parts(out.s.cast::<u8>(), out.len as usize) };
        Some(bytes.to_vec())
    }

    /// Sends `body` to this node.
    pub fn send(&self, body: &[u8]) -> Result<(), KamError> {
        if self.raw.is_null() {
            return Err(KamError("the sending node is not in dmq's node list"));
        }
        // SAFETY: the node lives while its message is handled (the lifetime), the view for the call.
        match unsafe { sys::shim_dmq_send(self.raw, view(body)) } {
            0 => Ok(()),
            _ => Err(KamError("dmq could not send to the node")),
        }
    }
}

/// This node's own dmq URI (dmq's `server_address`), copied; None when dmq does not say.
pub fn self_uri() -> Option<Vec<u8>> {
    let mut out = sys::shim_str_t {
        s: std::ptr::null(),
        len: 0,
    };
    // SAFETY: the view it fills points into dmq's parameter, which lives as long as Kamailio;
    // copied before returning.
    let rc = unsafe { sys::shim_dmq_self_uri(&mut out) };
    if rc != 0 || out.s.is_null() || out.len <= 0 {
        return None;
    }
    // SAFETY: `len` bytes of dmq's parameter (see above).
    let bytes = unsafe { std::slice::from_raw_parts(out.s.cast::<u8>(), out.len as usize) };
    Some(bytes.to_vec())
}

/// Sends `body` to the dmq node known by `uri` (`Node::uri`).
pub fn send_to(uri: &[u8], body: &[u8]) -> Result<(), KamError> {
    // SAFETY: views valid for the call; dmq copies what it keeps.
    match unsafe { sys::shim_dmq_send_uri(view(uri), view(body)) } {
        0 => Ok(()),
        _ => Err(KamError("dmq knows no such node, or could not send to it")),
    }
}
