//! The symbols Kamailio looks up with dlsym: four data symbols and `mod_register`. They must be
//! defined in Rust: a cdylib does not export C-defined symbols. The tables they point at live in
//! c-shim/shim_mod.c (cfg functions, parameters, RPC) and c-shim/shim_kemi.c (KEMI).
use super::{entry, sys};
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::ptr::{null, null_mut};

#[repr(transparent)]
pub struct SyncPtr(*const c_char);
// SAFETY: points to immutable C string constants.
unsafe impl Sync for SyncPtr {}

#[repr(transparent)]
pub struct Exports(sys::shim_module_exports_t);
// SAFETY: read-only after relocation; Kamailio copies what it changes.
unsafe impl Sync for Exports {}

/// Kamailio reads `char *module_version`: the address of a pointer to the string.
#[no_mangle]
pub static module_version: SyncPtr =
    SyncPtr(&raw const sys::shim_ser_full_version as *const c_char);

/// Compared with the core's compile flags: a mismatch refuses to load (ABI guard).
#[no_mangle]
pub static module_flags: SyncPtr = SyncPtr(&raw const sys::shim_ser_compile_flags as *const c_char);

#[no_mangle]
pub static module_interface_ver: c_uint = sys::SHIM_MODULE_INTERFACE_VER;

#[no_mangle]
pub static exports: Exports = Exports(sys::shim_module_exports_t {
    name: c"imconf".as_ptr(),
    dlflags: 0,
    cmds: &raw const sys::shim_cmds as *const _,
    params: &raw const sys::shim_params as *const _,
    rpc_methods: &raw const sys::shim_rpc_methods as *const _,
    pv_items: null(),
    response_f: null_mut(),
    init_mod_f: Some(sys::shim_mod_init),
    init_child_f: Some(sys::shim_child_init),
    destroy_mod_f: Some(sys::shim_mod_destroy),
});

/// Called by Kamailio right after loading the module (at its `loadmodule` line, also under
/// `kamailio -c`): adds the KEMI exports, `KSR.imconf.*`. 0 ok; anything else refuses the load.
#[no_mangle]
pub extern "C" fn mod_register(
    _path: *mut c_char,
    _dlflags: *mut c_int,
    _p1: *mut c_void,
    _p2: *mut c_void,
) -> c_int {
    entry::register_kemi()
}
