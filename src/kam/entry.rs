//! The `rs_*` functions C calls (declared in c-shim/shim.h). Each turns raw pointers into safe
//! views and hands them to the module inside `ffi_guard`: a panic never unwinds into Kamailio.
//! Those taking pointers are `unsafe`: only Kamailio (through the shim) calls them, with valid ones.
use super::dmq::Node;
use super::guard::{ffi_guard, install_panic_hook};
use super::request::Msg;
use super::rpc::Rpc;
use super::{bytes, sys};
use crate::module;
use std::os::raw::{c_char, c_int, c_long, c_void};
use std::ptr::null;

#[no_mangle]
pub extern "C" fn rs_mod_init() -> c_int {
    install_panic_hook();
    ffi_guard("mod_init", -1, module::mod_init)
}

#[no_mangle]
pub extern "C" fn rs_child_init(rank: c_int) -> c_int {
    ffi_guard("child_init", -1, || module::child_init(rank))
}

#[no_mangle]
pub extern "C" fn rs_mod_destroy() {
    ffi_guard("mod_destroy", (), module::mod_destroy);
}

/// # Safety
/// `msg` is the `struct sip_msg*` of the current script call.
#[no_mangle]
pub unsafe extern "C" fn rs_handle_subscribe(msg: *mut c_void) -> c_int {
    // SAFETY: Kamailio passes the message of the current script call.
    let msg = unsafe { Msg::from_raw(msg) };
    ffi_guard("imconf_handle_subscribe", -1, || {
        module::handle_subscribe(&msg)
    })
}

/// # Safety
/// `args` points to `argc` string views valid for the call.
#[no_mangle]
pub unsafe extern "C" fn rs_script_call(
    fn_id: c_int,
    msg: *const sys::shim_msg_ref_t,
    args: *const sys::shim_str_t,
    argc: c_int,
) -> c_int {
    let args: Vec<&[u8]> = (0..argc.max(0) as usize)
        // SAFETY: C passes argc views that live for this call.
        .map(|i| unsafe { bytes(*args.add(i)) })
        .collect();
    // SAFETY: C passes the address of a shim_msg_ref_t on its stack, or NULL.
    let msg = unsafe { msg.as_ref() }.map_or((0, 0), |m| (m.id, m.pid));
    ffi_guard("script function", -1, || {
        module::script_call(fn_id as u32, msg, &args)
    })
}

/// # Safety
/// `rpc` and `ctx` are the `rpc_t*` and context of the current RPC call.
#[no_mangle]
pub unsafe extern "C" fn rs_rpc_call(fn_id: c_int, rpc: *mut c_void, ctx: *mut c_void) {
    // SAFETY: Kamailio passes the handles of the current RPC call.
    let r = unsafe { Rpc::from_raw(rpc, ctx) };
    let ok = ffi_guard("rpc", false, || {
        module::rpc_call(fn_id as u32, &r);
        true
    });
    if !ok {
        r.fault(500, "internal error (logged)");
    }
}

#[no_mangle]
pub extern "C" fn rs_notify_completed(token: u64, code: c_int) {
    ffi_guard("NOTIFY completion", (), || {
        module::notify_completed(token, code.clamp(0, 999) as u16)
    });
}

/// # Safety
/// `body` is the KDMQ request's body, `source` its sender's address ("ip:port") and `node` its
/// sender's `dmq_node_t*` (or NULL), all valid for the call.
#[no_mangle]
pub unsafe extern "C" fn rs_dmq_receive(
    body: sys::shim_str_t,
    source: sys::shim_str_t,
    node: *mut c_void,
) -> c_int {
    // SAFETY: dmq passes views of the message it is handling.
    let (body, source, node) = unsafe { (bytes(body), bytes(source), Node::from_raw(node)) };
    ffi_guard("dmq message", 500, || {
        c_int::from(module::dmq_receive(body, source, &node))
    })
}

#[no_mangle]
pub extern "C" fn rs_dmq_ready() {
    ffi_guard("dmq ready", (), module::dmq_ready);
}

#[no_mangle]
pub extern "C" fn rs_timer_tick() {
    ffi_guard("timer", (), module::timer_tick);
}

/// Kamailio's statistics (c-shim/shim_stats.c): the name of counter `id`, NULL past the last.
/// The names are static, so the pointer stays valid for the life of the process.
#[no_mangle]
pub extern "C" fn rs_stat_name(id: c_int) -> *const c_char {
    ffi_guard("stat_name", null(), || {
        usize::try_from(id)
            .ok()
            .and_then(module::stat_name)
            .map_or(null(), |n| n.as_ptr())
    })
}

/// The current value of counter `id`, from the same counters as `imconf.stats`.
#[no_mangle]
pub extern "C" fn rs_stat_value(id: c_int) -> c_long {
    ffi_guard("stat_value", 0, || {
        usize::try_from(id).map_or(0, module::stat_value) as c_long
    })
}

/// Kamailio calls `mod_register` (src/module/exports.rs) right after loading the module (at its
/// `loadmodule` line, before the KEMI engine starts): the KEMI exports (KSR.imconf.*) go in then.
pub fn register_kemi() -> c_int {
    // SAFETY: adds a static table of c-shim/shim_kemi.c; called once, from mod_register.
    ffi_guard("mod_register", -1, || unsafe { sys::shim_kemi_register() })
}
