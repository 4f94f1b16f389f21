//! RPC calls (kamcmd, jsonrpcs): positional string arguments in, faults or structs out.
use super::{bytes, sys, view};
use std::ffi::CStr;

pub struct Rpc {
    rpc: *mut std::ffi::c_void,
    ctx: *mut std::ffi::c_void,
}

/// A struct in the reply.
pub struct RpcStruct<'a> {
    rpc: &'a Rpc,
    handle: *mut std::ffi::c_void,
}

impl Rpc {
    /// # Safety
    /// `rpc` and `ctx` must be the handles of the current RPC call.
    pub unsafe fn from_raw(rpc: *mut std::ffi::c_void, ctx: *mut std::ffi::c_void) -> Self {
        Rpc { rpc, ctx }
    }

    /// Every argument as owned strings (at most `max`).
    pub fn args(&self, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < max {
            let mut s = sys::shim_str_t::default();
            // SAFETY: handles of the current call; s is an out-parameter.
            if unsafe { sys::shim_rpc_next_str(self.rpc, self.ctx, &mut s) } != 1 {
                break;
            }
            // SAFETY: the view lives in the RPC request buffer during the call; copied at once.
            out.push(unsafe { bytes(s) }.to_vec());
        }
        out
    }

    pub fn fault(&self, code: i32, msg: &str) {
        let msg = fault_text(msg);
        // SAFETY: handles of the current call.
        unsafe { sys::shim_rpc_fault(self.rpc, self.ctx, code, view(msg.as_bytes())) }
    }

    pub fn add_str(&self, s: &str) {
        // SAFETY: handles of the current call; the RPC layer copies the string.
        unsafe { sys::shim_rpc_add_str(self.rpc, self.ctx, view(s.as_bytes())) };
    }

    pub fn add_struct(&self) -> Option<RpcStruct<'_>> {
        // SAFETY: handles of the current call.
        let handle = unsafe { sys::shim_rpc_add_struct(self.rpc, self.ctx) };
        (!handle.is_null()).then_some(RpcStruct { rpc: self, handle })
    }
}

impl RpcStruct<'_> {
    pub fn str(&self, name: &'static CStr, val: &str) -> &Self {
        // SAFETY: handle belongs to the current call; name is NUL-terminated; value copied.
        unsafe {
            sys::shim_rpc_struct_str(
                self.rpc.rpc,
                self.handle,
                name.as_ptr(),
                view(val.as_bytes()),
            )
        };
        self
    }

    pub fn int(&self, name: &'static CStr, val: i64) -> &Self {
        // SAFETY: as above.
        unsafe { sys::shim_rpc_struct_int(self.rpc.rpc, self.handle, name.as_ptr(), val) };
        self
    }
}

/// ctl's binrpc formats a fault into 256 bytes and a longer one reaches kamcmd as an empty
/// reply (no error at all): messages that echo a long argument are cut to fit, at a char boundary.
/// Regression test: robustness_corpus_rpc (tests/integration/run.py) sends 900-byte arguments.
const MAX_FAULT_TEXT: usize = 240;

fn fault_text(msg: &str) -> std::borrow::Cow<'_, str> {
    if msg.len() <= MAX_FAULT_TEXT {
        return msg.into();
    }
    let mut end = MAX_FAULT_TEXT - 3;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &msg[..end]).into()
}
