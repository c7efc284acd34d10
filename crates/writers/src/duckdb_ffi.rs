//! The few DuckDB C API calls the duckdb crate does not wrap, behind a safe interface.
//!
//! The duckdb crate can append Arrow batches only through its appender, which converts every
//! batch in Rust, value by value for strings, decimals and booleans, on one thread. DuckDB's own
//! Arrow scan (`duckdb_arrow_scan`) reads Arrow buffers directly and in parallel on DuckDB's
//! threads, so a table is loaded by one `INSERT … SELECT` over a stream of batches. Using it
//! needs the raw database and connection handles, which the duckdb crate keeps private; this
//! module opens the database itself and lends it to the duckdb crate
//! ([`Database::connection`]) for everything else.
//!
//! This is the only module of the workspace with `unsafe` code. The invariants it keeps:
//!
//! * a [`Database`] outlives every connection made from it (each holds an `Arc` of it, and
//!   [`DuckDbWriter`](crate::database) drops its duckdb-crate connection first);
//! * a registered Arrow stream outlives every query that reads it: DuckDB never releases a
//!   stream given to `duckdb_arrow_scan` (the caller keeps ownership), so
//!   [`Connection::insert_stream`] registers the stream, runs the one `INSERT`, drops the view
//!   and only then releases the stream — and leaks the stream if the view cannot be dropped.
//!
//! Known cost: DuckDB sets the release callback of the root schema it asks a stream for to
//! NULL, so each scan leaks one Arrow schema (a few hundred bytes per table).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatchReader;
use duckdb::ffi;

/// An open DuckDB database; closed when the last [`Connection`] and the owner are gone.
pub(crate) struct Database {
    raw: ffi::duckdb_database,
}

// SAFETY: a DuckDB database instance is thread-safe; the handle is only read after open and
// closed once, in `drop`.
unsafe impl Send for Database {}
// SAFETY: as above; every method takes `&self` and DuckDB synchronises internally.
unsafe impl Sync for Database {}

impl Database {
    /// Opens `path`, or an in-memory database when `None`, with the given settings (applied
    /// before anything else runs, so e.g. extension autoloading is off from the start).
    pub(crate) fn open(path: Option<&Path>, settings: &[(&str, String)]) -> Result<Self, String> {
        let mut config: ffi::duckdb_config = ptr::null_mut();
        // SAFETY: `config` is a valid out-pointer.
        if unsafe { ffi::duckdb_create_config(&mut config) } != ffi::DuckDBSuccess {
            return Err("cannot create a DuckDB configuration".into());
        }
        let config = Config(config);
        for (name, value) in settings {
            let c_name = c_string(name)?;
            let c_value = c_string(value)?;
            // SAFETY: `config.0` is a live configuration; both strings are NUL-terminated and
            // live across the call (DuckDB copies them).
            let state =
                unsafe { ffi::duckdb_set_config(config.0, c_name.as_ptr(), c_value.as_ptr()) };
            if state != ffi::DuckDBSuccess {
                return Err(format!("DuckDB rejected the setting {name} = {value}"));
            }
        }
        let c_path = match path {
            Some(path) => Some(c_string(&path.to_string_lossy())?),
            None => None,
        };
        let mut raw: ffi::duckdb_database = ptr::null_mut();
        let mut error: *mut c_char = ptr::null_mut();
        // SAFETY: the path is NUL-terminated or NULL (in-memory); `raw` and `error` are valid
        // out-pointers; `config` is live.
        let state = unsafe {
            ffi::duckdb_open_ext(
                c_path.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
                &mut raw,
                config.0,
                &mut error,
            )
        };
        if state != ffi::DuckDBSuccess {
            // SAFETY: on failure DuckDB sets `error` to a string we must free, or leaves NULL.
            let message = unsafe { take_error(error) };
            return Err(message.unwrap_or_else(|| "DuckDB could not open the database".into()));
        }
        Ok(Self { raw })
    }

    /// A duckdb-crate connection to this database, for ordinary SQL.
    ///
    /// The connection must be dropped before `self`: the duckdb crate does not keep the
    /// database alive.
    pub(crate) fn connection(&self) -> Result<duckdb::Connection, duckdb::Error> {
        // SAFETY: `self.raw` is an open database; the caller keeps `self` alive longer than
        // the connection (documented above, kept by `DuckDbWriter`'s field order).
        unsafe { duckdb::Connection::open_from_raw(self.raw) }
    }

    /// A raw connection, for [`Connection::insert_stream`]; it keeps the database open.
    pub(crate) fn raw_connection(self: &Arc<Self>) -> Result<Connection, String> {
        let mut raw: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `self.raw` is an open database; `raw` is a valid out-pointer.
        if unsafe { ffi::duckdb_connect(self.raw, &mut raw) } != ffi::DuckDBSuccess {
            return Err("cannot connect to the DuckDB database".into());
        }
        Ok(Connection {
            raw,
            _database: Arc::clone(self),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: `self.raw` was opened by `duckdb_open_ext` and is closed only here.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// A raw connection; used from one thread at a time.
pub(crate) struct Connection {
    raw: ffi::duckdb_connection,
    _database: Arc<Database>,
}

// SAFETY: a DuckDB connection may move between threads; it is `!Sync` (no `&self` method may
// run concurrently), which `Connection` keeps by having no `Sync` impl.
unsafe impl Send for Connection {}

impl Connection {
    /// Runs `sql` (one or more statements), discarding any result.
    pub(crate) fn execute(&self, sql: &str) -> Result<(), String> {
        let c_sql = c_string(sql)?;
        // SAFETY: an all-zero `duckdb_result` is the documented "empty" value.
        let mut result: ffi::duckdb_result = unsafe { std::mem::zeroed() };
        // SAFETY: `self.raw` is a live connection used by this thread only (`&self` on a
        // `!Sync` type); the SQL is NUL-terminated; `result` is a valid out-pointer.
        let state = unsafe { ffi::duckdb_query(self.raw, c_sql.as_ptr(), &mut result) };
        let outcome = if state == ffi::DuckDBSuccess {
            Ok(())
        } else {
            // SAFETY: `result` was filled by `duckdb_query`; the message lives until
            // `duckdb_destroy_result` below and is copied before.
            let message = unsafe { ffi::duckdb_result_error(&mut result) };
            Err(if message.is_null() {
                "DuckDB reported an error without a message".to_owned()
            } else {
                // SAFETY: non-NULL, NUL-terminated, alive until the result is destroyed.
                unsafe { CStr::from_ptr(message) }
                    .to_string_lossy()
                    .into_owned()
            })
        };
        // SAFETY: `duckdb_query` always requires the result to be destroyed, success or not.
        unsafe { ffi::duckdb_destroy_result(&mut result) };
        outcome
    }

    /// Runs `insert`, an SQL statement that reads the view `view`, with `view` bound to the
    /// batches of `reader`, which DuckDB's Arrow scan reads on its own threads.
    ///
    /// `view` is created in the connection's default schema and dropped again before this
    /// returns; its name must be a plain SQL identifier not used otherwise.
    pub(crate) fn insert_stream(
        &self,
        view: &str,
        insert: &str,
        reader: Box<dyn RecordBatchReader + Send>,
    ) -> Result<(), String> {
        let c_view = c_string(view)?;
        // Boxed so that its address, which DuckDB keeps, does not change.
        let mut stream = Box::new(FFI_ArrowArrayStream::new(reader));
        let stream_ptr: *mut FFI_ArrowArrayStream = &mut *stream;
        // SAFETY: `self.raw` is live and used by this thread only; the name is NUL-terminated;
        // `stream_ptr` points to a valid `ArrowArrayStream` (same layout, checked by
        // libduckdb-sys) that stays alive until after the view is dropped below.
        let state = unsafe { ffi::duckdb_arrow_scan(self.raw, c_view.as_ptr(), stream_ptr.cast()) };
        if state != ffi::DuckDBSuccess {
            // Whether DuckDB kept a reference is unknown; never free what it may still read.
            std::mem::forget(stream);
            return Err("DuckDB could not register the Arrow stream".into());
        }
        let outcome = self.execute(insert);
        match self.execute(&format!("DROP VIEW IF EXISTS {view}")) {
            Ok(()) => drop(stream),
            Err(e) => {
                // The view still points at the stream: leak it rather than leave a dangling
                // pointer behind a name.
                std::mem::forget(stream);
                tracing::warn!(error = %e, "could not drop the Arrow scan view; its stream is leaked");
            }
        }
        outcome
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: `self.raw` was made by `duckdb_connect` and is disconnected only here.
        unsafe { ffi::duckdb_disconnect(&mut self.raw) };
    }
}

/// A configuration, destroyed on drop (after `duckdb_open_ext` has copied it).
struct Config(ffi::duckdb_config);

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: made by `duckdb_create_config`, destroyed only here.
        unsafe { ffi::duckdb_destroy_config(&mut self.0) };
    }
}

fn c_string(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("text with a NUL byte cannot go to DuckDB: {text:?}"))
}

/// Copies and frees an error string DuckDB allocated.
///
/// # Safety
/// `error` is NULL or a NUL-terminated string allocated by DuckDB and not yet freed.
unsafe fn take_error(error: *mut c_char) -> Option<String> {
    if error.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: per the contract above; freed once.
    unsafe { ffi::duckdb_free(error.cast()) };
    Some(message)
}
