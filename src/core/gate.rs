//! R66: a node-wide cap on NOTIFYs in flight. The notifiers of every hash slot share one gate;
//! a NOTIFY that finds it full waits in its notifier's FIFO queue until a response frees a place.
use std::sync::atomic::{AtomicU32, Ordering};

/// Permission to put one more NOTIFY in flight.
pub trait SendGate {
    fn try_acquire(&self) -> bool;
    fn release(&self);
}

/// No cap (tests, and the default of `Notifier::new_in`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

impl SendGate for Unlimited {
    fn try_acquire(&self) -> bool {
        true
    }
    fn release(&self) {}
}

/// A counting cap. Lock-free atomics work across processes when the value lives in shared
/// memory, so one `InFlightCap` serves every Kamailio process.
#[derive(Debug)]
pub struct InFlightCap {
    in_flight: AtomicU32,
    cap: u32,
}

impl InFlightCap {
    pub fn new(cap: u32) -> Self {
        InFlightCap {
            in_flight: AtomicU32::new(0),
            cap,
        }
    }
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl SendGate for &InFlightCap {
    fn try_acquire(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            })
            .is_ok()
    }
    fn release(&self) {
        // never below zero, even if a completion were counted twice
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}
