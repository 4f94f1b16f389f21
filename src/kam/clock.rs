//! Time and randomness for the core, which has neither.
use std::time::Duration;

/// Milliseconds of CLOCK_MONOTONIC: one clock for every Kamailio process (unlike Instant, whose
/// values are comparable across processes only because it is this same clock).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32).as_millis() as u64
}

/// Wall-clock milliseconds minus `now_ms()`: what turns a deadline on this clock into a time
/// that means the same after a restart (persistence).
pub fn wall_offset_ms() -> i64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    wall - now_ms() as i64
}

/// Wall-clock milliseconds since 1970 (what cluster stamps and seals carry).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 64 random bits from the kernel (for hash seeds and tags).
pub fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: writes at most 8 bytes into v.
    let n = unsafe { libc::getrandom(&mut v as *mut u64 as *mut libc::c_void, 8, 0) };
    if n != 8 {
        // getrandom cannot fail for 8 bytes after boot; mix the time and pid as a fallback
        v = now_ms() ^ ((std::process::id() as u64) << 32);
    }
    v
}
