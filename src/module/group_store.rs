//! The group documents in force, as read from `groups_dir`: one copy in shm for every process
//! (groups.rs writes it, group_policy.rs reads it).
use crate::core::bytes::{try_bytes, Bytes};
use crate::kam::shm::ShmAlloc;
use allocator_api2::vec::Vec as AVec;

/// The good documents in force, by file name, as read (shared by all processes).
pub struct GroupStore {
    files: AVec<(Bytes<ShmAlloc>, Bytes<ShmAlloc>), ShmAlloc>,
}

impl GroupStore {
    pub fn new() -> Self {
        GroupStore {
            files: AVec::new_in(ShmAlloc),
        }
    }

    pub(super) fn to_vec(&self) -> Vec<(String, Vec<u8>)> {
        self.files
            .iter()
            .map(|(n, b)| (String::from_utf8_lossy(n).into_owned(), b.to_vec()))
            .collect()
    }

    /// Replaces the contents; on a full shm nothing changes.
    pub(super) fn replace(&mut self, good: &[(String, Vec<u8>)]) -> Result<(), &'static str> {
        const FULL: &str = "shared memory is full";
        let mut files = AVec::new_in(ShmAlloc);
        files.try_reserve_exact(good.len()).map_err(|_| FULL)?;
        for (name, bytes) in good {
            let n = try_bytes(name.as_bytes(), ShmAlloc).map_err(|_| FULL)?;
            let b = try_bytes(bytes, ShmAlloc).map_err(|_| FULL)?;
            files.push((n, b));
        }
        self.files = files;
        Ok(())
    }
}
