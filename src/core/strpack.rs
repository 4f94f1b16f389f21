//! Several byte strings in one allocation. In the module every shm allocation and free takes
//! Kamailio's one allocator lock (docs/performance.md, "The missed targets"): a subscription's
//! dozen strings cost it one call to make and one to free, not a dozen.
use super::bytes::{Bytes, OutOfMemory};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// `N` byte strings back to back in one buffer of allocator `A`.
#[derive(Debug)]
pub struct StrPack<A: Allocator, const N: usize> {
    buf: Bytes<A>,
    /// Where each string ends in `buf`; string `i` starts where string `i - 1` ends.
    ends: [u32; N],
}

impl<A: Allocator, const N: usize> StrPack<A, N> {
    /// Packs `parts` into one new block of `alloc`.
    pub fn try_new(parts: [&[u8]; N], alloc: A) -> Result<Self, OutOfMemory> {
        Self::try_new_in(Vec::new_in(alloc), parts)
    }

    /// Packs `parts` into `block`, which allocates nothing more when it has the capacity
    /// (`block_size`): the caller may allocate it before taking a lock.
    pub fn try_new_in(mut block: Bytes<A>, parts: [&[u8]; N]) -> Result<Self, OutOfMemory> {
        let ends = fill(&mut block, &parts)?;
        Ok(StrPack { buf: block, ends })
    }

    /// String `i` (`i < N`).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        &self.buf[start..self.ends[i] as usize]
    }

    /// Replaces string `i`. The strings move to a new block (the old one stays as it was when
    /// memory runs out): meant for a string that rarely changes.
    pub fn try_set(&mut self, i: usize, s: &[u8]) -> Result<(), OutOfMemory>
    where
        A: Clone,
    {
        if self.get(i) == s {
            return Ok(());
        }
        let mut parts: [&[u8]; N] = std::array::from_fn(|j| self.get(j));
        parts[i] = s;
        let mut block = Vec::new_in(self.buf.allocator().clone());
        let ends = fill(&mut block, &parts)?;
        self.buf = block;
        self.ends = ends;
        Ok(())
    }
}

/// The bytes `parts` take in a block.
pub fn block_size(parts: &[&[u8]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// Writes `parts` into `block` with at most one allocation; returns their end offsets.
fn fill<A: Allocator, const N: usize>(
    block: &mut Bytes<A>,
    parts: &[&[u8]; N],
) -> Result<[u32; N], OutOfMemory> {
    // offsets are u32: a SIP message is far smaller, but a bigger total must fail, not wrap
    let total = parts
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.len()))
        .filter(|&t| u32::try_from(t).is_ok())
        .ok_or(OutOfMemory)?;
    block.clear();
    block.try_reserve_exact(total).map_err(|_| OutOfMemory)?;
    let mut ends = [0u32; N];
    for (end, p) in ends.iter_mut().zip(parts) {
        block.extend_from_slice(p);
        *end = block.len() as u32; // <= total, checked above
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn packs_reads_and_replaces() {
        let mut p = StrPack::<_, 4>::try_new([b"call", b"", b"sip:a@x", b"tag"], Global).unwrap();
        assert_eq!(p.get(0), b"call");
        assert_eq!(p.get(1), b"");
        assert_eq!(p.get(2), b"sip:a@x");
        assert_eq!(p.get(3), b"tag");
        p.try_set(2, b"sip:longer@example.net").unwrap();
        assert_eq!(
            [p.get(0), p.get(1), p.get(2), p.get(3)],
            [&b"call"[..], b"", b"sip:longer@example.net", b"tag"]
        );
        p.try_set(0, b"").unwrap();
        assert_eq!(p.get(0), b"");
        assert_eq!(p.get(2), b"sip:longer@example.net");
    }

    #[test]
    fn a_block_with_room_is_used_as_it_is() {
        let parts: [&[u8]; 2] = [b"abc", b"de"];
        let mut block = Vec::new_in(Global);
        block.try_reserve_exact(block_size(&parts)).unwrap();
        let ptr = block.as_ptr();
        let p = StrPack::try_new_in(block, parts).unwrap();
        assert_eq!((p.get(0), p.get(1)), (&b"abc"[..], &b"de"[..]));
        assert_eq!(p.buf.as_ptr(), ptr);
    }
}
