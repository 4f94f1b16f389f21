//! Kamailio shared memory as a Rust allocator. Kamailio's managers (qm, fm, tlsf) return blocks
//! aligned to 8 only, so larger alignments (hashbrown asks for 16) are served by over-allocating
//! and storing the raw pointer in the word before the aligned block.
use super::sys;
use allocator_api2::alloc::{AllocError, Allocator, Layout};
use std::ptr::NonNull;

const SHM_ALIGN: usize = 8;

/// Zero-sized handle to Kamailio's shm; usable in every process after fork.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShmAlloc;

unsafe impl Allocator for ShmAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let size = layout.size().max(1);
        if layout.align() <= SHM_ALIGN {
            // SAFETY: plain shm_malloc; NULL is handled.
            let p = unsafe { sys::shim_shm_malloc(size) } as *mut u8;
            let p = NonNull::new(p).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(p, layout.size()));
        }
        let total = size
            .checked_add(layout.align() + SHM_ALIGN)
            .ok_or(AllocError)?;
        // SAFETY: the block is big enough for the header word plus `size` bytes at any alignment.
        unsafe {
            let raw = sys::shim_shm_malloc(total) as *mut u8;
            if raw.is_null() {
                return Err(AllocError);
            }
            let start = raw as usize + SHM_ALIGN;
            let aligned = (start + layout.align() - 1) & !(layout.align() - 1);
            let p = aligned as *mut u8;
            (p as *mut *mut u8).sub(1).write_unaligned(raw);
            Ok(NonNull::slice_from_raw_parts(
                NonNull::new_unchecked(p),
                layout.size(),
            ))
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.align() <= SHM_ALIGN {
            sys::shim_shm_free(ptr.as_ptr() as *mut _);
        } else {
            let raw = (ptr.as_ptr() as *mut *mut u8).sub(1).read_unaligned();
            sys::shim_shm_free(raw as *mut _);
        }
    }
}

/// Moves `value` into shm and returns its address, or None when shm is full. The value lives
/// until the server stops (module state created in mod_init, before the workers fork).
pub fn leak_in_shm<T>(value: T) -> Option<&'static T> {
    let layout = Layout::new::<T>();
    let p = ShmAlloc.allocate(layout).ok()?.as_ptr() as *mut T;
    // SAFETY: p is a fresh, aligned block of size_of::<T>() bytes that is never freed.
    unsafe {
        p.write(value);
        Some(&*p)
    }
}

/// A value moved into shm once, in mod_init (before the workers fork), and read by every
/// process afterwards: the module's shared state. Publishing takes the `&'static` that
/// `leak_in_shm` returns, so the pointer read back is always to a live value that is never freed.
pub struct Published<T> {
    ptr: std::sync::atomic::AtomicPtr<T>,
}

impl<T: Sync> Published<T> {
    pub const fn new() -> Self {
        Published {
            ptr: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    pub fn publish(&self, value: &'static T) {
        self.ptr.store(
            value as *const T as *mut T,
            std::sync::atomic::Ordering::Release,
        );
    }

    /// The published value; None before `publish` (or in `kamailio -c`, or without the feature).
    pub fn get(&self) -> Option<&'static T> {
        let p = self.ptr.load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: only `publish` stores a non-null pointer, from a `&'static T`.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

impl<T: Sync> Default for Published<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of shm in use by the whole server.
pub fn used_bytes() -> u64 {
    // SAFETY: reads allocator statistics.
    unsafe { sys::shim_shm_used() as u64 }
}
