//! Every entry point from C runs inside `ffi_guard`: a Rust panic must never unwind into
//! Kamailio (it would abort the worker and Kamailio would stop the whole server).
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

static HOOK: Once = Once::new();

/// Routes panic messages to Kamailio's log (stderr may be /dev/null, and println! can panic).
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::kerr!("PANIC: {info}");
        }));
    });
}

/// Runs `f`; a panic is logged and turned into `on_panic`.
pub fn ffi_guard<T>(entry: &'static str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            crate::kerr!("panic caught at the FFI boundary in {entry}; the process continues");
            on_panic
        }
    }
}
