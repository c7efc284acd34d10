//! `copy_hashing` writes exactly what it read and hashes the same bytes as `hash_reader`.

use std::io::{self, Read, Write};

use publish_hash::{BUFFER_SIZE, HashAlgorithm, Hasher, copy_hashing, hash_reader};

use crate::deterministic_bytes;

/// A reader that returns at most `step` bytes per call and is interrupted every other call.
struct Choppy<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A writer that accepts at most 1000 bytes per call.
struct Slow(Vec<u8>);

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(1000);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn copy_is_identical_and_digest_matches_hash_reader() {
    for len in [
        0,
        1,
        BUFFER_SIZE - 1,
        BUFFER_SIZE,
        BUFFER_SIZE + 1,
        2 * BUFFER_SIZE + 12_345,
    ] {
        let data = deterministic_bytes(len, len as u64 + 7);
        for alg in [HashAlgorithm::Sha512, HashAlgorithm::Sha3_512] {
            let mut out = Vec::new();
            let copied = copy_hashing(&data[..], &mut out, alg).unwrap();
            assert!(out == data, "copy of {len} bytes differs ({alg})");
            assert_eq!(
                copied,
                hash_reader(&data[..], alg).unwrap(),
                "{len} bytes, {alg}"
            );
            // And to the plain incremental hasher, which involves no pipeline.
            let mut direct = Hasher::new(alg);
            direct.update(&data);
            assert_eq!(copied, direct.finish(), "{len} bytes, {alg}");
            assert_eq!(copied.total_bytes, len as u64);
            assert_eq!(copied.hex.len(), 128);
        }
    }
}

#[test]
fn short_reads_short_writes_and_interrupts_are_handled() {
    let data = deterministic_bytes(2 * BUFFER_SIZE + 3, 42);
    let reader = Choppy {
        data: &data,
        step: 65_537,
        interrupt: false,
    };
    let mut out = Slow(Vec::new());
    let copied = copy_hashing(reader, &mut out, HashAlgorithm::Sha512).unwrap();
    assert!(out.0 == data, "copy differs");
    assert_eq!(
        copied,
        hash_reader(&data[..], HashAlgorithm::Sha512).unwrap()
    );
}

#[test]
fn writer_errors_are_returned() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = copy_hashing(&b"some bytes"[..], Full, HashAlgorithm::Sha512).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

/// Several digests from the one pass are each what hashing alone gives: a publish checks the
/// record's BLAKE3 and answers SHA-512 from a single read of the staged file.
#[test]
fn several_digests_from_one_copy_are_each_the_single_digest() {
    for len in [0, BUFFER_SIZE - 1, 3 * BUFFER_SIZE + 5] {
        let data = deterministic_bytes(len, len as u64 + 11);
        let mut out = Vec::new();
        let algorithms = [HashAlgorithm::Sha512, HashAlgorithm::Blake3];
        let digests = publish_hash::copy_hashing_with(&data[..], &mut out, algorithms).unwrap();
        assert!(out == data, "copy of {len} bytes differs");
        let read = publish_hash::hash_reader_with(&data[..], algorithms).unwrap();
        for (digest, alg) in digests.iter().zip(algorithms) {
            assert_eq!(
                *digest,
                hash_reader(&data[..], alg).unwrap(),
                "{len} bytes, {alg}"
            );
        }
        assert_eq!(read, digests);
        assert_eq!(digests[1].hex.len(), 64, "BLAKE3 is 256 bits");
    }
}

/// An algorithm named twice is hashed once and both get its digest.
#[test]
fn an_algorithm_named_twice_gives_the_same_digest_twice() {
    let data = deterministic_bytes(2 * BUFFER_SIZE + 3, 5);
    let [a, b, c] = publish_hash::hash_reader_with(
        &data[..],
        [
            HashAlgorithm::Blake3,
            HashAlgorithm::Sha512,
            HashAlgorithm::Blake3,
        ],
    )
    .unwrap();
    assert_eq!(a, c);
    assert_eq!(a, hash_reader(&data[..], HashAlgorithm::Blake3).unwrap());
    assert_eq!(b, hash_reader(&data[..], HashAlgorithm::Sha512).unwrap());
}
