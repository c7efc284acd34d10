//! One chunk body to record batches: its LZ4 frames inflated (every frame, under a limit the
//! manifest's sizes set), the Arrow IPC stream decoded and converted to the declared types, and
//! what makes a body garbled (worth downloading again) rather than mismatched
//! (docs/DATABRICKS-WIRE.md §10).

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;
use publish_columns::conform_columns;
use std::sync::Arc;

use super::buffers::InflateBuffers;

/// End-of-stream marker of an Arrow IPC stream (continuation + zero length).
const ARROW_EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];
/// Magic number of an LZ4 frame.
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4D, 0x18];
/// An LZ4 chunk may decompress to this many times the manifest's uncompressed `byte_count`
/// for it (the emulator's counts are estimates, a real warehouse's near exact)…
const LZ4_GROWTH: u64 = 8;
/// …but always to at least this much, since small chunks' counts are the roughest…
const LZ4_FLOOR: u64 = 256 << 20;
/// …and to this much when the manifest gives no size at all. Anything past the limit is
/// corrupt or hostile, and is refused rather than allocated.
const LZ4_UNKNOWN_CAP: u64 = 2 << 30;

/// One decoded chunk.
pub(super) struct Chunk {
    pub(super) batches: Vec<RecordBatch>,
    pub(super) rows: u64,
    /// Size of the Arrow stream after decompression.
    pub(super) plain_bytes: usize,
}

/// The most bytes one LZ4-compressed chunk may decompress to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InflateLimit {
    bytes: u64,
    /// The manifest's uncompressed size the limit was derived from, if it gave one.
    manifest_bytes: Option<u64>,
}

impl InflateLimit {
    pub(super) fn new(manifest_bytes: Option<u64>) -> Self {
        let bytes = manifest_bytes.map_or(LZ4_UNKNOWN_CAP, |n| {
            n.saturating_mul(LZ4_GROWTH).max(LZ4_FLOOR)
        });
        InflateLimit {
            bytes,
            manifest_bytes,
        }
    }

    fn describe(&self) -> String {
        match self.manifest_bytes {
            Some(n) => format!(
                "the limit of {} bytes ({LZ4_GROWTH} × the manifest's uncompressed size of {n} \
                 bytes for this chunk, at least {LZ4_FLOOR})",
                self.bytes
            ),
            None => format!(
                "the limit of {} bytes for a chunk whose size the manifest does not give",
                self.bytes
            ),
        }
    }
}

/// Why a downloaded body could not be used.
pub(super) enum DecodeError {
    /// Truncated or corrupt bytes: downloading again may help.
    Garbled(String),
    /// Well-formed data that does not fit the declared schema: downloading again will not help.
    Mismatch(String),
}

/// Decodes one chunk body: LZ4 frames (when the manifest says so or the body starts with their
/// magic) into a buffer of `buffers`, then one complete Arrow IPC stream, converted to `target`.
/// Runs on the blocking pool.
pub(super) fn decode(
    body: Buffer,
    lz4: bool,
    limit: InflateLimit,
    buffers: &Arc<InflateBuffers>,
    expected_rows: Option<u64>,
    target: &SchemaRef,
) -> Result<Chunk, DecodeError> {
    let mut buffer = if lz4 || body.as_slice().starts_with(&LZ4_MAGIC) {
        inflate(body.as_slice(), limit, buffers)?
    } else {
        body
    };
    let plain_bytes = buffer.len();
    // A stream cut at a message boundary decodes cleanly; only its end marker tells.
    if !buffer.as_slice().ends_with(&ARROW_EOS) {
        return Err(DecodeError::Garbled(
            "the Arrow stream ends without its end-of-stream marker (truncated)".into(),
        ));
    }
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    let mut rows = 0u64;
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer) {
            Ok(Some(batch)) => {
                rows += batch.num_rows() as u64;
                let batch = conform_columns(batch.columns(), batch.num_rows(), target)
                    .map_err(DecodeError::Mismatch)?;
                batches.push(batch);
            }
            Ok(None) => {}
            Err(e) => return Err(DecodeError::Garbled(format!("Arrow IPC: {e}"))),
        }
    }
    decoder
        .finish()
        .map_err(|e| DecodeError::Garbled(format!("Arrow IPC: {e}")))?;
    if decoder.schema().is_none() {
        return Err(DecodeError::Garbled(
            "the Arrow stream has no schema".into(),
        ));
    }
    if let Some(expected) = expected_rows
        && expected != rows
    {
        return Err(DecodeError::Garbled(format!(
            "decoded {rows} rows, the link announced {expected}"
        )));
    }
    Ok(Chunk {
        batches,
        rows,
        plain_bytes,
    })
}

/// Decompresses every LZ4 frame of `body`, in order, into one buffer of at most `limit.bytes`.
///
/// Databricks writes one frame per Arrow IPC message (schema, each batch, end marker), so a
/// chunk is a concatenation of frames; a body of one frame is the same case with one. lz4_flex
/// 0.11's decoder ends its reads at a frame's end mark and must not be reused for the next
/// frame (it trips its own debug assertions), so each frame gets a fresh decoder, reading from
/// where the last one stopped: it reads exactly its frame's bytes.
///
/// The buffer comes from `buffers`, already initialised, and is read into directly: first as
/// large as the manifest says the chunk is (at most 16 times the body; without a size, four
/// times), doubled while it is short.
fn inflate(
    body: &[u8],
    limit: InflateLimit,
    buffers: &Arc<InflateBuffers>,
) -> Result<Buffer, DecodeError> {
    use std::io::Read as _;
    // One byte more than the limit allows, to tell "exactly at the limit" from "past it".
    let most = usize::try_from(limit.bytes.saturating_add(1)).unwrap_or(usize::MAX);
    // The manifest's size, unless it is far beyond what the body could hold (a size is
    // touched in full here, so a wild one must not become memory at once).
    let first = limit
        .manifest_bytes
        .map_or(body.len().saturating_mul(4), |n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(body.len().saturating_mul(16))
        });
    let mut lease = buffers.take(first.clamp(1, most));
    let out = lease.as_mut_vec();
    let mut filled = 0usize;
    let mut rest = body;
    let mut frame = 0usize;
    while !rest.is_empty() {
        let before = rest.len();
        // Checked here: lz4_flex reads a stray 4-byte tail as an empty frame, without error.
        if !rest.starts_with(&LZ4_MAGIC) {
            return Err(DecodeError::Garbled(format!(
                "LZ4 frame {frame} (at byte {}) does not start with the LZ4 magic number",
                body.len() - before
            )));
        }
        let garbled = |e: std::io::Error| {
            DecodeError::Garbled(format!(
                "LZ4 frame {frame} (at byte {}): {e}",
                body.len() - before
            ))
        };
        let mut decoder = lz4_flex::frame::FrameDecoder::new(&mut rest);
        loop {
            // Reads stop at a full buffer: one of `most` bytes full is past the limit (so the
            // frames cannot end past it unnoticed); a shorter one doubles.
            if filled == out.len() {
                if out.len() >= most {
                    return Err(DecodeError::Garbled(format!(
                        "the LZ4 frames decompress past {}; refusing the chunk rather than \
                         allocating more",
                        limit.describe()
                    )));
                }
                let grown = out.len().saturating_mul(2).min(most);
                out.resize(grown, 0);
            }
            match decoder.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(garbled(e)),
            }
        }
        if rest.len() == before {
            return Err(DecodeError::Garbled(format!(
                "LZ4 frame {frame} (at byte {}) could not be read",
                body.len() - before
            )));
        }
        frame += 1;
    }
    Ok(lease.into_buffer(filled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::ipc::writer::StreamWriter;
    use std::io::Write as _;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]))
    }

    fn batch(schema: &SchemaRef, rows: usize) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        RecordBatch::try_new(schema.clone(), vec![a]).unwrap()
    }

    /// An Arrow stream of two batches of `rows`, in one piece.
    fn ipc(rows: usize) -> (Vec<u8>, SchemaRef) {
        let schema = schema();
        let batch = batch(&schema, rows);
        let mut w = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        w.write(&batch).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        (w.into_inner().unwrap(), schema)
    }

    fn lz4_frame(plain: &[u8]) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(plain).unwrap();
        enc.finish().unwrap()
    }

    /// A chunk as Databricks compresses it: each IPC message of a stream of `batches` (of
    /// `rows` each) in an LZ4 frame of its own. Returns the body and its frame count.
    fn framed_per_message(batches: usize, rows: usize) -> (Vec<u8>, usize, SchemaRef) {
        let schema = schema();
        let mut w = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        let mut body = lz4_frame(w.get_ref());
        w.get_mut().clear();
        let mut frames = 1;
        for _ in 0..batches {
            w.write(&batch(&schema, rows)).unwrap();
            body.extend(lz4_frame(w.get_ref()));
            w.get_mut().clear();
            frames += 1;
        }
        w.finish().unwrap();
        assert_eq!(w.get_ref().as_slice(), ARROW_EOS);
        body.extend(lz4_frame(w.get_ref()));
        (body, frames + 1, schema)
    }

    fn run_limited(
        bytes: Vec<u8>,
        lz4: bool,
        limit: InflateLimit,
        expected: Option<u64>,
        schema: &SchemaRef,
    ) -> Result<Chunk, String> {
        let buffers = Arc::new(InflateBuffers::default());
        decode(
            Buffer::from_vec(bytes),
            lz4,
            limit,
            &buffers,
            expected,
            schema,
        )
        .map_err(|e| match e {
            DecodeError::Garbled(m) => format!("garbled: {m}"),
            DecodeError::Mismatch(m) => format!("mismatch: {m}"),
        })
    }

    fn run(
        bytes: Vec<u8>,
        lz4: bool,
        expected: Option<u64>,
        schema: &SchemaRef,
    ) -> Result<u64, String> {
        run_limited(bytes, lz4, InflateLimit::new(None), expected, schema).map(|c| c.rows)
    }

    #[test]
    fn decodes_and_detects_truncation() {
        let (bytes, schema) = ipc(10);
        assert_eq!(run(bytes.clone(), false, Some(20), &schema), Ok(20));
        for cut in [bytes.len() / 2, bytes.len() - 8, 3] {
            let r = run(bytes[..cut].to_vec(), false, None, &schema);
            assert!(
                r.as_ref().is_err_and(|e| e.starts_with("garbled")),
                "cut at {cut}: {r:?}"
            );
        }
        let r = run(bytes.clone(), false, Some(21), &schema);
        assert!(r.is_err_and(|e| e.contains("announced 21")));
        let other = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        assert!(run(bytes, false, None, &other).is_err_and(|e| e.starts_with("mismatch")));
    }

    #[test]
    fn decodes_one_lz4_frame_per_chunk() {
        // What this client's emulator used to send, and any writer that frames the whole stream.
        let (bytes, schema) = ipc(5);
        assert_eq!(run(lz4_frame(&bytes), true, Some(10), &schema), Ok(10));
    }

    #[test]
    fn decodes_every_lz4_frame_of_a_chunk() {
        // As Databricks writes it: schema, each batch and the end marker, one frame each.
        let (body, frames, schema) = framed_per_message(4, 1000);
        assert_eq!(frames, 6);
        let chunk = run_limited(
            body.clone(),
            true,
            InflateLimit::new(None),
            Some(4000),
            &schema,
        )
        .expect("every frame decoded");
        assert_eq!(chunk.rows, 4000);
        assert_eq!(
            chunk.batches.len(),
            4,
            "every batch, not just the first frame's"
        );
        // Detected by its magic even when the manifest does not say LZ4.
        assert_eq!(run(body.clone(), false, Some(4000), &schema), Ok(4000));
        // A body cut between frames, before the end marker's: garbled, not short.
        let cut = body.len() - lz4_frame(&ARROW_EOS).len();
        let r = run(body[..cut].to_vec(), true, None, &schema);
        assert!(r.is_err_and(|e| e.contains("end-of-stream")), "cut body");
        // Trailing bytes that are not a frame are garbled too.
        let mut trailing = body;
        trailing.extend_from_slice(b"junk");
        let r = run(trailing, true, None, &schema);
        assert!(r.is_err_and(|e| e.contains("LZ4 frame 6")), "trailing junk");
    }

    #[test]
    fn refuses_chunks_that_decompress_past_the_limit() {
        let (body, _, schema) = framed_per_message(4, 1000);
        let plain = run_limited(body.clone(), true, InflateLimit::new(None), None, &schema)
            .unwrap()
            .plain_bytes as u64;
        let at = |bytes| InflateLimit {
            bytes,
            manifest_bytes: Some(bytes / LZ4_GROWTH),
        };
        // Exactly at the limit is fine; one byte under is refused, naming the limit.
        assert!(run_limited(body.clone(), true, at(plain), None, &schema).is_ok());
        let r = run_limited(body.clone(), true, at(plain - 1), None, &schema);
        let e = r.err().expect("refused");
        assert!(e.starts_with("garbled"), "{e}");
        assert!(e.contains(&format!("limit of {} bytes", plain - 1)), "{e}");
        assert!(e.contains("× the manifest's uncompressed size of"), "{e}");
        // A bomb: one frame of 64 MiB of zeros (a few hundred KiB compressed) stops at the
        // limit instead of being inflated whole.
        let bomb = lz4_frame(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let small = InflateLimit {
            bytes: 1 << 20,
            manifest_bytes: None,
        };
        let e = run_limited(bomb, true, small, None, &schema)
            .err()
            .expect("refused");
        assert!(
            e.contains("limit of 1048576 bytes for a chunk whose size the manifest does not give"),
            "{e}"
        );
    }

    #[test]
    fn a_wild_manifest_size_is_not_allocated_up_front() {
        // 1 TiB claimed for a chunk of a few hundred bytes: the buffer starts at 16 × the body.
        let (bytes, schema) = ipc(5);
        let body = lz4_frame(&bytes);
        let buffers = Arc::new(InflateBuffers::default());
        let limit = InflateLimit::new(Some(1 << 40));
        let chunk = decode(
            Buffer::from_vec(body.clone()),
            true,
            limit,
            &buffers,
            None,
            &schema,
        )
        .ok()
        .expect("decoded");
        assert_eq!(chunk.rows, 10);
        drop(chunk);
        let lease = buffers.take(0);
        assert!(
            lease.as_ref().len() <= body.len() * 16,
            "{}",
            lease.as_ref().len()
        );
    }

    #[test]
    fn inflate_limits_follow_the_manifest() {
        assert_eq!(InflateLimit::new(None).bytes, LZ4_UNKNOWN_CAP);
        assert_eq!(InflateLimit::new(Some(1000)).bytes, LZ4_FLOOR);
        assert_eq!(InflateLimit::new(Some(100 << 20)).bytes, 800 << 20);
        assert_eq!(InflateLimit::new(Some(u64::MAX)).bytes, u64::MAX);
    }
}
