//! Progress of a long table copy, logged at an interval and once at the end.

use std::time::{Duration, Instant};

use tracing::info;

/// Counts rows and bytes of one table and logs them every `interval`.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    last_log: Instant,
    interval: Duration,
    rows: u64,
    bytes: u64,
}

impl Progress {
    /// Starts counting now.
    pub fn new(interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last_log: now,
            interval,
            rows: 0,
            bytes: 0,
        }
    }

    /// Adds one batch; logs when the interval has passed.
    pub fn add(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        if self.last_log.elapsed() >= self.interval {
            self.last_log = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            info!(
                rows = self.rows,
                bytes = self.bytes,
                elapsed_s = elapsed,
                rows_per_s = (self.rows as f64 / elapsed.max(1e-9)) as u64,
                "copying table"
            );
        }
    }

    /// Logs the final figures as the sink reports them.
    pub fn finish(&self, rows: u64, bytes: u64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        info!(
            rows,
            bytes,
            elapsed_s = elapsed,
            rows_per_s = (rows as f64 / elapsed.max(1e-9)) as u64,
            "table copied"
        );
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}
