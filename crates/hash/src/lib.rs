//! Streaming SHA-512 / SHA3-512 / BLAKE3 hashing and hash-while-copying.
//!
//! Published files can be many gigabytes, so nothing here holds a file in memory: data passes
//! through one fixed buffer of [`BUFFER_SIZE`] bytes. [`copy_hashing`] reads every byte exactly
//! once and both writes and hashes it, which is how a publish verifies what it copies without a
//! second read pass (docs/CONTRACT.md §9.1).
//!
//! SHA-512 (FIPS 180-4) is the default because CR8TOR records it in BagIt's
//! `manifest-sha512.txt`; SHA3-512 (FIPS 202) is available as an option. Digests are lowercase
//! hex, 128 characters for both. BLAKE3 (256-bit, 64 hex characters) is the package record's
//! digest: it binds a staged file to its package as strongly, at a fraction of SHA-512's CPU, and
//! is never an answer ([`HashAlgorithm::from_str`] does not accept it). [`copy_hashing_with`]
//! computes several digests in the one pass, so that a publish checks a staged file against its
//! record and answers SHA-512 from a single read.

mod error;

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub use error::HashError;

/// The size of the buffer used by [`hash_reader`] and [`copy_hashing`]: 1 MiB, large enough that
/// system-call overhead is negligible next to hashing, small enough to never matter for memory.
pub const BUFFER_SIZE: usize = 1 << 20;

/// A supported digest algorithm. Serialised as `"sha512"` or `"sha3-512"`.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlgorithm {
    /// SHA-512 (FIPS 180-4), what BagIt's `manifest-sha512.txt` holds. The default.
    #[default]
    #[serde(rename = "sha512")]
    Sha512,
    /// SHA3-512 (FIPS 202). Never the default.
    #[serde(rename = "sha3-512")]
    Sha3_512,
    /// BLAKE3, 256-bit: the package record's digest of each staged file, never an answer.
    #[serde(rename = "blake3")]
    Blake3,
}

impl HashAlgorithm {
    /// The name used on the wire and in configuration: `sha512` or `sha3-512`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Sha3_512 => "sha3-512",
            HashAlgorithm::Blake3 => "blake3",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = HashError;

    /// Accepts `sha512` / `sha-512` and `sha3-512` / `sha3_512`, in any case: the algorithms a
    /// publish may answer in. `blake3` is refused; it is the package record's digest only.
    fn from_str(s: &str) -> Result<Self, HashError> {
        match s.to_ascii_lowercase().as_str() {
            "sha512" | "sha-512" => Ok(HashAlgorithm::Sha512),
            "sha3-512" | "sha3_512" => Ok(HashAlgorithm::Sha3_512),
            _ => Err(HashError::UnknownAlgorithm {
                given: s.to_owned(),
            }),
        }
    }
}

/// The digest of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The algorithm that produced [`FileDigest::hex`].
    pub algorithm: HashAlgorithm,
    /// The digest as lowercase hex: 128 characters (SHA-512, SHA3-512) or 64 (BLAKE3).
    pub hex: String,
    /// How many bytes were hashed.
    pub total_bytes: u64,
}

enum State {
    Sha512(sha2::Sha512),
    Sha3_512(sha3::Sha3_512),
    Blake3(Box<blake3::Hasher>),
}

/// An incremental hasher that also counts the bytes it was given.
pub struct Hasher {
    algorithm: HashAlgorithm,
    state: State,
    total_bytes: u64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher for `algorithm` that has seen no bytes yet.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        let state = match algorithm {
            HashAlgorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Sha3_512 => State::Sha3_512(sha3::Sha3_512::new()),
            HashAlgorithm::Blake3 => State::Blake3(Box::new(blake3::Hasher::new())),
        };
        Self {
            algorithm,
            state,
            total_bytes: 0,
        }
    }

    /// Feeds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Sha512(h) => h.update(data),
            State::Sha3_512(h) => h.update(data),
            State::Blake3(h) => {
                h.update(data);
            }
        }
        // usize always fits in u64 on supported targets.
        self.total_bytes += data.len() as u64;
    }

    /// How many bytes have been fed so far.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Ends the stream and returns its digest.
    pub fn finish(self) -> FileDigest {
        let hex = match self.state {
            State::Sha512(h) => hex::encode(h.finalize()),
            State::Sha3_512(h) => hex::encode(h.finalize()),
            State::Blake3(h) => h.finalize().to_hex().to_string(),
        };
        FileDigest {
            algorithm: self.algorithm,
            hex,
            total_bytes: self.total_bytes,
        }
    }
}

/// Reads `reader` to its end and returns the digest of everything read.
///
/// Reading and hashing overlap: see [`copy_hashing`].
pub fn hash_reader<R: Read>(reader: R, algorithm: HashAlgorithm) -> io::Result<FileDigest> {
    let [digest] = pipeline(reader, |_| Ok(()), [algorithm])?;
    Ok(digest)
}

/// Reads `reader` to its end and returns its digest in each of `algorithms`, from one read.
pub fn hash_reader_with<R: Read, const N: usize>(
    reader: R,
    algorithms: [HashAlgorithm; N],
) -> io::Result<[FileDigest; N]> {
    pipeline(reader, |_| Ok(()), algorithms)
}

/// Copies `reader` to `writer` and returns the digest of the bytes copied.
///
/// Each byte is read once into one of a few [`BUFFER_SIZE`] buffers, written from it, and hashed
/// from the same buffer, so the digest describes exactly what was handed to `writer`. The I/O
/// runs on the calling thread while a scoped helper thread hashes the previous buffers, so a copy
/// takes about as long as the slower of the two rather than their sum. The writer is flushed
/// before returning; making the data durable (`File::sync_all`) is the caller's job. On error,
/// some bytes may already have been written.
pub fn copy_hashing<R: Read, W: Write>(
    reader: R,
    writer: W,
    algorithm: HashAlgorithm,
) -> io::Result<FileDigest> {
    let [digest] = copy_hashing_with(reader, writer, [algorithm])?;
    Ok(digest)
}

/// [`copy_hashing`] with a digest in each of `algorithms`, all from the one read; an algorithm
/// named twice is hashed once.
pub fn copy_hashing_with<R: Read, W: Write, const N: usize>(
    reader: R,
    mut writer: W,
    algorithms: [HashAlgorithm; N],
) -> io::Result<[FileDigest; N]> {
    let digests = pipeline(reader, |chunk| writer.write_all(chunk), algorithms)?;
    writer.flush()?;
    Ok(digests)
}

/// Buffers in flight between the I/O thread and the hashing thread.
const BUFFERS: usize = 4;

/// Reads `reader` to its end, passing each chunk to `sink` on this thread and to a hasher on a
/// scoped thread. Small inputs (one read) are hashed here, sparing the thread.
fn pipeline<R: Read, const N: usize>(
    mut reader: R,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    algorithms: [HashAlgorithm; N],
) -> io::Result<[FileDigest; N]> {
    let mut first = vec![0u8; BUFFER_SIZE];
    let n = read_full(&mut reader, &mut first)?;
    if n < BUFFER_SIZE {
        // The whole input fitted in one buffer.
        sink(&first[..n])?;
        let mut hashers = Hashers::new(algorithms);
        hashers.update(&first[..n]);
        return Ok(hashers.finish());
    }

    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut hashers = Hashers::new(algorithms);
            for chunk in full_rx {
                hashers.update(&chunk);
                // The I/O side may have stopped; then the buffer is simply freed.
                let _ = empty_tx.send(chunk);
            }
            hashers.finish()
        });

        let io_result = (|| {
            let mut spare = BUFFERS - 1;
            let mut chunk = first;
            chunk.truncate(n);
            loop {
                sink(&chunk)?;
                let last = chunk.len() < BUFFER_SIZE;
                if full_tx.send(chunk).is_err() || last {
                    return Ok(());
                }
                chunk = if spare > 0 {
                    spare -= 1;
                    vec![0u8; BUFFER_SIZE]
                } else {
                    match empty_rx.recv() {
                        Ok(mut buf) => {
                            buf.resize(BUFFER_SIZE, 0);
                            buf
                        }
                        // The hashing thread is gone (it panicked); join reports it.
                        Err(_) => return Ok(()),
                    }
                };
                let n = read_full(&mut reader, &mut chunk)?;
                chunk.truncate(n);
                if n == 0 {
                    return Ok(());
                }
            }
        })();
        drop(full_tx);
        let digest = match hashing.join() {
            Ok(digest) => digest,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        io_result.map(|()| digest)
    })
}

/// One hasher per distinct algorithm of `N` asked for: an algorithm named twice (a record and
/// an answer in the same one) is hashed once and its digest given to both.
struct Hashers<const N: usize> {
    hashers: Vec<Hasher>,
    /// For each algorithm asked for, its hasher in `hashers`.
    slot: [usize; N],
}

impl<const N: usize> Hashers<N> {
    fn new(algorithms: [HashAlgorithm; N]) -> Self {
        let mut distinct: Vec<HashAlgorithm> = Vec::with_capacity(N);
        let slot = algorithms.map(|algorithm| {
            distinct
                .iter()
                .position(|a| *a == algorithm)
                .unwrap_or_else(|| {
                    distinct.push(algorithm);
                    distinct.len() - 1
                })
        });
        Hashers {
            hashers: distinct.into_iter().map(Hasher::new).collect(),
            slot,
        }
    }

    fn update(&mut self, data: &[u8]) {
        for hasher in &mut self.hashers {
            hasher.update(data);
        }
    }

    fn finish(self) -> [FileDigest; N] {
        let digests: Vec<FileDigest> = self.hashers.into_iter().map(Hasher::finish).collect();
        self.slot.map(|i| digests[i].clone())
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
