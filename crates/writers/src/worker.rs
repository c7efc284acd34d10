//! The writer thread every sink runs on, and the async [`Sink`] front that feeds it.
//!
//! The front checks batch schemas, counts rows and bytes, and sends commands through a bounded
//! channel; the thread converts each batch ([`OutputPlan::apply`]) and hands it
//! to the format's [`FormatWriter`]. A failure on the thread ends it: it reports the error on a
//! one-shot channel and drops its receiver, so the front's next send fails and fetches that
//! error.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use publish_columns::OutputPlan;
use publish_sink::{Sink, SinkError, SinkProtocol, TableSink, TableStats, WrittenFile};
use publish_types::{OutputFormat, TableSchema};
use tokio::sync::{mpsc, oneshot};

/// One output format, driven from the writer thread.
pub(crate) trait FormatWriter: Send + 'static {
    /// The format written, which decides the conversions it needs.
    const FORMAT: OutputFormat;

    /// Creates the table (or its file) and returns where its batches go.
    fn begin_table(&mut self, plan: &OutputPlan) -> Result<Box<dyn TableWriter + '_>, SinkError>;

    /// Closes everything; returns the files written, relative to the root, sorted.
    fn finish(self) -> Result<Vec<WrittenFile>, SinkError>;
}

/// One table being written.
pub(crate) trait TableWriter {
    /// Writes one batch, already in the table's output schema.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError>;

    /// Completes the table: everything written and flushed.
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

enum Command {
    Begin {
        plan: Arc<OutputPlan>,
        reply: oneshot::Sender<Result<(), SinkError>>,
    },
    Batch(RecordBatch),
    FinishTable {
        reply: oneshot::Sender<Result<(), SinkError>>,
    },
    Finish {
        reply: oneshot::Sender<Result<Vec<WrittenFile>, SinkError>>,
    },
}

/// Starts the writer thread, waits until `open` has run on it, and returns the front.
pub(crate) fn spawn<W, F>(
    format: &'static str,
    depth: usize,
    open: F,
) -> Result<Box<dyn Sink>, SinkError>
where
    W: FormatWriter,
    F: FnOnce() -> Result<W, SinkError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(depth);
    let (exit_tx, exit_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let running = Running::start();
    std::thread::Builder::new()
        .name(format!("publish-sink-{format}"))
        .spawn(move || {
            let _running = running;
            run(open, rx, exit_tx, ready_tx);
        })
        .map_err(|e| SinkError::Internal {
            message: format!("cannot start the {format} writer thread: {e}"),
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(SinkError::Internal {
                message: format!("the {format} writer thread ended while opening"),
            });
        }
    }
    Ok(Box::new(ThreadedSink {
        format: W::FORMAT,
        tx,
        exit: Some(exit_rx),
        protocol: SinkProtocol::default(),
    }))
}

/// Writer threads still running (also those of dropped sinks, which close their files on
/// their own).
static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one writer thread for as long as it lives (also when its thread cannot start).
struct Running;

impl Running {
    fn start() -> Self {
        RUNNING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits up to `timeout` for every writer thread to end — those of dropped sinks still close
/// their files and detach their databases — and says whether they all did. A process that
/// exits while one is inside DuckDB would tear DuckDB down under it; the server calls this
/// before it exits.
pub fn wait_for_writers(timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while RUNNING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

fn run<W, F>(
    open: F,
    mut rx: mpsc::Receiver<Command>,
    exit: oneshot::Sender<SinkError>,
    ready: std::sync::mpsc::SyncSender<Result<(), SinkError>>,
) where
    W: FormatWriter,
    F: FnOnce() -> Result<W, SinkError>,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let writer = match open() {
            Ok(writer) => writer,
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        let _ = ready.send(Ok(()));
        serve(writer, &mut rx)
    }));
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            SinkError::Internal {
                message: format!("the writer thread panicked: {message}"),
            }
        }
    };
    tracing::debug!(error = %error, "sink writer thread stopped");
    let _ = exit.send(error);
    // `rx` drops here, after the error is available, so a front blocked on a full queue wakes
    // up and finds it.
    drop(rx);
}

/// Serves commands until `finish`, an error, or the front going away. Errors already sent as a
/// reply are not returned again.
fn serve<W: FormatWriter>(
    mut writer: W,
    rx: &mut mpsc::Receiver<Command>,
) -> Result<(), SinkError> {
    loop {
        match rx.blocking_recv() {
            None => return Ok(()),
            Some(Command::Begin { plan, reply }) => {
                let table = match writer.begin_table(&plan) {
                    Ok(table) => table,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                if reply.send(Ok(())).is_err() {
                    return Ok(());
                }
                if !write_table(table, &plan, rx)? {
                    return Ok(());
                }
            }
            Some(Command::Finish { reply }) => {
                let _ = reply.send(writer.finish());
                return Ok(());
            }
            Some(Command::Batch(_) | Command::FinishTable { .. }) => {
                return Err(SinkError::Internal {
                    message: "writer thread received a batch outside a table".into(),
                });
            }
        }
    }
}

/// Writes batches until `finish_table`; returns whether to go on serving.
fn write_table(
    mut table: Box<dyn TableWriter + '_>,
    plan: &OutputPlan,
    rx: &mut mpsc::Receiver<Command>,
) -> Result<bool, SinkError> {
    let started = std::time::Instant::now();
    let mut rows = 0_u64;
    loop {
        match rx.blocking_recv() {
            None => return Ok(false),
            Some(Command::Batch(batch)) => {
                let batch = plan
                    .apply(&batch)
                    .map_err(|e| SinkError::plan(plan.table(), e))?;
                rows += batch.num_rows() as u64;
                table.write(&batch)?;
            }
            Some(Command::FinishTable { reply }) => {
                let result = table.finish();
                let ok = result.is_ok();
                tracing::debug!(
                    table = %plan.table().table,
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    ok,
                    "table written"
                );
                let _ = reply.send(result);
                return Ok(ok);
            }
            Some(Command::Begin { .. } | Command::Finish { .. }) => {
                return Err(SinkError::Internal {
                    message: "writer thread received a new table while one was open".into(),
                });
            }
        }
    }
}

struct ThreadedSink {
    format: OutputFormat,
    tx: mpsc::Sender<Command>,
    exit: Option<oneshot::Receiver<SinkError>>,
    /// Failed while a table is open (and so while its calls are in flight), and left failed by
    /// an error or an abandoned table, so that a cancelled call leaves the sink unusable, never
    /// inconsistent.
    protocol: SinkProtocol,
}

impl ThreadedSink {
    async fn send(&mut self, command: Command) -> Result<(), SinkError> {
        if self.tx.send(command).await.is_err() {
            return Err(self.thread_error().await);
        }
        Ok(())
    }

    async fn call<T>(
        &mut self,
        command: impl FnOnce(oneshot::Sender<Result<T, SinkError>>) -> Command,
    ) -> Result<T, SinkError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.thread_error().await),
        }
    }

    /// The error that ended the writer thread (reported once; later [`SinkError::Failed`]).
    async fn thread_error(&mut self) -> SinkError {
        match self.exit.take() {
            Some(exit) => exit.await.unwrap_or_else(|_| SinkError::Internal {
                message: "the writer thread ended without saying why".into(),
            }),
            None => SinkError::Failed,
        }
    }
}

#[async_trait]
impl Sink for ThreadedSink {
    async fn begin_table<'s>(
        &'s mut self,
        table: &TableSchema,
        arrow: SchemaRef,
    ) -> Result<Box<dyn TableSink + 's>, SinkError> {
        let plan = Arc::new(self.protocol.begin_file_table(table, arrow, self.format)?);
        let sent = Arc::clone(&plan);
        self.call(|reply| Command::Begin { plan: sent, reply })
            .await?;
        Ok(Box::new(ThreadedTable {
            sink: self,
            plan,
            stats: TableStats::default(),
        }))
    }

    async fn finish(mut self: Box<Self>) -> Result<Vec<WrittenFile>, SinkError> {
        self.protocol.finish()?;
        self.call(|reply| Command::Finish { reply }).await
    }
}

/// A table of a [`ThreadedSink`]; the sink stays failed unless the table is finished.
struct ThreadedTable<'s> {
    sink: &'s mut ThreadedSink,
    plan: Arc<OutputPlan>,
    stats: TableStats,
}

#[async_trait]
impl TableSink for ThreadedTable<'_> {
    async fn write_batch(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        self.plan
            .check(&batch)
            .map_err(|e| SinkError::plan(self.plan.table(), e))?;
        self.stats.add(&batch);
        self.sink.send(Command::Batch(batch)).await
    }

    async fn finish(self: Box<Self>) -> Result<TableStats, SinkError> {
        let this = *self;
        this.sink
            .call(|reply| Command::FinishTable { reply })
            .await?;
        this.sink.protocol.table_finished();
        Ok(this.stats)
    }
}
