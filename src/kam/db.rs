//! Kamailio's database API (srdb1) for persistence (`db_url`): bind the DB module once in
//! mod_init, then one connection per process that writes.
use super::{sys, view, KamError};
use std::ffi::CString;
use std::os::raw::c_void;

fn c_url(url: &str) -> Result<CString, KamError> {
    CString::new(url).map_err(|_| KamError("db_url contains a NUL byte"))
}

/// Binds the DB module that serves `url` (loaded with `loadmodule` before imconf).
pub fn bind(url: &str) -> Result<(), KamError> {
    let u = c_url(url)?;
    // SAFETY: a NUL-terminated string that outlives the call.
    match unsafe { sys::shim_db_bind(u.as_ptr()) } {
        0 => Ok(()),
        _ => Err(KamError("no loaded database module serves this URL")),
    }
}

/// A connection of this process; closed when dropped.
pub struct Conn(*mut c_void);

impl Conn {
    pub fn open(url: &str) -> Result<Conn, KamError> {
        let u = c_url(url)?;
        // SAFETY: as in `bind`; called after a successful `bind`.
        let h = unsafe { sys::shim_db_open(u.as_ptr()) };
        if h.is_null() {
            Err(KamError("cannot connect to the database"))
        } else {
            Ok(Conn(h))
        }
    }

    /// Runs one SQL statement.
    pub fn exec(&self, sql: &str) -> Result<(), KamError> {
        // SAFETY: a live connection and a view of `sql` valid for the call.
        match unsafe { sys::shim_db_exec(self.0, view(sql.as_bytes())) } {
            0 => Ok(()),
            _ => Err(KamError("the database refused a statement")),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: the connection was opened by `open` and is closed once.
        unsafe { sys::shim_db_close(self.0) }
    }
}
