//! Planning a submitted statement — metadata only, plus the rows of an INLINE result — with
//! one function per statement kind: a `SELECT`, the data files query, `DESCRIBE HISTORY`.
//! Every kind gets its table from [`resolve`], which refuses the statement when the table's
//! governance forbids the way that kind pins its read (docs/DATABRICKS-WIRE.md §6.5).

use std::collections::HashSet;
use std::sync::Arc;

use super::request::ExecuteRequest;
use crate::catalog::{LookupError, Table, data_file};
use crate::governance::Pinning;
use crate::result::{InlineRows, Limits, ResultSet};
use crate::sql::{self, Select, SyntaxError};
use crate::state::AppState;
use crate::statements::{Disposition, Outcome};
use crate::types::{backtick, quote_if_needed};

/// An INLINE result larger than this fails, as on Databricks.
const INLINE_LIMIT: usize = 25 * 1024 * 1024;

/// What a statement reads.
struct Read {
    /// The table itself, a version of it, or a table derived from it (history, data files).
    table: Arc<Table>,
    /// The selected columns; `None` for all.
    columns: Option<Vec<String>>,
    /// The statement's own row limit (`DESCRIBE HISTORY … LIMIT n`).
    rows: Option<u64>,
    /// The row groups of the data files a `WHERE _metadata.file_path IN (…)` names.
    row_groups: Option<Vec<usize>>,
}

/// Runs the statement's planning (metadata only, plus the rows of an INLINE result).
pub(super) fn plan_statement(
    state: &AppState,
    request: &ExecuteRequest,
    statement: &str,
    disposition: Disposition,
) -> Outcome {
    plan(state, request, statement, disposition).unwrap_or_else(|failed| failed)
}

/// The statement's outcome; `Err` holds a `FAILED` one.
fn plan(
    state: &AppState,
    request: &ExecuteRequest,
    statement: &str,
    disposition: Disposition,
) -> Result<Outcome, Outcome> {
    let read = match sql::parse_statement(statement).map_err(syntax_error)? {
        sql::Statement::Select(select) => plan_select(state, request, select)?,
        sql::Statement::Files { table, version } => {
            plan_data_files(state, request, &table, version)?
        }
        sql::Statement::History { table, limit } => plan_history(state, request, &table, limit)?,
    };
    let result = result_set(state, request, read)?;
    let inline = if disposition == Disposition::Inline {
        Some(inline_rows(&result)?)
    } else {
        None
    };
    Ok(Outcome::Succeeded { result, inline })
}

/// `SELECT <columns | *> FROM <table> [VERSION AS OF n] [WHERE _metadata.file_path IN (…)]`.
fn plan_select(
    state: &AppState,
    request: &ExecuteRequest,
    select: Select,
) -> Result<Read, Outcome> {
    // An unbound parameter fails the statement before its table is looked up.
    let files = select
        .files
        .map(|names| bound_values(request, &names))
        .transpose()?;
    let pinning = if select.version.is_some() {
        Some(Pinning::TimeTravel)
    } else if files.is_some() {
        Some(Pinning::FileMetadata)
    } else {
        None
    };
    let found = resolve(state, request, &select.table, pinning)?;
    let (table, version) = found.at(state, select.version)?;
    let row_groups = files.map(|paths| {
        let paths: HashSet<String> = paths.into_iter().collect();
        (0..table.reader.metadata().num_row_groups())
            .filter(|&g| paths.contains(&data_file(&table, version, g)))
            .collect()
    });
    Ok(Read {
        table,
        columns: select.columns,
        rows: None,
        row_groups,
    })
}

/// The data files query: each data file of the table (at `VERSION AS OF n`) with its rows.
fn plan_data_files(
    state: &AppState,
    request: &ExecuteRequest,
    parts: &[String],
    version: Option<u64>,
) -> Result<Read, Outcome> {
    let pinning = if version.is_some() {
        Pinning::TimeTravel
    } else {
        Pinning::FileMetadata
    };
    let found = resolve(state, request, parts, Some(pinning))?;
    let (at, at_version) = found.at(state, version)?;
    let table = state
        .catalog
        .files(&found.current, &at, at_version)
        .map_err(|e| found.lookup_failed(e))?;
    Ok(Read {
        table,
        columns: None,
        rows: None,
        row_groups: None,
    })
}

/// `DESCRIBE HISTORY <table> [LIMIT n]`: the table's versions, newest first.
fn plan_history(
    state: &AppState,
    request: &ExecuteRequest,
    parts: &[String],
    limit: Option<u64>,
) -> Result<Read, Outcome> {
    let found = resolve(state, request, parts, Some(Pinning::History))?;
    let table = state
        .catalog
        .history(&found.current)
        .map_err(|e| found.lookup_failed(e))?;
    Ok(Read {
        table,
        columns: None,
        rows: limit,
        row_groups: None,
    })
}

/// The table a statement names, found and admitted by its governance.
struct Found {
    /// The table at its current version.
    current: Arc<Table>,
    /// The name as the statement wrote it, back-quoted, for messages.
    quoted: String,
}

/// Finds the table `parts` names (the request's `catalog` and `schema` filling in what it
/// leaves out) and refuses the statement when the table's governance refuses `pinning`: the one
/// way each kind of statement gets its table.
fn resolve(
    state: &AppState,
    request: &ExecuteRequest,
    parts: &[String],
    pinning: Option<Pinning>,
) -> Result<Found, Outcome> {
    let quoted = parts
        .iter()
        .map(|p| backtick(p))
        .collect::<Vec<_>>()
        .join(".");
    let Some([catalog, schema, table]) = full_name(request, parts) else {
        return Err(not_found(&quoted));
    };
    let current = match state.catalog.table(&catalog, &schema, &table) {
        Ok(table) => table,
        Err(e) => return Err(lookup_failed(e, &quoted)),
    };
    if let Some(refusal) = current
        .governance
        .as_ref()
        .zip(pinning)
        .and_then(|(g, pinning)| g.refuses(pinning, &quoted))
    {
        return Err(failed(
            "BAD_REQUEST",
            refusal.message,
            Some(refusal.sql_state),
        ));
    }
    Ok(Found { current, quoted })
}

/// `parts` as a three-part name: a one-part name takes the request's `schema`, then a two-part
/// one its `catalog`; `None` when parts are still missing.
fn full_name(request: &ExecuteRequest, parts: &[String]) -> Option<[String; 3]> {
    let mut name = parts.to_vec();
    if name.len() < 3
        && let Some(schema) = request.schema.as_ref().filter(|_| name.len() == 1)
    {
        name.insert(0, schema.clone());
    }
    if name.len() == 2
        && let Some(catalog) = &request.catalog
    {
        name.insert(0, catalog.clone());
    }
    <[String; 3]>::try_from(name).ok()
}

impl Found {
    /// The table as it was at `version` (the current one when `None`), and that version.
    fn at(&self, state: &AppState, version: Option<u64>) -> Result<(Arc<Table>, u64), Outcome> {
        let Some(version) = version else {
            return Ok((self.current.clone(), self.current.version()));
        };
        match state.catalog.table_at(&self.current, version) {
            Ok(Some(at)) => Ok((at, version)),
            Ok(None) => Err(failed(
                "BAD_REQUEST",
                format!(
                    "[DELTA_VERSION_NOT_FOUND] Cannot time travel Delta table to version \
                     {version}. Available versions: [0, {}]. SQLSTATE: 22003",
                    self.current.version()
                ),
                Some("22003"),
            )),
            Err(e) => Err(self.lookup_failed(e)),
        }
    }

    fn lookup_failed(&self, error: LookupError) -> Outcome {
        lookup_failed(error, &self.quoted)
    }
}

/// The result set a read gives under the request's `row_limit` and `byte_limit` and the
/// emulator's own byte cap.
fn result_set(
    state: &AppState,
    request: &ExecuteRequest,
    read: Read,
) -> Result<Arc<ResultSet>, Outcome> {
    let row_limit = request.row_limit.and_then(|n| u64::try_from(n).ok());
    let row_limit = match (row_limit, read.rows) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let byte_limit = request.byte_limit.and_then(|n| u64::try_from(n).ok());
    let limits = Limits {
        rows: row_limit,
        bytes: Some(byte_limit.map_or(state.config.result_byte_limit, |b| {
            b.min(state.config.result_byte_limit)
        })),
        row_groups: read.row_groups,
    };
    match ResultSet::plan(
        read.table,
        read.columns.as_deref(),
        limits,
        state.config.chunk_rows,
        state.config.complex_as_json_text,
    ) {
        Ok(result) => Ok(Arc::new(result)),
        Err(e) => {
            let available: Vec<String> = e.available.iter().map(|c| backtick(c)).collect();
            Err(failed(
                "BAD_REQUEST",
                format!(
                    "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter \
                     with name {} cannot be resolved. Did you mean one of the following? [{}]. \
                     SQLSTATE: 42703",
                    quote_if_needed(&e.name),
                    available.join(", ")
                ),
                Some("42703"),
            ))
        }
    }
}

/// The rows of an INLINE result, which fails past [`INLINE_LIMIT`].
fn inline_rows(result: &ResultSet) -> Result<Arc<InlineRows>, Outcome> {
    match result.render_inline(INLINE_LIMIT) {
        Ok(Some(rows)) => Ok(Arc::new(rows)),
        Ok(None) => Err(failed(
            "BAD_REQUEST",
            "The result exceeds the 25 MiB limit of the INLINE disposition; use \
             disposition EXTERNAL_LINKS."
                .into(),
            None,
        )),
        Err(e) => {
            tracing::error!(error = %e, "reading inline result failed");
            Err(failed(
                "INTERNAL_ERROR",
                "Reading the result failed.".into(),
                None,
            ))
        }
    }
}

/// The values of the parameters `names` as the request binds them, as `STRING`s; an unbound
/// name fails the statement as Databricks does.
fn bound_values(request: &ExecuteRequest, names: &[String]) -> Result<Vec<String>, Outcome> {
    let bound = request.parameters.as_deref().unwrap_or_default();
    names
        .iter()
        .map(|name| {
            let parameter = bound.iter().find(|p| p.name == *name).ok_or_else(|| {
                failed(
                    "BAD_REQUEST",
                    format!(
                        "[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {name}. Please, fix \
                         `args` and provide a mapping of the parameter to either a SQL literal \
                         or collection constructor functions such as `map()`, `array()`, \
                         `struct()`. SQLSTATE: 42P02"
                    ),
                    Some("42P02"),
                )
            })?;
            match parameter.ty.as_deref() {
                None | Some("STRING") => Ok(parameter.value.clone().unwrap_or_default()),
                Some(other) => Err(failed(
                    "BAD_REQUEST",
                    format!("The emulator binds only STRING parameters; `{name}` is {other}."),
                    None,
                )),
            }
        })
        .collect()
}

fn syntax_error(e: SyntaxError) -> Outcome {
    failed(
        "BAD_REQUEST",
        format!(
            "[PARSE_SYNTAX_ERROR] Syntax error at or near '{}'. The emulator answers only \
             SELECT <columns | *> FROM <catalog>.<schema>.<table> [VERSION AS OF <n>] \
             [WHERE _metadata.file_path IN (:p, …)], the data files query and \
             DESCRIBE HISTORY <table> [LIMIT <n>]. SQLSTATE: 42601 (line 1, pos {})",
            e.near, e.pos
        ),
        Some("42601"),
    )
}

/// A table that cannot be read is an internal error; any other lookup failure, not found.
fn lookup_failed(error: LookupError, quoted: &str) -> Outcome {
    match error {
        LookupError::Unreadable(detail) => {
            tracing::error!(%detail, "table files unreadable");
            failed(
                "INTERNAL_ERROR",
                "The table's files could not be read.".into(),
                None,
            )
        }
        _ => not_found(quoted),
    }
}

fn not_found(quoted: &str) -> Outcome {
    failed(
        "BAD_REQUEST",
        format!(
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view {quoted} cannot be found. Verify the \
             spelling and correctness of the schema and catalog. SQLSTATE: 42P01"
        ),
        Some("42P01"),
    )
}

pub(super) fn failed(error_code: &str, message: String, sql_state: Option<&str>) -> Outcome {
    Outcome::Failed {
        error_code: error_code.to_owned(),
        message,
        sql_state: sql_state.map(str::to_owned),
    }
}
