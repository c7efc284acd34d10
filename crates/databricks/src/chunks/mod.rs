//! Reading a finished statement's result (docs/DATABRICKS-WIRE.md §8–§10): discovering chunks by
//! `next_chunk_index`, downloading their presigned links in parallel (bounded) without an
//! `Authorization` header, decompressing LZ4 (every frame: Databricks writes one per Arrow IPC
//! message), decoding each Arrow IPC stream, converting it to the declared types, and handing
//! the batches on in chunk order.
//!
//! A producer task runs the pipeline and feeds a bounded channel; each download is a task of
//! its own, so a transfer keeps going while the consumer is busy and never stalls into a read
//! timeout. How many chunks are in flight adapts to the consumer, within `max_parallel_downloads`
//! and `download_budget`, and `prefetch_chunks` decoded chunks wait in the channel. Dropping the stream aborts the producer and its downloads, and
//! the producer's [`CancelOnDrop`](crate::statement::CancelOnDrop) cancels the statement.
//!
//! `stream` runs that pipeline; `rerun` holds the statement being read and runs it again when
//! its result expires; `download` fetches one chunk's body; `decode` turns a body into batches,
//! inflating LZ4 into the read's reused `buffers`.

mod buffers;
mod decode;
mod download;
mod rerun;
mod stream;

pub(crate) use rerun::Rerun;
pub(crate) use stream::{AbortOnDrop, stream};
