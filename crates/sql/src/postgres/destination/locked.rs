//! A locked project run: the writer's connection holding the run's advisory lock, the load
//! under way, and the one transaction that commits it (see the module documentation).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use publish_sink::{DatasetLoad, LoadedTable, LockedProject, Sink, SinkError};
use tokio::sync::Mutex;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::sink::PgSink;
use super::{BOOKKEEPING_SCHEMA, LOCK_GRACE, Run, Shared, literal, quote};

/// A fixed key for the transaction-level lock that serialises creating the bookkeeping
/// schema, so that two first runs do not both try to create it.
const BOOTSTRAP_KEY: i64 = 0x7075_626c_6973_6801;

/// The load under way.
pub(super) struct Pending {
    pub(super) dataset: DatasetLoad,
    /// The schema its tables will be visible in.
    pub(super) target: String,
    /// The private schema they are loaded into.
    pub(super) load_schema: String,
    /// The tables finished so far, with their rows.
    pub(super) tables: Vec<(String, u64)>,
    /// Set when the sink finished; only then can the load be committed.
    pub(super) finished: bool,
}

/// The [`LockedProject`] of the PostgreSQL destination.
pub(super) struct PgLocked {
    pub(super) shared: Arc<Shared>,
    /// Shared with the background tasks that discard a dropped load: they hold the connection,
    /// and so the lock, until they are done. The mutex keeps their statements out of a commit.
    pub(super) client: Arc<Mutex<Client>>,
    run: Run,
    pub(super) pending: Option<Pending>,
}

impl PgLocked {
    /// Connects, takes the run's lock (or `Busy`), creates the bookkeeping if missing and
    /// drops what interrupted loads of the run left.
    pub(super) async fn open(shared: Arc<Shared>, run: Run) -> Result<Self, SinkError> {
        let (client, _task) = shared.connect().await?;
        let operation = format!(
            "locking project {} ({}) in {}",
            run.project, run.start, shared.host
        );
        client
            .batch_execute(&format!("SET lock_timeout = {}", LOCK_GRACE.as_millis()))
            .await
            .map_err(|e| shared.error(&operation, &e))?;
        let taken = client
            .execute("SELECT pg_catalog.pg_advisory_lock($1)", &[&run.key])
            .await;
        match taken {
            Ok(_) => {}
            // lock_not_available: another session holds it.
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "55P03") => {
                return Err(SinkError::Busy {
                    project: run.project,
                    start: run.start,
                });
            }
            Err(e) => return Err(shared.error(&operation, &e)),
        }
        shared
            .timed(&operation, client.batch_execute("RESET lock_timeout"))
            .await?;
        bootstrap(&shared, &client).await?;
        remove_leftovers(&shared, &client, &run).await?;
        info!(project = %run.project, start = %run.start, "destination database locked");
        Ok(Self {
            shared,
            client: Arc::new(Mutex::new(client)),
            run,
            pending: None,
        })
    }

    /// Discards the load under way, if any: its schema dropped in the background.
    pub(super) fn discard(&mut self) {
        if let Some(pending) = self.pending.take() {
            drop_in_background(
                Arc::clone(&self.client),
                pending.load_schema,
                self.shared.options.query_timeout,
            );
        }
    }

    /// The other datasets' claims on the tables of `dataset` (case-insensitively, as the
    /// service compares table names), in the schema it loads into: the first is an error.
    async fn check_claims(
        &self,
        client: &Client,
        dataset: &DatasetLoad,
        target: &str,
    ) -> Result<(), SinkError> {
        let rows = self
            .shared
            .timed(
                "reading which datasets loaded which tables",
                client.query(
                    &format!(
                        "SELECT project, start_time, dataset, table_name \
                         FROM {BOOKKEEPING_SCHEMA}.loaded_tables \
                         WHERE lower(schema_name) = lower($1::text)"
                    ),
                    &[&target],
                ),
            )
            .await?;
        for row in rows {
            let (project, start, owner, table): (String, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let same_run = project == self.run.project && start == self.run.start;
            if same_run && owner == dataset.id {
                continue;
            }
            if let Some(wanted) = dataset
                .tables
                .iter()
                .find(|t| t.table.as_str().to_lowercase() == table.to_lowercase())
            {
                return Err(SinkError::TableClaimed {
                    table: format!("{}.{}", wanted.schema, wanted.table),
                    dataset: dataset.id.clone(),
                    claimed_by: if same_run {
                        owner
                    } else {
                        format!("{owner} of project {project} ({start})")
                    },
                });
            }
        }
        Ok(())
    }

    /// The commit's statements, inside the transaction `client` has begun.
    async fn commit_in(
        &self,
        client: &Client,
        pending: &Pending,
    ) -> Result<Vec<LoadedTable>, SinkError> {
        let shared = &self.shared;
        let operation = format!(
            "committing dataset {:?} into {}",
            pending.dataset.id, pending.target
        );
        let fail = |e: tokio_postgres::Error| shared.error(&operation, &e);
        let limit = shared.options.query_timeout.as_millis();
        // One commit at a time in the database: the claims read below stay true until COMMIT.
        client
            .batch_execute(&format!(
                "SET LOCAL lock_timeout = {limit}; SET LOCAL statement_timeout = {limit}; \
                 LOCK TABLE {BOOKKEEPING_SCHEMA}.loaded_tables IN SHARE ROW EXCLUSIVE MODE"
            ))
            .await
            .map_err(fail)?;
        self.check_claims(client, &pending.dataset, &pending.target)
            .await?;
        let previous = client
            .query(
                &format!(
                    "SELECT schema_name, table_name FROM {BOOKKEEPING_SCHEMA}.loaded_tables \
                     WHERE project = $1 AND start_time = $2 AND dataset = $3"
                ),
                &[&self.run.project, &self.run.start, &pending.dataset.id],
            )
            .await
            .map_err(fail)?;
        let target = quote(&pending.target);
        let load = quote(&pending.load_schema);
        let mut ddl = format!("CREATE SCHEMA IF NOT EXISTS {target};");
        for row in &previous {
            let (schema, table): (String, String) = (row.get(0), row.get(1));
            ddl.push_str(&format!(
                "DROP TABLE IF EXISTS {}.{};",
                quote(&schema),
                quote(&table)
            ));
        }
        for (table, _) in &pending.tables {
            let table = quote(table);
            ddl.push_str(&format!(
                "DROP TABLE IF EXISTS {target}.{table}; ALTER TABLE {load}.{table} SET SCHEMA {target}; \
                 ALTER TABLE {target}.{table} RESET (autovacuum_enabled);"
            ));
        }
        if let Some(reader) = &shared.reader {
            let reader = quote(reader);
            ddl.push_str(&format!("GRANT USAGE ON SCHEMA {target} TO {reader};"));
            if !pending.tables.is_empty() {
                let tables: Vec<String> = pending
                    .tables
                    .iter()
                    .map(|(t, _)| format!("{target}.{}", quote(t)))
                    .collect();
                ddl.push_str(&format!(
                    "GRANT SELECT ON TABLE {} TO {reader};",
                    tables.join(", ")
                ));
            }
        }
        client.batch_execute(&ddl).await.map_err(fail)?;
        client
            .execute(
                &format!(
                    "DELETE FROM {BOOKKEEPING_SCHEMA}.loaded_tables \
                     WHERE project = $1 AND start_time = $2 AND dataset = $3"
                ),
                &[&self.run.project, &self.run.start, &pending.dataset.id],
            )
            .await
            .map_err(fail)?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {BOOKKEEPING_SCHEMA}.loaded_tables \
                 (project, start_time, dataset, schema_name, table_name, rows, loaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, now())"
            ))
            .await
            .map_err(fail)?;
        let mut loaded = Vec::with_capacity(pending.tables.len());
        for (table, rows) in &pending.tables {
            let count = i64::try_from(*rows).unwrap_or(i64::MAX);
            client
                .execute(
                    &insert,
                    &[
                        &self.run.project,
                        &self.run.start,
                        &pending.dataset.id,
                        &pending.target,
                        table,
                        &count,
                    ],
                )
                .await
                .map_err(fail)?;
            loaded.push(LoadedTable {
                schema: pending.target.clone(),
                table: table.clone(),
                dataset: pending.dataset.id.clone(),
                rows: *rows,
            });
        }
        client
            .batch_execute(&format!("DROP SCHEMA {load} CASCADE; COMMIT"))
            .await
            .map_err(fail)?;
        Ok(loaded)
    }
}

/// Creates the bookkeeping schema and table when they are missing (see the module docs).
async fn bootstrap(shared: &Shared, client: &Client) -> Result<(), SinkError> {
    let operation = format!(
        "creating the schema {BOOKKEEPING_SCHEMA} in {}",
        shared.host
    );
    let exists: bool = shared
        .timed(
            &operation,
            client.query_one(
                &format!("SELECT to_regclass('{BOOKKEEPING_SCHEMA}.loaded_tables') IS NOT NULL"),
                &[],
            ),
        )
        .await?
        .get(0);
    if exists {
        return Ok(());
    }
    let comment = literal(
        "The CR8TOR Publish Service's record of which dataset of which project run loaded \
         which table. Granted to nobody; never in a researchers' schema.",
    );
    // One simple query: one implicit transaction.
    let sql = format!(
        "SELECT pg_catalog.pg_advisory_xact_lock({BOOTSTRAP_KEY}); \
         CREATE SCHEMA IF NOT EXISTS {BOOKKEEPING_SCHEMA}; \
         REVOKE ALL ON SCHEMA {BOOKKEEPING_SCHEMA} FROM PUBLIC; \
         COMMENT ON SCHEMA {BOOKKEEPING_SCHEMA} IS {comment}; \
         CREATE TABLE IF NOT EXISTS {BOOKKEEPING_SCHEMA}.loaded_tables ( \
           project text NOT NULL, \
           start_time text NOT NULL, \
           dataset text NOT NULL, \
           schema_name text NOT NULL, \
           table_name text NOT NULL, \
           rows bigint NOT NULL, \
           loaded_at timestamptz NOT NULL, \
           PRIMARY KEY (schema_name, table_name)); \
         CREATE INDEX IF NOT EXISTS loaded_tables_run \
           ON {BOOKKEEPING_SCHEMA}.loaded_tables (project, start_time); \
         REVOKE ALL ON {BOOKKEEPING_SCHEMA}.loaded_tables FROM PUBLIC"
    );
    shared.timed(&operation, client.batch_execute(&sql)).await
}

/// Drops the load schemas of `run` an interrupted load left (the lock is held: none of them
/// is in use).
async fn remove_leftovers(shared: &Shared, client: &Client, run: &Run) -> Result<(), SinkError> {
    let operation = format!("removing interrupted loads from {}", shared.host);
    let rows = shared
        .timed(
            &operation,
            client.query(
                "SELECT nspname::text FROM pg_catalog.pg_namespace \
                 WHERE left(nspname::text, length($1::text)) = $1::text",
                &[&run.prefix],
            ),
        )
        .await?;
    for row in rows {
        let schema: String = row.get(0);
        warn!(%schema, project = %run.project, start = %run.start,
              "removing what an interrupted load left in the destination database");
        shared
            .timed(
                &operation,
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&schema))),
            )
            .await?;
    }
    Ok(())
}

/// Drops `schema` from a task of its own, when there is a runtime to run one (otherwise the
/// next lock of the run does it).
fn drop_in_background(client: Arc<Mutex<Client>>, schema: String, limit: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let client = client.lock().await;
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&schema));
        if !matches!(
            tokio::time::timeout(limit, client.batch_execute(&sql)).await,
            Ok(Ok(()))
        ) {
            warn!(%schema, "a discarded load could not be removed; the next lock of its project run removes it");
        }
    });
}

impl Drop for PgLocked {
    fn drop(&mut self) {
        self.discard();
    }
}

#[async_trait]
impl LockedProject for PgLocked {
    async fn load<'s>(
        &'s mut self,
        dataset: &DatasetLoad,
    ) -> Result<Box<dyn Sink + 's>, SinkError> {
        let target = super::target_schema(&self.run.project, &self.run.start, dataset)?;
        self.discard();
        let load_schema = format!(
            "{}{}",
            self.run.prefix,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        {
            let client = self.client.lock().await;
            self.check_claims(&client, dataset, &target).await?;
            self.shared
                .timed(
                    &format!("creating a private schema in {}", self.shared.host),
                    client.batch_execute(&format!("CREATE SCHEMA {}", quote(&load_schema))),
                )
                .await?;
        }
        self.pending = Some(Pending {
            dataset: dataset.clone(),
            target,
            load_schema,
            tables: Vec::new(),
            finished: false,
        });
        Ok(Box::new(PgSink::new(self)))
    }

    async fn commit(&mut self) -> Result<Vec<LoadedTable>, SinkError> {
        let Some(pending) = self.pending.take() else {
            return Err(SinkError::Failed);
        };
        if !pending.finished {
            self.pending = Some(pending);
            self.discard();
            return Err(SinkError::Failed);
        }
        let client = Arc::clone(&self.client);
        let client = client.lock().await;
        let begun = self
            .shared
            .timed("beginning the commit", client.batch_execute("BEGIN"))
            .await;
        let result = match begun {
            Ok(()) => self.commit_in(&client, &pending).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(loaded) => {
                info!(project = %self.run.project, start = %self.run.start,
                      dataset = %pending.dataset.id, schema = %pending.target,
                      tables = loaded.len(), "dataset committed to the destination database");
                Ok(loaded)
            }
            Err(e) => {
                // Nothing visible changed; the load itself is given up.
                let cleanup = format!(
                    "ROLLBACK; DROP SCHEMA IF EXISTS {} CASCADE",
                    quote(&pending.load_schema)
                );
                let _ = tokio::time::timeout(
                    self.shared.options.query_timeout,
                    client.batch_execute(&cleanup),
                )
                .await;
                Err(e)
            }
        }
    }

    async fn tables(&mut self) -> Result<Vec<LoadedTable>, SinkError> {
        let client = self.client.lock().await;
        let operation = format!(
            "listing the tables of project {} ({})",
            self.run.project, self.run.start
        );
        let rows = self
            .shared
            .timed(
                &operation,
                client.query(
                    &format!(
                        "SELECT schema_name, table_name, dataset, rows, \
                           to_regclass(format('%I.%I', schema_name, table_name)) IS NOT NULL \
                         FROM {BOOKKEEPING_SCHEMA}.loaded_tables \
                         WHERE project = $1 AND start_time = $2"
                    ),
                    &[&self.run.project, &self.run.start],
                ),
            )
            .await?;
        let mut tables = Vec::with_capacity(rows.len());
        for row in rows {
            let table = LoadedTable {
                schema: row.get(0),
                table: row.get(1),
                dataset: row.get(2),
                rows: u64::try_from(row.get::<_, i64>(3)).unwrap_or(0),
            };
            if !row.get::<_, bool>(4) {
                return Err(SinkError::Database {
                    operation,
                    message: format!(
                        "table {}, which dataset {:?} loaded, is no longer in the database: \
                         package the dataset again",
                        table.qualified_name(),
                        table.dataset
                    ),
                });
            }
            tables.push(table);
        }
        tables.sort_by(|a, b| (&a.schema, &a.table).cmp(&(&b.schema, &b.table)));
        Ok(tables)
    }
}
