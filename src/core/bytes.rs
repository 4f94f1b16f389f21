//! Fallible byte strings and vectors in any allocator (Kamailio shm in the module, the heap in tests).
//! Shared memory can run out at any time: every allocation here returns `OutOfMemory` instead of aborting.
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// A byte string owned by allocator `A`.
pub type Bytes<A> = Vec<u8, A>;

/// The allocator (shm) could not satisfy a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// Copies `src` into a new `Bytes` in `alloc`.
pub fn try_bytes<A: Allocator>(src: &[u8], alloc: A) -> Result<Bytes<A>, OutOfMemory> {
    let mut v = Vec::new_in(alloc);
    v.try_reserve_exact(src.len()).map_err(|_| OutOfMemory)?;
    v.extend_from_slice(src);
    Ok(v)
}

/// Replaces the content of `dst` with `src`, reusing its buffer when it is big enough.
pub fn try_assign<A: Allocator>(dst: &mut Bytes<A>, src: &[u8]) -> Result<(), OutOfMemory> {
    if dst.as_slice() == src {
        return Ok(());
    }
    dst.clear();
    dst.try_reserve_exact(src.len()).map_err(|_| OutOfMemory)?;
    dst.extend_from_slice(src);
    Ok(())
}

/// Pushes `item`, failing instead of aborting when the allocator is full.
pub fn try_push<T, A: Allocator>(v: &mut Vec<T, A>, item: T) -> Result<(), OutOfMemory> {
    v.try_reserve(1).map_err(|_| OutOfMemory)?;
    v.push(item);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn copies_and_reassigns() {
        let mut b = try_bytes(b"sip:a@x", Global).unwrap();
        assert_eq!(b.as_slice(), b"sip:a@x");
        try_assign(&mut b, b"sip:longer@example.net").unwrap();
        assert_eq!(b.as_slice(), b"sip:longer@example.net");
        let mut v: Vec<u32, Global> = Vec::new_in(Global);
        try_push(&mut v, 7).unwrap();
        assert_eq!(v.as_slice(), &[7]);
    }
}
