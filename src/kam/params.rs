//! The module parameters' storage, which Kamailio writes while it reads the cfg, and the table
//! telling it where each one is: both built from the one declaration, core::params::PARAMS.
//! `values` reads them once, in mod_init; core::params checks them.
use super::sys;
use crate::core::params::{Initial, Raw, Values, PARAMS};
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr::{null, null_mut};

const N: usize = PARAMS.len();

/// One parameter's storage: an `int` (PARAM_INT) or a `char *` (PARAM_STRING).
#[repr(C)]
#[derive(Clone, Copy)]
union Slot {
    int: c_int,
    text: *const c_char,
}

pub struct Slots([UnsafeCell<Slot>; N]);
// SAFETY: Kamailio writes the slots while it parses the cfg, in its main process before
// mod_init and before any fork; afterwards they are only read.
unsafe impl Sync for Slots {}

static SLOTS: Slots = Slots(initial_slots());

const fn initial_slots() -> [UnsafeCell<Slot>; N] {
    let mut out = [const { UnsafeCell::new(Slot { int: 0 }) }; N];
    let mut i = 0;
    while i < N {
        out[i] = UnsafeCell::new(match PARAMS[i].default {
            Initial::Int(v) => Slot { int: v },
            Initial::Text(Some(t)) => Slot { text: t.as_ptr() },
            Initial::Text(None) => Slot { text: null() },
        });
        i += 1;
    }
    out
}

/// Kamailio's parameter table (`exports.params`), NULL-terminated.
#[repr(transparent)]
pub struct Table(pub [sys::shim_param_export_t; N + 1]);
// SAFETY: read-only; the pointers are to static names and to SLOTS.
unsafe impl Sync for Table {}

pub static TABLE: Table = Table(table(&raw const SLOTS));

const fn table(slots: *const Slots) -> [sys::shim_param_export_t; N + 1] {
    let end = sys::shim_param_export_t {
        name: null(),
        type_: 0,
        param_pointer: null_mut(),
    };
    let mut out = [end; N + 1];
    let first = slots as *const UnsafeCell<Slot>;
    let mut i = 0;
    while i < N {
        out[i] = sys::shim_param_export_t {
            name: PARAMS[i].name.as_ptr(),
            type_: match PARAMS[i].default {
                Initial::Int(_) => sys::SHIM_PARAM_INT,
                Initial::Text(_) => sys::SHIM_PARAM_STRING,
            },
            param_pointer: UnsafeCell::raw_get(first.wrapping_add(i)) as *mut c_void,
        };
        i += 1;
    }
    out
}

fn text(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: Kamailio stores NUL-terminated strings from the cfg (or our static defaults).
    let s = unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// The values the cfg left (mod_init), in `PARAMS` order.
pub fn values() -> Values {
    let raw = PARAMS
        .iter()
        .zip(SLOTS.0.iter())
        .map(|(p, cell)| {
            // SAFETY: written only while Kamailio parsed the cfg (SLOTS); read-only now. Each
            // slot holds the member its declared type names (the table gave Kamailio that type).
            let slot = unsafe { *cell.get() };
            match p.default {
                Initial::Int(_) => Raw::Int(unsafe { slot.int }),
                Initial::Text(_) => Raw::Text(text(unsafe { slot.text })),
            }
        })
        .collect();
    Values::from_raw(raw)
}
