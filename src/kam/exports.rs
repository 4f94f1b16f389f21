//! What Kamailio looks up with dlsym (`exports`, `mod_register`, the version symbols) and the
//! tables they lead to, built from one declaration: `module_exports!`, which the crate root
//! invokes with every script function, KEMI function and RPC command (src/exports.rs), the
//! shape of redismodule-rs's `redis_module!`. The parameters come from core::params::PARAMS
//! (kam/params.rs). All of it must be Rust: a cdylib does not export C-defined symbols.
//!
//! The entries mirror Kamailio's types (c-shim/shim.h); c-shim/shim_layout.c static-asserts
//! their layout against the headers of the Kamailio the module is built for.
use super::guard::ffi_guard;
use super::request::Msg;
use super::rpc::Rpc;
use super::{bytes, sys};
use crate::kerr;
use std::ffi::CStr;
use std::fmt::Display;
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Where a script function may be called (Kamailio's route types).
pub const ANY_ROUTE: c_uint = sys::SHIM_ANY_ROUTE;
pub const REQUEST_ROUTE: c_uint = sys::SHIM_REQUEST_ROUTE;
/// An RPC command answering with an array (Kamailio's RET_ARRAY).
pub const RET_ARRAY: c_uint = sys::SHIM_RET_ARRAY;

/// A script function's handler: the message (Kamailio's id and pid of it) and the parameters.
pub type ScriptFn<E> = fn((u32, i32), &[&[u8]]) -> Result<(), E>;

/// A static table of C entries (read-only; its pointers are to statics and functions).
#[repr(transparent)]
pub struct Table<T>(pub T);
// SAFETY: never written after relocation; Kamailio copies what it changes.
unsafe impl<T> Sync for Table<T> {}

#[repr(transparent)]
pub struct SyncPtr(*const c_char);
// SAFETY: points to immutable C string constants.
unsafe impl Sync for SyncPtr {}

/// Kamailio reads `char *module_version`: the address of a pointer to the string.
#[no_mangle]
pub static module_version: SyncPtr =
    SyncPtr(&raw const sys::shim_ser_full_version as *const c_char);

/// Compared with the core's compile flags: a mismatch refuses to load (ABI guard).
#[no_mangle]
pub static module_flags: SyncPtr = SyncPtr(&raw const sys::shim_ser_compile_flags as *const c_char);

#[no_mangle]
pub static module_interface_ver: c_uint = sys::SHIM_MODULE_INTERFACE_VER;

/// The `exports` descriptor over the three tables.
pub const fn descriptor(
    cmds: *const sys::shim_cmd_export_t,
    rpcs: *const sys::shim_rpc_export_t,
) -> Table<sys::shim_module_exports_t> {
    Table(sys::shim_module_exports_t {
        name: c"imconf".as_ptr(),
        dlflags: 0,
        cmds: cmds as *const c_void,
        params: &raw const super::params::TABLE as *const c_void,
        rpc_methods: rpcs as *const c_void,
        pv_items: std::ptr::null(),
        response_f: std::ptr::null_mut(),
        init_mod_f: Some(sys::shim_mod_init),
        init_child_f: Some(sys::shim_child_init),
        destroy_mod_f: Some(sys::shim_mod_destroy),
    })
}

/// A native cfg function taking up to `max` parameters (strings with variables).
pub const fn cmd(
    name: &'static CStr,
    f: *mut c_void,
    fixup: *mut c_void,
    routes: c_uint,
) -> sys::shim_cmd_export_t {
    sys::shim_cmd_export_t {
        name: name.as_ptr(),
        function: f,
        param_no: sys::SHIM_VAR_PARAM_NO,
        fixup,
        free_fixup: sys::shim_fixup_free_args as *mut c_void,
        flags: routes,
    }
}

pub const CMD_END: sys::shim_cmd_export_t = sys::shim_cmd_export_t {
    name: std::ptr::null(),
    function: std::ptr::null_mut(),
    param_no: 0,
    fixup: std::ptr::null_mut(),
    free_fixup: std::ptr::null_mut(),
    flags: 0,
};

pub const fn rpc(
    name: &'static CStr,
    f: *mut c_void,
    doc: *const *const c_char,
    flags: c_uint,
) -> sys::shim_rpc_export_t {
    sys::shim_rpc_export_t {
        name: name.as_ptr(),
        function: f,
        doc_str: doc,
        flags,
    }
}

pub const RPC_END: sys::shim_rpc_export_t = sys::shim_rpc_export_t {
    name: std::ptr::null(),
    function: std::ptr::null_mut(),
    doc_str: std::ptr::null(),
    flags: 0,
};

const fn str_of(s: &'static CStr) -> sys::shim_str_t {
    sys::shim_str_t {
        s: s.as_ptr(),
        len: s.to_bytes().len() as c_int,
    }
}

/// A KEMI function `KSR.imconf.<name>` with `params` string parameters, returning an int.
pub const fn kemi(name: &'static CStr, f: *mut c_void, params: usize) -> sys::shim_kemi_export_t {
    let mut ptypes = [sys::SHIM_KEMIP_NONE as c_int; sys::SHIM_KEMI_PARAMS_MAX as usize];
    let mut i = 0;
    while i < params {
        ptypes[i] = sys::SHIM_KEMIP_STR as c_int;
        i += 1;
    }
    sys::shim_kemi_export_t {
        mname: str_of(c"imconf"),
        fname: str_of(name),
        rtype: sys::SHIM_KEMIP_INT as c_int,
        func: f,
        ptypes,
    }
}

pub const KEMI_END: sys::shim_kemi_export_t = sys::shim_kemi_export_t {
    mname: sys::shim_str_t {
        s: std::ptr::null(),
        len: 0,
    },
    fname: sys::shim_str_t {
        s: std::ptr::null(),
        len: 0,
    },
    rtype: 0,
    func: std::ptr::null_mut(),
    ptypes: [0; sys::SHIM_KEMI_PARAMS_MAX as usize],
};

fn entry_name(name: &'static CStr) -> &'static str {
    name.to_str().unwrap_or("script function")
}

/// Runs a script function's handler; 1 on success, -1 (logged) on failure (Kamailio's script
/// return values: 0 would stop the route).
fn run<E: Display>(name: &'static CStr, msg: (u32, i32), args: &[&[u8]], f: ScriptFn<E>) -> c_int {
    ffi_guard(entry_name(name), -1, || match f(msg, args) {
        Ok(()) => 1,
        Err(e) => {
            kerr!("{}: {e}", entry_name(name));
            -1
        }
    })
}

/// A native cfg call: evaluates the fixed parameters, then runs the handler.
///
/// # Safety
/// `msg` and `vals` are what Kamailio passes a VAR_PARAM_NO function: the message and `argc`
/// parameters fixed by `shim_fixup_args`.
pub unsafe fn cfg_call<E: Display>(
    name: &'static CStr,
    msg: *mut c_void,
    argc: c_int,
    vals: *mut c_void,
    f: ScriptFn<E>,
) -> c_int {
    // SAFETY: as this function's contract.
    match unsafe { cfg_args(msg, argc, vals) } {
        Some((args, r)) => run(name, (r.id, r.pid), &args, f),
        None => -1,
    }
}

/// The `argc` fixed parameters of a native cfg call, evaluated into views valid for the call,
/// and the message they belong to; None when one cannot be evaluated (logged by the shim).
///
/// # Safety
/// As `cfg_call`.
unsafe fn cfg_args<'a>(
    msg: *mut c_void,
    argc: c_int,
    vals: *mut c_void,
) -> Option<(Vec<&'a [u8]>, sys::shim_msg_ref_t)> {
    let mut views = [sys::shim_str_t {
        s: std::ptr::null(),
        len: 0,
    }; sys::SHIM_MAX_ARGS as usize];
    let mut r = sys::shim_msg_ref_t { id: 0, pid: 0 };
    // SAFETY: as the caller's contract; `views` holds SHIM_MAX_ARGS, the most the shim writes.
    if unsafe { sys::shim_eval_args(msg, argc, vals, views.as_mut_ptr(), &mut r) } < 0 {
        return None;
    }
    // SAFETY: the views point into the message's evaluated parameters, valid for this call.
    let args = views[..argc.max(0) as usize]
        .iter()
        .map(|v| unsafe { bytes(*v) })
        .collect();
    Some((args, r))
}

/// A KEMI call's `str *` parameters as byte views (NULL: empty).
///
/// # Safety
/// Each of `params` is NULL or a `str *` valid for the call.
unsafe fn kemi_args<'a>(params: &[*const sys::shim_str_t]) -> Vec<&'a [u8]> {
    // SAFETY: shim_str_t has str's layout (static-asserted in shim_layout.c); valid for the call.
    params
        .iter()
        .map(|p| unsafe { p.as_ref() }.map_or(&[][..], |s| unsafe { bytes(*s) }))
        .collect()
}

/// A KEMI call: the parameters are Kamailio `str *` (NULL or empty: not given).
///
/// # Safety
/// `msg` is the current `sip_msg_t *`; each of `params` is NULL or a `str *` valid for the call.
pub unsafe fn kemi_call<E: Display>(
    name: &'static CStr,
    msg: *mut c_void,
    params: &[*const sys::shim_str_t],
    f: ScriptFn<E>,
) -> c_int {
    let mut r = sys::shim_msg_ref_t { id: 0, pid: 0 };
    // SAFETY: msg is the message of this call.
    unsafe { sys::shim_msg_ref(msg, &mut r) };
    // SAFETY: as this function's contract.
    let args = unsafe { kemi_args(params) };
    run(name, (r.id, r.pid), &args, f)
}

/// A handler of the SIP request itself (`imconf_handle_subscribe`): the message and the
/// parameters.
pub type RequestFn = fn(&Msg, &[&[u8]]) -> i32;

/// `imconf_handle_subscribe([profile])` from a native cfg: evaluates the parameters, then runs
/// the handler on the message.
///
/// # Safety
/// As `cfg_call`.
pub unsafe fn request_cfg_call(
    msg: *mut c_void,
    argc: c_int,
    vals: *mut c_void,
    f: RequestFn,
) -> c_int {
    // SAFETY: as `cfg_call`'s contract.
    let Some((args, _)) = (unsafe { cfg_args(msg, argc, vals) }) else {
        return -1;
    };
    // SAFETY: Kamailio passes the message of the current script call.
    let m = unsafe { Msg::from_raw(msg) };
    ffi_guard("imconf_handle_subscribe", -1, || f(&m, &args))
}

/// The same from KEMI, which has no route table: the route is checked here.
///
/// # Safety
/// As `kemi_call`.
pub unsafe fn request_kemi_call(
    msg: *mut c_void,
    params: &[*const sys::shim_str_t],
    f: RequestFn,
) -> c_int {
    // SAFETY: msg is the message of this call.
    if unsafe { sys::shim_is_request_route(msg) } == 0 {
        kerr!("imconf_handle_subscribe: only for a request in the request route");
        return -1;
    }
    // SAFETY: as `kemi_call`'s contract.
    let args = unsafe { kemi_args(params) };
    // SAFETY: Kamailio passes the message of the current script call.
    let m = unsafe { Msg::from_raw(msg) };
    ffi_guard("imconf_handle_subscribe", -1, || f(&m, &args))
}

/// An RPC command: runs the handler; a panic answers a fault.
///
/// # Safety
/// `rpc` and `ctx` are the `rpc_t *` and context of the current RPC call.
pub unsafe fn rpc_call(name: &'static CStr, rpc: *mut c_void, ctx: *mut c_void, f: fn(&Rpc)) {
    // SAFETY: Kamailio passes the handles of the current RPC call.
    let r = unsafe { Rpc::from_raw(rpc, ctx) };
    let ok = ffi_guard(entry_name(name), false, || {
        f(&r);
        true
    });
    if !ok {
        r.fault(500, "internal error (logged)");
    }
}

/// mod_register: adds the KEMI table (KSR.imconf.*), right after Kamailio loads the module.
///
/// # Safety
/// `table` is a static, KEMI_END-terminated table (Kamailio keeps the pointer).
pub unsafe fn register_kemi(table: *const sys::shim_kemi_export_t) -> c_int {
    // SAFETY: as the caller's contract; called once, from mod_register.
    ffi_guard("mod_register", -1, || unsafe {
        sys::shim_kemi_register(table)
    })
}

/// Declares every script function (native cfg and KEMI) and RPC command, and generates the
/// C entry points and Kamailio's tables for them, plus `exports` and `mod_register`:
///
/// ```ignore
/// module_exports! {
///     // the handler of the SIP request itself, native with up to `max` parameters, and in
///     // KEMI both without parameters and, under the second name, with them
///     request: c"name" (max 1) kemi c"name_with" (p) => handler;  // RequestFn
///     functions: [
///         // name, most cfg parameters, KEMI parameters (all given), routes, handler
///         c"name" (max 3) kemi(a, b, c) in ANY_ROUTE => handler,  // ScriptFn
///     ];
///     rpcs: [
///         c"mod.cmd", 0 /* or RET_ARRAY */, c"doc" => handler,     // fn(&Rpc)
///     ];
/// }
/// ```
#[macro_export]
macro_rules! module_exports {
    (
        request: $sname:literal (max $smax:literal) kemi $skname:literal ( $($skp:ident),* ) => $shandler:path;
        functions: [ $( $fname:literal (max $max:literal) kemi( $($kp:ident),* ) in $routes:ident => $fhandler:path ),* $(,)? ];
        rpcs: [ $( $rname:literal, $rflags:expr, $rdoc:literal => $rhandler:path ),* $(,)? ];
    ) => {
        const _: () = {
            use $crate::kam::exports as x;
            use $crate::kam::sys;
            use ::std::os::raw::{c_char, c_int, c_void};

            const FUNCTIONS: usize = [$($fname),*].len();

            static CMDS: x::Table<[sys::shim_cmd_export_t; FUNCTIONS + 2]> = x::Table([
                {
                    unsafe extern "C" fn w(msg: *mut c_void, argc: c_int, vals: *mut c_void) -> c_int {
                        let f: x::RequestFn = $shandler;
                        // SAFETY: Kamailio calls a VAR_PARAM_NO function with these.
                        unsafe { x::request_cfg_call(msg, argc, vals, f) }
                    }
                    unsafe extern "C" fn fixup(param: *mut *mut c_void, param_no: c_int) -> c_int {
                        const MAX: c_int = $smax;
                        // SAFETY: Kamailio's fixup arguments, passed on.
                        unsafe { sys::shim_fixup_args(param, param_no, MAX) }
                    }
                    x::cmd($sname, w as *mut c_void, fixup as *mut c_void, x::REQUEST_ROUTE)
                },
                $({
                    unsafe extern "C" fn w(msg: *mut c_void, argc: c_int, vals: *mut c_void) -> c_int {
                        let (name, f): (&'static ::std::ffi::CStr, x::ScriptFn<_>) = ($fname, $fhandler);
                        // SAFETY: Kamailio calls a VAR_PARAM_NO function with these.
                        unsafe { x::cfg_call(name, msg, argc, vals, f) }
                    }
                    unsafe extern "C" fn fixup(param: *mut *mut c_void, param_no: c_int) -> c_int {
                        const MAX: c_int = $max;
                        // SAFETY: Kamailio's fixup arguments, passed on.
                        unsafe { sys::shim_fixup_args(param, param_no, MAX) }
                    }
                    x::cmd($fname, w as *mut c_void, fixup as *mut c_void, x::$routes)
                },)*
                x::CMD_END,
            ]);

            static KEMI: x::Table<[sys::shim_kemi_export_t; FUNCTIONS + 3]> = x::Table([
                {
                    unsafe extern "C" fn k(msg: *mut c_void) -> c_int {
                        let f: x::RequestFn = $shandler;
                        // SAFETY: KEMI passes the message of this call.
                        unsafe { x::request_kemi_call(msg, &[], f) }
                    }
                    x::kemi($sname, k as *mut c_void, 0)
                },
                {
                    // KEMI functions have one arity each: the parameters get a name of their own
                    unsafe extern "C" fn k(msg: *mut c_void, $($skp: *const sys::shim_str_t),*) -> c_int {
                        let params: &[*const sys::shim_str_t] = &[$($skp),*];
                        let f: x::RequestFn = $shandler;
                        // SAFETY: KEMI passes the message and one str * per declared parameter.
                        unsafe { x::request_kemi_call(msg, params, f) }
                    }
                    const PARAMS: usize = <[&str]>::len(&[$(stringify!($skp)),*]);
                    x::kemi($skname, k as *mut c_void, PARAMS)
                },
                $({
                    unsafe extern "C" fn k(msg: *mut c_void, $($kp: *const sys::shim_str_t),*) -> c_int {
                        // the parameters first: a handler binding must not shadow one of them
                        let params: &[*const sys::shim_str_t] = &[$($kp),*];
                        let (name, f): (&'static ::std::ffi::CStr, x::ScriptFn<_>) = ($fname, $fhandler);
                        // SAFETY: KEMI passes the message and one str * per declared parameter.
                        unsafe { x::kemi_call(name, msg, params, f) }
                    }
                    const PARAMS: usize = <[&str]>::len(&[$(stringify!($kp)),*]);
                    x::kemi($fname, k as *mut c_void, PARAMS)
                },)*
                x::KEMI_END,
            ]);

            static RPCS: x::Table<[sys::shim_rpc_export_t; [$($rname),*].len() + 1]> = x::Table([
                $({
                    unsafe extern "C" fn r(rpc: *mut c_void, ctx: *mut c_void) {
                        let (name, f): (&'static ::std::ffi::CStr, fn(&$crate::kam::rpc::Rpc)) = ($rname, $rhandler);
                        // SAFETY: Kamailio passes the handles of this RPC call.
                        unsafe { x::rpc_call(name, rpc, ctx, f) }
                    }
                    static DOC: x::Table<[*const c_char; 2]> = x::Table([$rdoc.as_ptr(), ::std::ptr::null()]);
                    x::rpc($rname, r as *mut c_void, &raw const DOC.0 as *const *const c_char, $rflags)
                },)*
                x::RPC_END,
            ]);

            #[no_mangle]
            pub static exports: x::Table<sys::shim_module_exports_t> =
                x::descriptor(&raw const CMDS.0 as *const _, &raw const RPCS.0 as *const _);

            /// Called by Kamailio right after loading the module (at its `loadmodule` line, also
            /// under `kamailio -c`): adds the KEMI exports. 0 ok; anything else refuses the load.
            #[no_mangle]
            pub extern "C" fn mod_register(
                _path: *mut c_char,
                _dlflags: *mut c_int,
                _p1: *mut c_void,
                _p2: *mut c_void,
            ) -> c_int {
                // SAFETY: KEMI is a static table ending in KEMI_END.
                unsafe { x::register_kemi(&raw const KEMI.0 as *const _) }
            }
        };
    };
}
