//! The glue from Kamailio events (script calls, RPC, timer, tm callbacks) into the core.
//! Every `rs_*` entry point runs inside `ffi_guard`: a panic never crosses into C.
mod exports;
mod feed;
mod notify;
mod rpc;
mod state;
mod subscribe;

use crate::kam::guard::{ffi_guard, install_panic_hook};
use crate::kam::request::Msg;
use crate::kam::{bytes, clock, params, sys};
use crate::{kerr, kinfo};
use std::os::raw::{c_int, c_void};

#[no_mangle]
pub extern "C" fn rs_mod_init() -> c_int {
    install_panic_hook();
    ffi_guard("mod_init", -1, || {
        let p = match params::read() {
            Ok(p) => p,
            Err(e) => {
                kerr!("{e}");
                return -1;
            }
        };
        let slots = p.hash_slots;
        if let Err(why) = state::init(p, clock::random_u64()) {
            kerr!("cannot start: {why}");
            return -1;
        }
        state::reseed_tags(clock::random_u64());
        kinfo!("imconf ready: {slots} hash slots in shared memory");
        0
    })
}

#[no_mangle]
pub extern "C" fn rs_child_init(_rank: c_int) -> c_int {
    ffi_guard("child_init", -1, || {
        // forked processes must not share the tag sequence
        state::reseed_tags(clock::random_u64());
        0
    })
}

#[no_mangle]
pub extern "C" fn rs_mod_destroy() {
    ffi_guard("mod_destroy", (), || {});
}

#[no_mangle]
pub extern "C" fn rs_handle_subscribe(msg: *mut c_void) -> c_int {
    ffi_guard("imconf_handle_subscribe", -1, || {
        // SAFETY: Kamailio passes the current message.
        let msg = unsafe { Msg::from_raw(msg) };
        subscribe::handle(&msg)
    })
}

#[no_mangle]
pub extern "C" fn rs_script_call(fn_id: c_int, args: *const sys::shim_str_t, argc: c_int) -> c_int {
    ffi_guard("script function", -1, || {
        let args: Vec<&[u8]> = (0..argc.max(0) as usize)
            // SAFETY: C passes argc views that live for this call.
            .map(|i| unsafe { bytes(*args.add(i)) })
            .collect();
        let (name, result) = match fn_id as u32 {
            sys::shim_script_fn_SHIM_FN_SESSION_OPEN => ("imconf_session_open", feed::session_open(&args)),
            sys::shim_script_fn_SHIM_FN_SESSION_CLOSE => ("imconf_session_close", feed::session_close(&args)),
            sys::shim_script_fn_SHIM_FN_PARTICIPANT => ("imconf_participant", feed::participant(&args)),
            sys::shim_script_fn_SHIM_FN_GROUPS_RELOAD => ("imconf_groups_reload", feed::groups_reload(&args)),
            _ => return -1,
        };
        match result {
            Ok(()) => 1,
            Err(e) => {
                kerr!("{name}: {e}");
                -1
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn rs_rpc_call(fn_id: c_int, rpc: *mut c_void, ctx: *mut c_void) {
    // SAFETY: Kamailio passes the handles of the current RPC call.
    let r = unsafe { crate::kam::rpc::Rpc::from_raw(rpc, ctx) };
    let ok = ffi_guard("rpc", false, || {
        rpc::call(fn_id as u32, &r);
        true
    });
    if !ok {
        r.fault(500, "internal error (logged)");
    }
}

#[no_mangle]
pub extern "C" fn rs_notify_completed(token: u64, code: c_int) {
    ffi_guard("NOTIFY completion", (), || {
        notify::completed(token, code.clamp(0, 999) as u16)
    });
}

#[no_mangle]
pub extern "C" fn rs_timer_tick() {
    ffi_guard("timer", (), notify::tick);
}
