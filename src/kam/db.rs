//! Kamailio's database API (srdb1) for persistence (`db_url`): bind the DB module once in
//! mod_init, then one connection per process that writes.
use super::{sys, view, KamError};
use std::ffi::{CStr, CString};
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

// SAFETY: a Kamailio process has one thread; the handle only moves into a process-local static.
unsafe impl Send for Conn {}

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

/// A column value to write.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Str(&'a [u8]),
    Blob(&'a [u8]),
}

/// A column value read back (strings and blobs alike as bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Null,
    Int(i64),
    Bytes(Vec<u8>),
}

fn to_c(v: &Value<'_>) -> sys::shim_db_val_t {
    let (ty, n, s) = match *v {
        Value::Null => (sys::shim_db_type_SHIM_DB_NULL, 0, &[][..]),
        Value::Int(n) => (sys::shim_db_type_SHIM_DB_BIGINT, n, &[][..]),
        Value::Str(s) => (sys::shim_db_type_SHIM_DB_STR, 0, s),
        Value::Blob(s) => (sys::shim_db_type_SHIM_DB_BLOB, 0, s),
    };
    sys::shim_db_val_t {
        type_: ty as i32,
        n,
        s: view(s),
    }
}

fn names(cols: &[&CStr]) -> Vec<*const std::os::raw::c_char> {
    cols.iter().map(|c| c.as_ptr()).collect()
}

extern "C" fn collect_row(ctx: *mut c_void, vals: *const sys::shim_db_val_t, n: i32) {
    // SAFETY: ctx is the Vec `select` passed; vals has n values valid during this call.
    let rows = unsafe { &mut *(ctx as *mut Vec<Vec<Read>>) };
    let vals = unsafe { std::slice::from_raw_parts(vals, n.max(0) as usize) };
    let row = vals
        .iter()
        .map(|v| match v.type_ as u32 {
            sys::shim_db_type_SHIM_DB_BIGINT => Read::Int(v.n),
            // SAFETY: a view into the DB module's result, valid during this call.
            sys::shim_db_type_SHIM_DB_STR | sys::shim_db_type_SHIM_DB_BLOB => {
                Read::Bytes(unsafe { super::bytes(v.s) }.to_vec())
            }
            _ => Read::Null,
        })
        .collect();
    rows.push(row);
}

impl Conn {
    /// INSERT one row of `cols` = `vals` into `table`.
    pub fn insert(&self, table: &CStr, cols: &[&CStr], vals: &[Value<'_>]) -> Result<(), KamError> {
        self.keyed(sys::shim_db_insert, table, cols, vals)
            .map_err(|_| KamError("the database refused an insert"))
    }

    /// DELETE the rows of `table` whose `cols` equal `vals` (no columns: every row).
    pub fn delete(&self, table: &CStr, cols: &[&CStr], vals: &[Value<'_>]) -> Result<(), KamError> {
        self.keyed(sys::shim_db_delete, table, cols, vals)
            .map_err(|_| KamError("the database refused a delete"))
    }

    /// Runs an insert or delete of the shim with `cols` = `vals`.
    fn keyed(
        &self,
        op: unsafe extern "C" fn(
            *mut c_void,
            *const std::os::raw::c_char,
            *const *const std::os::raw::c_char,
            *const sys::shim_db_val_t,
            i32,
        ) -> i32,
        table: &CStr,
        cols: &[&CStr],
        vals: &[Value<'_>],
    ) -> Result<(), ()> {
        let c = names(cols);
        let v: Vec<sys::shim_db_val_t> = vals.iter().map(to_c).collect();
        // SAFETY: a live connection; names and values valid for the call; n within both.
        let rc = unsafe {
            op(
                self.0,
                table.as_ptr(),
                c.as_ptr(),
                v.as_ptr(),
                v.len().min(c.len()) as i32,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Every row of `table`, as the values of `cols`.
    pub fn select(&self, table: &CStr, cols: &[&CStr]) -> Result<Vec<Vec<Read>>, KamError> {
        let c = names(cols);
        let mut rows: Vec<Vec<Read>> = Vec::new();
        // SAFETY: a live connection; `collect_row` only runs during the call, with `rows`.
        let rc = unsafe {
            sys::shim_db_select(
                self.0,
                table.as_ptr(),
                c.as_ptr(),
                c.len() as i32,
                Some(collect_row),
                &mut rows as *mut Vec<Vec<Read>> as *mut c_void,
            )
        };
        if rc == 0 {
            Ok(rows)
        } else {
            Err(KamError("the database refused a query"))
        }
    }
}
