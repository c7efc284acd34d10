//! A multi-megabyte file hashes to exactly what coreutils' `sha512sum` prints.

use std::fs::File;

use publish_hash::{HashAlgorithm, copy_hashing, hash_reader};

use publish_test_support::sha512sum;

use crate::deterministic_bytes;

#[test]
fn file_digest_equals_sha512sum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    // More buffers than the pipeline holds (so buffers are recycled), and a partial last one.
    let data = deterministic_bytes(5 * (1 << 20) + 4_321, 2025);
    std::fs::write(&path, &data).unwrap();

    let expected = sha512sum(&path);
    let digest = hash_reader(File::open(&path).unwrap(), HashAlgorithm::Sha512).unwrap();
    assert_eq!(digest.hex, expected);
    assert_eq!(digest.total_bytes, data.len() as u64);

    let copy = dir.path().join("copy.bin");
    let copied = copy_hashing(
        File::open(&path).unwrap(),
        File::create(&copy).unwrap(),
        HashAlgorithm::Sha512,
    )
    .unwrap();
    assert_eq!(copied, digest);
    assert_eq!(sha512sum(&copy), expected);
}
