//! The buffers LZ4 chunks are inflated into, kept for the next chunks of the same read.
//!
//! A chunk inflates to 10–30 MB. A fresh buffer for each cost the kernel a page fault for every
//! 4 KiB of it (it hands out zeroed pages) and the reader a zeroing pass of its own (std zeroes
//! what `read_to_end` grows into), and the allocator could give the memory back between chunks,
//! so every chunk paid again: about a sixth of the server's page faults while it packaged the
//! benchmark's tables with glibc's allocator (crates/bench/README.md). A buffer comes back here when the last array cut from it is
//! dropped (the Arrow IPC decoder slices batches out of it without copying); at most [`KEPT`]
//! wait here, the others are freed as before. The pool belongs to one read: once the read is
//! over its buffers are freed as their last arrays go.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use arrow::buffer::Buffer;

/// How many free buffers a read keeps. Decoded chunks wait in the read's queue and are
/// consumed one by one, so one or two come back between two decodes; more would only hold
/// memory the download budget does not count.
const KEPT: usize = 2;

/// The free buffers of one read.
#[derive(Default)]
pub(super) struct InflateBuffers {
    free: Mutex<Vec<Vec<u8>>>,
}

impl InflateBuffers {
    /// A buffer of at least `len` initialised bytes: a kept one if there is one, grown if it
    /// is short. Its bytes are what its last chunk left; callers overwrite what they use.
    pub(super) fn take(self: &Arc<Self>, len: usize) -> Lease {
        let mut bytes = self.lock().pop().unwrap_or_default();
        if bytes.len() < len {
            bytes.resize(len, 0);
        }
        Lease {
            bytes,
            home: Arc::downgrade(self),
        }
    }

    /// How many buffers wait to be taken (for tests).
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.lock().len()
    }

    fn give_back(&self, bytes: Vec<u8>) {
        let mut free = self.lock();
        if free.len() < KEPT {
            free.push(bytes);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A buffer taken from an [`InflateBuffers`]; it goes back there when dropped, if the read is
/// still going on.
pub(super) struct Lease {
    bytes: Vec<u8>,
    home: Weak<InflateBuffers>,
}

impl Lease {
    /// The whole buffer, to write into.
    pub(super) fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Its first `len` bytes as an Arrow buffer (without copying); the lease goes home when
    /// the last array sliced from it is dropped.
    pub(super) fn into_buffer(self, len: usize) -> Buffer {
        debug_assert!(len <= self.bytes.len());
        Buffer::from(bytes::Bytes::from_owner(self).slice(..len))
    }
}

impl AsRef<[u8]> for Lease {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            home.give_back(std::mem::take(&mut self.bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_is_dropped() {
        let pool = Arc::new(InflateBuffers::default());
        let mut lease = pool.take(1000);
        lease.as_mut_vec()[..3].copy_from_slice(b"abc");
        let address = lease.as_ref().as_ptr();
        let buffer = lease.into_buffer(3);
        assert_eq!(buffer.as_slice(), b"abc");
        let slice = buffer.slice(1);
        drop(buffer);
        assert_eq!(pool.kept(), 0, "a slice still holds it");
        assert_eq!(slice.as_slice(), b"bc");
        drop(slice);
        assert_eq!(pool.kept(), 1);
        // The next chunk gets the same memory, already the size it needs.
        let again = pool.take(500);
        assert_eq!(again.as_ref().as_ptr(), address);
        assert_eq!(again.as_ref().len(), 1000);
    }

    #[test]
    fn a_short_buffer_grows_and_at_most_kept_wait() {
        let pool = Arc::new(InflateBuffers::default());
        let leases: Vec<Lease> = (0..KEPT + 2).map(|_| pool.take(10)).collect();
        drop(leases);
        assert_eq!(pool.kept(), KEPT);
        assert_eq!(pool.take(4096).as_ref().len(), 4096);
    }

    #[test]
    fn buffers_of_a_finished_read_are_freed() {
        let pool = Arc::new(InflateBuffers::default());
        let buffer = pool.take(10).into_buffer(10);
        let home = Arc::downgrade(&pool);
        drop(pool);
        drop(buffer);
        assert!(home.upgrade().is_none());
    }
}
