//! Work that may block forever, run in a forked child bounded in time.
//!
//! At shutdown Kamailio's children `_exit` on SIGTERM wherever they are, so a lock of tm or dmq
//! that one held stays taken; mod_destroy then runs in the main process, and a tm send from it
//! would spin on that lock until Kamailio's 60 s alarm aborts it.
use std::time::{Duration, Instant};

/// Runs `f` in a forked copy of this process and waits at most `limit` for it. `Ok` when it
/// finished; `Err` with why not (it was then killed). A panic in `f` ends the copy, not this
/// process.
pub fn bounded(limit: Duration, f: impl FnOnce()) -> Result<(), &'static str> {
    // SAFETY: Kamailio's main process is single-threaded at shutdown; the copy runs `f` and
    // leaves with _exit, running no destructor and no atexit handler of this process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err("fork failed");
    }
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: ends the copy only.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child, without blocking.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return match libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                true => Ok(()),
                false => Err("it failed"),
            };
        }
        if r < 0 {
            return Err("it was lost (waitpid failed)");
        }
        if start.elapsed() >= limit {
            // SAFETY: our own child, by pid; then reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err("it did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
