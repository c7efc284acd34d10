//! Regrouping a table's batches into batches of DuckDB's row group size, in order.
//!
//! DuckDB's ordered parallel insert (`PhysicalBatchInsert`) writes a scanned batch of at least
//! one row group straight to the database file, compressed on the thread that scanned it.
//! Smaller batches (the emulator's and Databricks' IPC batches are 64 Ki rows or fewer, a SQL
//! source's are what `PUBLISH_SQL_BATCH_ROWS` says) are kept in memory until enough
//! consecutive ones make whole row groups, copied again into one and written by a single merge
//! task; under the default 256 MB memory limit the scan threads then mostly wait for that
//! memory. Measured on the benchmark's wide table (10 M rows, 256 MB limit, 2 threads, DuckDB's
//! Python client over the same Parquet file): 13.1 s from 65 536-row batches, 7.3 s from
//! 122 880-row ones.
//!
//! [`Regroup`] hands on a batch of exactly [`ROW_GROUP_ROWS`] rows as it is; otherwise it
//! gathers batches and cuts them into batches of that many rows. Rows that would need more
//! than [`MAX_GATHERED_BYTES`] of Arrow memory to make one row group (rows wider than ~500
//! bytes on average) are handed on as they came: DuckDB then merges them itself, slower but
//! within its memory limit, and no string column's 32-bit offsets can overflow in the copy.

use arrow::compute::concat_batches;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// DuckDB's row group size (`DEFAULT_ROW_GROUP_SIZE`), which the files this crate makes keep.
pub(crate) const ROW_GROUP_ROWS: usize = 122_880;

/// The most Arrow memory gathered to make one row group.
pub(crate) const MAX_GATHERED_BYTES: usize = 64 << 20;

/// Cuts a stream of batches into batches of `rows` rows (but the last), in order.
pub(crate) struct Regroup {
    rows: usize,
    max_bytes: usize,
    /// Batches not yet handed on, in order; together fewer than `rows` rows.
    gathered: Vec<RecordBatch>,
    gathered_rows: usize,
    gathered_bytes: usize,
}

impl Regroup {
    /// Regroups into DuckDB's row groups.
    pub(crate) fn row_groups() -> Self {
        Self::new(ROW_GROUP_ROWS, MAX_GATHERED_BYTES)
    }

    fn new(rows: usize, max_bytes: usize) -> Self {
        Self {
            rows: rows.max(1),
            max_bytes,
            gathered: Vec::new(),
            gathered_rows: 0,
            gathered_bytes: 0,
        }
    }

    /// Takes `batch`; returns the batches now ready to hand on, in order.
    pub(crate) fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(Vec::new());
        }
        if self.gathered.is_empty() && batch.num_rows() == self.rows {
            return Ok(vec![batch]);
        }
        self.gathered_rows += batch.num_rows();
        self.gathered_bytes += slice_bytes(&batch);
        self.gathered.push(batch);
        let mut ready = Vec::new();
        while self.gathered_rows >= self.rows {
            ready.push(self.cut()?);
        }
        if self.gathered_bytes > self.max_bytes {
            // Too wide to gather a row group of: hand on what is here as it came.
            ready.append(&mut self.gathered);
            self.gathered_rows = 0;
            self.gathered_bytes = 0;
        }
        Ok(ready)
    }

    /// The rows still gathered, as one batch (none when nothing is left).
    pub(crate) fn finish(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.gathered.is_empty() {
            return Ok(None);
        }
        let rest = std::mem::take(&mut self.gathered);
        self.gathered_rows = 0;
        self.gathered_bytes = 0;
        one_batch(rest).map(Some)
    }

    /// Takes the first `self.rows` gathered rows out as one batch.
    fn cut(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut taken = Vec::new();
        let mut rows = 0;
        while rows < self.rows {
            let batch = self.gathered.remove(0);
            let wanted = self.rows - rows;
            if batch.num_rows() > wanted {
                taken.push(batch.slice(0, wanted));
                self.gathered
                    .insert(0, batch.slice(wanted, batch.num_rows() - wanted));
                rows += wanted;
            } else {
                rows += batch.num_rows();
                taken.push(batch);
            }
        }
        self.gathered_rows -= rows;
        self.gathered_bytes = self.gathered.iter().map(slice_bytes).sum();
        one_batch(taken)
    }
}

/// The bytes of Arrow data `batch`'s rows take. Not its buffers' capacity: the batches of one
/// IPC message or result chunk are often slices of one allocation, which each would report
/// whole.
fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

fn one_batch(mut batches: Vec<RecordBatch>) -> Result<RecordBatch, ArrowError> {
    if batches.len() == 1 {
        return Ok(batches.remove(0));
    }
    let schema = batches[0].schema();
    concat_batches(&schema, &batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(from: i64, rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let n: Vec<i64> = (from..from + rows as i64).collect();
        let s: Vec<Option<String>> = n
            .iter()
            .map(|v| (v % 3 != 0).then(|| format!("v{v}")))
            .collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(n)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .unwrap()
    }

    /// Pushes batches of `sizes` rows (numbered on), returns the row counts handed on and
    /// checks every row came out once, in order, with its text.
    fn run(regroup: &mut Regroup, sizes: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut next = 0i64;
        for &size in sizes {
            out.extend(regroup.push(batch(next, size)).unwrap());
            next += size as i64;
        }
        out.extend(regroup.finish().unwrap());
        let mut expected = 0i64;
        for b in &out {
            let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                assert_eq!(n.value(i), expected);
                assert_eq!(s.is_null(i), expected % 3 == 0);
                if !s.is_null(i) {
                    assert_eq!(s.value(i), format!("v{expected}"));
                }
                expected += 1;
            }
        }
        assert_eq!(expected, next, "every row handed on once");
        out.iter().map(RecordBatch::num_rows).collect()
    }

    #[test]
    fn small_batches_become_whole_groups_and_a_last_rest() {
        let mut r = Regroup::new(100, usize::MAX);
        assert_eq!(run(&mut r, &[64, 64, 64, 64, 7]), vec![100, 100, 63]);
    }

    #[test]
    fn large_batches_are_cut_into_groups() {
        let mut r = Regroup::new(100, usize::MAX);
        assert_eq!(run(&mut r, &[250, 30, 120]), vec![100, 100, 100, 100]);
    }

    #[test]
    fn a_batch_of_exactly_one_group_is_handed_on_without_a_copy() {
        let mut r = Regroup::new(100, usize::MAX);
        let b = batch(0, 100);
        let out = r.push(b.clone()).unwrap();
        assert_eq!(out.len(), 1);
        assert!(Arc::ptr_eq(out[0].column(0), b.column(0)));
        assert!(r.finish().unwrap().is_none());
    }

    #[test]
    fn empty_batches_and_an_empty_table_hand_on_nothing() {
        let mut r = Regroup::new(100, usize::MAX);
        assert!(r.push(batch(0, 0)).unwrap().is_empty());
        assert!(r.finish().unwrap().is_none());
        assert_eq!(run(&mut r, &[0, 5, 0]), vec![5]);
    }

    #[test]
    fn slices_of_one_allocation_count_only_their_rows() {
        // 1 000 rows as ten 100-row slices of one batch: each reports the whole allocation as
        // its memory, but the ten together gather as the bytes of 1 000 rows.
        let whole = batch(0, 1000);
        let bytes = slice_bytes(&whole);
        let mut r = Regroup::new(1000, bytes + 1);
        let mut out = Vec::new();
        for i in 0..10 {
            out.extend(r.push(whole.slice(i * 100, 100)).unwrap());
        }
        assert!(whole.slice(0, 100).get_array_memory_size() >= bytes);
        assert_eq!(
            out.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            vec![1000]
        );
    }

    #[test]
    fn rows_too_wide_to_gather_go_on_as_they_came() {
        // A 40-row batch is a few KiB: a 1-byte limit hands each on at once, uncut.
        let mut r = Regroup::new(100, 1);
        assert_eq!(run(&mut r, &[40, 40, 150, 10]), vec![40, 40, 100, 50, 10]);
    }
}
