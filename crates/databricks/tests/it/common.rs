//! The harness: an emulator loaded with the conformance fixtures, and a client for it.

use std::time::Duration;

use databricks_emulator::fixtures::{Sidecar, SidecarColumn, write_table};
use databricks_emulator::{Emulator, EmulatorConfig, Fault, JournalEntry, Operation};
use publish_databricks::{DatabricksConfig, DatabricksOptions, DatabricksSource};
use publish_source::TableRequest;
use publish_source::conformance::{Fixture, Suite};
use publish_types::{HostAllowList, HostUrl, ObjectName, TableSchema, UcType};
use tempfile::TempDir;

pub(crate) const CATALOG: &str = "tre";
pub(crate) const SCHEMA: &str = "cohort_a";
pub(crate) const WAREHOUSE: &str = "8f3c2a1b9d4e7f60";
pub(crate) const HTTP_PATH: &str = "/sql/1.0/warehouses/8f3c2a1b9d4e7f60";
/// Rows per emulator chunk: the 250-row `people` table becomes 4 chunks.
pub(crate) const CHUNK_ROWS: usize = 64;

pub(crate) struct Env {
    pub(crate) emulator: Emulator,
    pub(crate) suite: Suite,
    /// The emulator's data directory; tests may add tables to it.
    pub(crate) dir: TempDir,
}

pub(crate) fn suite() -> Suite {
    Suite::new(CATALOG, SCHEMA)
}

/// The sidecar that makes the emulator declare a fixture's comments, key and char types.
fn sidecar(definition: &TableSchema) -> Sidecar {
    let mut sidecar = Sidecar {
        comment: definition.comment.clone(),
        primary_key: (!definition.primary_key.is_empty()).then(|| {
            definition
                .primary_key
                .iter()
                .map(ToString::to_string)
                .collect()
        }),
        ..Sidecar::default()
    };
    for c in &definition.columns {
        let type_text = matches!(c.data_type, UcType::Char(_) | UcType::Varchar(_))
            .then(|| c.data_type.to_string());
        if type_text.is_some() || c.comment.is_some() {
            sidecar.columns.insert(
                c.name.to_string(),
                SidecarColumn {
                    type_text,
                    comment: c.comment.clone(),
                },
            );
        }
    }
    sidecar
}

pub(crate) fn load(dir: &std::path::Path, fixture: &Fixture) {
    let d = &fixture.definition;
    write_table(
        dir,
        d.catalog.as_str(),
        d.schema.as_str(),
        d.table.as_str(),
        &fixture.batches,
        Some(&sidecar(d)),
    )
    .expect("write fixture table");
}

impl Env {
    pub(crate) async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(&mut EmulatorConfig)) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let suite = suite();
        for fixture in suite.fixtures() {
            load(dir.path(), &fixture);
        }
        let mut config = EmulatorConfig::new(dir.path());
        config.chunk_rows = CHUNK_ROWS;
        configure(&mut config);
        let emulator = Emulator::start(config).await.expect("start emulator");
        Env {
            emulator,
            suite,
            dir,
        }
    }

    pub(crate) fn host(&self) -> HostUrl {
        HostUrl::parse(&self.emulator.url(), None).expect("emulator url")
    }

    pub(crate) fn config(&self) -> DatabricksConfig {
        DatabricksConfig {
            host: loopback()
                .admit(&self.host())
                .expect("the emulator is on loopback"),
            http_path: HTTP_PATH.into(),
            catalog: ObjectName::parse(CATALOG).expect("catalog"),
            client_id: "emulator-client-id".into(),
            client_secret: "emulator-client-secret".into(),
            options: fast_options(),
        }
    }

    pub(crate) fn source(&self) -> DatabricksSource {
        self.source_with(|_| {})
    }

    pub(crate) fn source_with(
        &self,
        configure: impl FnOnce(&mut DatabricksConfig),
    ) -> DatabricksSource {
        let mut config = self.config();
        configure(&mut config);
        DatabricksSource::new(config).expect("build source")
    }

    /// The next read's `DESCRIBE HISTORY` answers at once and its `SELECT` waits `delay`
    /// first: time for a test to write a new version of the table meanwhile.
    pub(crate) fn slow_select(&self, delay: Duration) {
        let faults = self.emulator.faults();
        faults.push(
            Operation::ExecuteStatement,
            Fault::Slow {
                delay: Duration::ZERO,
            },
        );
        faults.push(Operation::ExecuteStatement, Fault::Slow { delay });
    }

    pub(crate) fn journal(&self) -> Vec<JournalEntry> {
        self.emulator.journal()
    }

    pub(crate) fn count(&self, operation: Operation) -> usize {
        self.journal()
            .iter()
            .filter(|e| e.operation == Some(operation))
            .count()
    }

    /// The id of the newest statement, from the journal of GETs/cancels, or by the execute
    /// response order: the emulator journal has paths, so take it from a status or chunk path.
    pub(crate) fn statement_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for e in self.journal() {
            if let Some(rest) = e.path.strip_prefix("/api/2.0/sql/statements/")
                && let Some(id) = rest.split('/').next()
                && !id.is_empty()
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
            if let Some(rest) = e.path.strip_prefix("/external/")
                && let Some(id) = rest.split('/').next()
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        }
        ids
    }
}

/// The allow-list of a deployment that explicitly allows the local emulator.
pub(crate) fn loopback() -> HostAllowList {
    HostAllowList::parse("http://127.0.0.1:*").expect("allow-list")
}

/// Production policy, with waits shortened for tests.
pub(crate) fn fast_options() -> DatabricksOptions {
    DatabricksOptions {
        request_timeout: Duration::from_secs(20),
        poll_initial: Duration::from_millis(20),
        poll_max: Duration::from_millis(200),
        retry_initial_backoff: Duration::from_millis(20),
        retry_max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(2),
        retry_deadline: Duration::from_secs(30),
        ..DatabricksOptions::default()
    }
}

pub(crate) fn request(table: &str, columns: Option<&[&str]>) -> TableRequest {
    suite().request(table, columns)
}
