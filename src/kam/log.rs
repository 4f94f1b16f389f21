//! Logging through Kamailio's logger, with the Rust file and line as the location.
//! The level is checked before formatting (a formatted line costs thousands of instructions).
use super::sys;

#[derive(Clone, Copy)]
pub enum Level {
    Err = sys::shim_log_level_SHIM_L_ERR as isize,
    Warn = sys::shim_log_level_SHIM_L_WARN as isize,
    Notice = sys::shim_log_level_SHIM_L_NOTICE as isize,
    Info = sys::shim_log_level_SHIM_L_INFO as isize,
    Dbg = sys::shim_log_level_SHIM_L_DBG as isize,
}

pub fn enabled(level: Level) -> bool {
    // SAFETY: reads Kamailio's debug level; no pointers involved.
    unsafe { sys::shim_log_enabled(level as i32) != 0 }
}

/// `prefix` and `func` must be NUL-terminated (the macros build them with concat!). `msg` is
/// written as one line whatever values it carries (core::log_line).
pub fn write(level: Level, prefix: &'static str, func: &'static str, msg: &str) {
    debug_assert!(prefix.ends_with('\0') && func.ends_with('\0'));
    let msg = crate::core::log_line::one_line(msg);
    // SAFETY: both static strings are NUL-terminated; msg is passed with its length.
    unsafe {
        sys::shim_log(
            level as i32,
            prefix.as_ptr() as *const _,
            func.as_ptr() as *const _,
            msg.as_ptr() as *const _,
            msg.len() as i32,
        )
    }
}

#[macro_export]
macro_rules! klog {
    ($lvl:expr, $($arg:tt)*) => {{
        let lvl = $lvl;
        if $crate::kam::log::enabled(lvl) {
            $crate::kam::log::write(
                lvl,
                concat!("imconf [", file!(), ":", line!(), "]: \0"),
                concat!(module_path!(), "\0"),
                &format!($($arg)*),
            );
        }
    }};
}
#[macro_export]
macro_rules! kerr { ($($arg:tt)*) => { $crate::klog!($crate::kam::log::Level::Err, $($arg)*) }; }
#[macro_export]
macro_rules! kwarn { ($($arg:tt)*) => { $crate::klog!($crate::kam::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! kinfo { ($($arg:tt)*) => { $crate::klog!($crate::kam::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! kdbg { ($($arg:tt)*) => { $crate::klog!($crate::kam::log::Level::Dbg, $($arg)*) }; }
