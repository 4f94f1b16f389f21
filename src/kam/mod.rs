//! The safe wrapper around Kamailio: the only `unsafe` code of the crate.
//! Each file wraps one subsystem of the C shim (c-shim/shim.h).
pub mod clock;
pub mod db;
pub mod dmq;
pub mod entry;
pub mod exports;
pub mod fanout;
pub mod guard;
pub mod lock;
pub mod log;
pub mod params;
pub mod process;
pub mod request;
pub mod rpc;
pub mod shm;
pub mod sys;
pub mod tm;

/// A Kamailio call that failed (the shim has logged why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KamError(pub &'static str);

impl std::fmt::Display for KamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A view handed over by C, as a byte slice. Empty for a NULL pointer.
///
/// # Safety
/// `s` must point to `len` readable bytes that outlive `'a`.
pub(crate) unsafe fn bytes<'a>(s: sys::shim_str_t) -> &'a [u8] {
    if s.s.is_null() || s.len <= 0 {
        &[]
    } else {
        std::slice::from_raw_parts(s.s as *const u8, s.len as usize)
    }
}

/// A view of Rust bytes for C; valid while `b` lives.
/// How many counters the shim can register as Kamailio statistics (c-shim/shim_stats.c).
pub const STATS_SLOTS: usize = sys::SHIM_STATS_MAX as usize;

pub(crate) fn view(b: &[u8]) -> sys::shim_str_t {
    sys::shim_str_t {
        s: b.as_ptr() as *const std::os::raw::c_char,
        len: b.len() as i32,
    }
}
