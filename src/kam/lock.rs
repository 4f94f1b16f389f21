//! Kamailio's cross-process lock (gen_lock_t, a shared futex in this build) as a lock_api mutex.
//! parking_lot and std mutexes are process-local: they hang across Kamailio's forked workers.
use super::sys;
use std::cell::UnsafeCell;

#[repr(C, align(8))]
pub struct KamRawMutex {
    storage: UnsafeCell<[u8; sys::SHIM_LOCK_SIZE as usize]>,
}

// SAFETY: the storage is only touched through Kamailio's lock functions, which are process-safe.
unsafe impl Sync for KamRawMutex {}
unsafe impl Send for KamRawMutex {}

impl KamRawMutex {
    fn ptr(&self) -> *mut std::ffi::c_void {
        self.storage.get() as *mut _
    }
}

unsafe impl lock_api::RawMutex for KamRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = KamRawMutex {
        storage: UnsafeCell::new([0; sys::SHIM_LOCK_SIZE as usize]),
    };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        // SAFETY: storage holds an initialised gen_lock_t (see ShmMutex::init_in_place).
        unsafe { sys::shim_lock_get(self.ptr()) }
    }

    fn try_lock(&self) -> bool {
        // SAFETY: as in `lock`.
        unsafe { sys::shim_lock_try(self.ptr()) == 0 }
    }

    unsafe fn unlock(&self) {
        sys::shim_lock_release(self.ptr())
    }
}

pub type ShmMutex<T> = lock_api::Mutex<KamRawMutex, T>;
pub type ShmMutexGuard<'a, T> = lock_api::MutexGuard<'a, KamRawMutex, T>;

/// The lock within `ms` milliseconds, or None (for paths that must not wait forever).
pub fn try_lock_for<T>(m: &ShmMutex<T>, ms: u64) -> Option<ShmMutexGuard<'_, T>> {
    let deadline = super::clock::now_ms() + ms;
    loop {
        if let Some(g) = m.try_lock() {
            return Some(g);
        }
        if super::clock::now_ms() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Initialises the lock at its final (shm) address: pthread and SysV builds need a real init.
pub fn init_in_place<T>(m: &ShmMutex<T>) -> bool {
    // SAFETY: the raw mutex is the first field of lock_api::Mutex and is not yet shared.
    unsafe { sys::shim_lock_init(m.raw() as *const KamRawMutex as *mut KamRawMutex as *mut _) == 0 }
}
