//! The fan-out processes (c-shim/shim_fanout.c, issue 18): waking one for a hash slot.
use super::{sys, KamError};

/// Wakes one fan-out process for `slot`; an error when none can be (no processes, or the
/// queue of wakes is full).
pub fn wake(slot: usize) -> Result<(), KamError> {
    // SAFETY: no pointers; the shim sends one datagram without blocking.
    match unsafe { sys::shim_fanout_wake(slot as u32) } {
        0 => Ok(()),
        _ => Err(KamError("no fan-out process could be woken")),
    }
}
