//! Package, publish and validate: the CR8TOR Publish Service's operations, composed from a
//! [`publish_source::Source`], a [`publish_sink::Sink`], the staging/production storage and the
//! hashing crate. No HTTP here: the server (or any other CR8TOR service) calls [`Workflow`].
//!
//! Order of a package, chosen so that nothing is written unless it can succeed as far as can
//! be known up front: resolve the destination, check the source host against the allow-list,
//! read the secrets, take the project lock, describe *every* requested table (unknown tables
//! and columns fail here, before a byte is written), claim the dataset's tables in staging
//! (a table another dataset of the project staged fails here), then stream each table into a
//! sink writing into a fresh temp dir on the staging volume that already holds the other
//! datasets' files, and finally commit that dir, with its package record, atomically.

mod database;
mod error;
mod interrupt;
mod progress;
mod secrets;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use publish_hash::HashAlgorithm;
use publish_sink::{Output, Sink, SinkFactory, TableStats};
use publish_source::{Source, TableRequest};
use publish_storage::{
    BagInfo, Container, DatasetClaim, Destinations, PublishOptions, StagedFile, StagedTable,
};
use publish_types::{
    AllowedHost, Destination, HostAllowList, PackageRequest, ProjectRef, PublishRequest, Published,
    Retrieved, RetrievedFile, SourceSpec, TableRef, TableSchema, ValidateRequest,
};
use secrecy::SecretString;
use tracing::{Instrument, info, info_span};

pub use database::{
    DatabaseDestinationParts, DatabaseSetting, PublisherError, PublisherFailure, TablePublisher,
};
pub use error::{ErrorKind, WorkflowError};
pub use interrupt::{Cut, Interrupt};
pub use progress::Progress;
pub use secrets::{SecretError, SecretStore};

/// The credentials a source signs in with, read from the secret files a request names.
pub struct SourceCredentials {
    /// Who signs in: the service principal's OAuth client id, or the database user name.
    pub identity: SecretString,
    /// What proves it: the OAuth client secret, or the database password.
    pub secret: SecretString,
}

/// Builds the [`Source`] for a request. The server passes the Databricks implementation;
/// tests and other services pass their own (e.g. the in-memory source).
#[async_trait]
pub trait SourceFactory: Send + Sync {
    /// Opens a source for `spec` at `host` (`spec.host_url` as the allow-list admitted it),
    /// with credentials already read from the secret files, for an operation on `project` (a
    /// source may tag its queries with it).
    async fn open(
        &self,
        spec: &SourceSpec,
        host: AllowedHost,
        credentials: SourceCredentials,
        project: &ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError>;
}

/// Settings of the workflow layer.
#[derive(Debug, Clone)]
pub struct WorkflowOptions {
    /// Digest a publish answers for each file (and the bag's manifest holds). SHA-512 unless
    /// configured otherwise.
    pub hash_algorithm: HashAlgorithm,
    /// Digest of each staged file in the package record, which binds the staged data to its
    /// package: handed to the sinks (CSV and Parquet are hashed while written) and to the
    /// staging (what the sinks could not hash, e.g. DuckDB's file). A publish checks it in the
    /// same read that takes [`WorkflowOptions::hash_algorithm`]'s digest. BLAKE3: as strong a
    /// binding as SHA-512 at a fraction of its CPU, which a package pays on every byte it
    /// writes.
    pub record_algorithm: HashAlgorithm,
    /// Take the cross-filesystem copy path on publish even when a rename would do.
    pub force_copy: bool,
    /// How often a long table logs its progress.
    pub progress_interval: std::time::Duration,
    /// Publish each result as a BagIt bag ([`publish_storage::BagInfo`]); `None`: the data
    /// alone. Default: a bag.
    pub bag: Option<BagInfo>,
}

/// Which snapshot of a table a package read, as the package record keeps it.
struct ReadAt {
    snapshot: Option<String>,
    unpinned: Option<String>,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        Self {
            hash_algorithm: HashAlgorithm::Sha512,
            record_algorithm: HashAlgorithm::Blake3,
            force_copy: false,
            progress_interval: std::time::Duration::from_secs(5),
            bag: Some(BagInfo::default()),
        }
    }
}

/// Running totals since the workflow was built, for metrics. Only counts; no names.
#[derive(Debug, Default)]
pub struct Totals {
    rows_packaged: std::sync::atomic::AtomicU64,
    bytes_packaged: std::sync::atomic::AtomicU64,
    bytes_published: std::sync::atomic::AtomicU64,
    tables_loaded: std::sync::atomic::AtomicU64,
    tables_registered: std::sync::atomic::AtomicU64,
}

/// A reading of [`Totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalsSnapshot {
    /// Rows written into staging by packages (committed or not).
    pub rows_packaged: u64,
    /// Bytes of Arrow data packaged ([`publish_sink::batch_bytes`]).
    pub bytes_packaged: u64,
    /// Bytes of the files publish answers listed (a retried publish counts them again).
    pub bytes_published: u64,
    /// Tables committed into the PostgreSQL destination.
    pub tables_loaded: u64,
    /// Tables publish answered as registered in Opal (a retried publish counts them again).
    pub tables_registered: u64,
}

impl Totals {
    pub(crate) fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current totals.
    pub fn snapshot(&self) -> TotalsSnapshot {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        TotalsSnapshot {
            rows_packaged: get(&self.rows_packaged),
            bytes_packaged: get(&self.bytes_packaged),
            bytes_published: get(&self.bytes_published),
            tables_loaded: get(&self.tables_loaded),
            tables_registered: get(&self.tables_registered),
        }
    }
}

/// The service's operations.
pub struct Workflow {
    pub(crate) totals: Totals,
    destinations: Destinations,
    secrets: SecretStore,
    allowed_hosts: HostAllowList,
    sources: Arc<dyn SourceFactory>,
    sinks: Arc<dyn SinkFactory>,
    options: WorkflowOptions,
    database: DatabaseSetting,
}

impl Workflow {
    /// Wires the pieces together.
    pub fn new(
        destinations: Destinations,
        secrets: SecretStore,
        allowed_hosts: HostAllowList,
        sources: Arc<dyn SourceFactory>,
        sinks: Arc<dyn SinkFactory>,
        options: WorkflowOptions,
    ) -> Self {
        Self {
            totals: Totals::default(),
            destinations,
            secrets,
            allowed_hosts,
            sources,
            sinks,
            options,
            database: DatabaseSetting::NotConfigured(
                "the postgresql destination is not configured in this service".into(),
            ),
        }
    }

    /// Sets the PostgreSQL destination (configured, or why not).
    pub fn with_database(mut self, database: DatabaseSetting) -> Self {
        self.database = database;
        self
    }

    /// Running totals of rows and bytes moved, for metrics.
    pub fn totals(&self) -> TotalsSnapshot {
        self.totals.snapshot()
    }

    /// The configured destinations.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    /// Extracts one dataset's tables into the project's staging folder, atomically: the new
    /// staged result keeps what the project's other datasets staged and replaces what the same
    /// dataset (its `name`, else its `schema_name`) staged before. Returns the dataset's files.
    ///
    /// `interrupt` may stop it before its commit point (see [`Interrupt`]); once the commit has
    /// begun it finishes and the answer is its outcome.
    pub async fn package(
        &self,
        req: PackageRequest,
        interrupt: Interrupt,
    ) -> Result<Vec<Retrieved>, WorkflowError> {
        if req.project.destination == Destination::Postgresql {
            let span = info_span!(
                "package",
                destination = "postgresql",
                project = %req.project.project_name,
                start = %req.project.project_start_time,
            );
            return self
                .package_into_database(req, &interrupt)
                .instrument(span)
                .await;
        }
        let span = info_span!(
            "package",
            destination = %req.project.destination,
            project = %req.project.project_name,
            start = %req.project.project_start_time,
            format = ?req.format,
        );
        let destination = req.project.destination.clone();
        self.package_inner(req, &interrupt)
            .instrument(span)
            .await
            .map(|files| files.into_iter().map(Retrieved::File).collect())
            .map_err(|e| self.out_of_space(e, &destination, Container::Staging))
    }

    /// The file destination's name; the PostgreSQL destination has none.
    fn filestore(project: &ProjectRef) -> Result<&publish_types::DestinationName, WorkflowError> {
        project
            .destination
            .filestore()
            .ok_or_else(|| WorkflowError::Internal("not a file destination".into()))
    }

    /// Names the full volume when `e` says one is full.
    fn out_of_space(
        &self,
        e: WorkflowError,
        destination: &Destination,
        volume: Container,
    ) -> WorkflowError {
        if !e.is_out_of_space() {
            return e;
        }
        let Some(Ok(d)) = destination.filestore().map(|n| self.destinations.get(n)) else {
            return e;
        };
        let path = d.root(volume);
        tracing::warn!(destination = %destination, %volume, error = %e, "volume full");
        WorkflowError::VolumeFull {
            destination: destination.to_string(),
            volume,
            path: path.display().to_string(),
        }
    }

    async fn package_inner(
        &self,
        req: PackageRequest,
        interrupt: &Interrupt,
    ) -> Result<Vec<RetrievedFile>, WorkflowError> {
        let started = Instant::now();
        let staging = interrupt.before_commit(self.stage(&req)).await?;
        // The commit point: from here the package finishes whatever the clock says. The write
        // holds the project's lock until it is committed (or dropped).
        let hashing = Instant::now();
        let files = blocking(move || staging.commit()).await??;
        info!(
            dataset = req.dataset.id(),
            files = files.len(),
            record_s = hashing.elapsed().as_secs_f64(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "package committed to staging"
        );
        Ok(files
            .into_iter()
            .map(|file_path| RetrievedFile { file_path })
            .collect())
    }

    /// Everything of a package before its commit point: the dataset's tables written into a
    /// work folder of the locked staging area, ready to commit.
    async fn stage(
        &self,
        req: &PackageRequest,
    ) -> Result<publish_storage::StagingWrite, WorkflowError> {
        let destination = self
            .destinations
            .get(Self::filestore(&req.project)?)?
            .clone();
        let source = self.open_source(&req.source, &req.project).await?;
        let area = destination.project(&req.project.project_name, &req.project.project_start_time);
        // Taking the lock checks the containers, which are never created here: a missing one
        // usually means a volume that is not mounted, and writing into the bare mount point
        // would put data on the wrong disk.
        let lock = blocking(move || area.lock()).await??;

        // Resolve every table before writing anything.
        let schemas = describe_all(source.as_ref(), req).await?;

        // Keeps what the project's other datasets staged (for DuckDB, a private copy of the
        // shared database to add to) and refuses a table another dataset already staged.
        let claim = DatasetClaim {
            id: req.dataset.id().to_owned(),
            name: req.dataset.name.clone(),
            schema_name: req.dataset.schema_name.clone(),
            tables: req.dataset.table_refs(),
            format: req.format,
            shared_files: self.sinks.shared_files(req.format),
        };
        let algorithm = self.options.record_algorithm;
        let mut staging = blocking(move || lock.begin_dataset(claim, algorithm)).await??;
        let output = if staging.carries_shared_files() {
            Output::Adding {
                replace: staging.replaced_tables(),
            }
        } else {
            Output::Fresh
        };
        let mut sink = self
            .sinks
            .open(req.format, staging.dir(), output, algorithm)?;
        for schema in &schemas {
            let (stats, read_at) = self
                .copy_table(source.as_ref(), sink.as_mut(), schema)
                .await?;
            staging.record_table(StagedTable {
                table: TableRef {
                    schema: schema.schema.clone(),
                    table: schema.table.clone(),
                },
                rows: stats.rows,
                snapshot: read_at.snapshot,
                unpinned: read_at.unpinned,
            });
        }
        let written = sink.finish().await?;
        staging.written_with_digests(
            written
                .into_iter()
                .filter_map(|f| {
                    // A digest in another algorithm is a broken sink's: the staging hashes
                    // the file again rather than record it.
                    let digest = f.digest.filter(|d| d.algorithm == algorithm)?;
                    Some(StagedFile {
                        file_path: f.path,
                        total_bytes: digest.total_bytes,
                        hash_value: digest.hex,
                    })
                })
                .collect(),
        );
        Ok(staging)
    }

    async fn copy_table(
        &self,
        source: &dyn Source,
        sink: &mut dyn Sink,
        schema: &TableSchema,
    ) -> Result<(TableStats, ReadAt), WorkflowError> {
        let span = info_span!("table", schema = %schema.schema, table = %schema.table);
        async {
            let stream = source.read(schema).await?;
            let read_at = ReadAt {
                snapshot: stream.snapshot.clone(),
                unpinned: stream.unpinned.clone(),
            };
            let mut table = sink.begin_table(schema, stream.schema.clone()).await?;
            let mut progress = Progress::new(self.options.progress_interval);
            let mut batches = stream.batches;
            while let Some(batch) = batches.next().await {
                let batch = batch?;
                progress.add(batch.num_rows() as u64, publish_sink::batch_bytes(&batch));
                table.write_batch(batch).await?;
            }
            let stats = table.finish().await?;
            progress.finish(stats.rows, stats.bytes);
            Totals::add(&self.totals.rows_packaged, stats.rows);
            Totals::add(&self.totals.bytes_packaged, stats.bytes);
            Ok((stats, read_at))
        }
        .instrument(span)
        .await
    }

    /// Publishes the project's staging result to production and returns every published file
    /// with its digest and size. A retry after success returns the same manifest.
    ///
    /// `interrupt` is looked at only before it starts: a publish reads and writes local volumes
    /// only and, once begun, always finishes (see [`Interrupt`]).
    pub async fn publish(
        &self,
        req: PublishRequest,
        interrupt: Interrupt,
    ) -> Result<Vec<Published>, WorkflowError> {
        if req.project.destination == Destination::Postgresql {
            let span = info_span!(
                "publish",
                destination = "postgresql",
                project = %req.project.project_name,
                start = %req.project.project_start_time,
            );
            return async {
                interrupt.check()?;
                self.publish_from_database(&req.project).await
            }
            .instrument(span)
            .await;
        }
        let span = info_span!(
            "publish",
            destination = %req.project.destination,
            project = %req.project.project_name,
            start = %req.project.project_start_time,
        );
        let name = req.project.destination.clone();
        async {
            interrupt.check()?;
            let started = Instant::now();
            let destination = self
                .destinations
                .get(Self::filestore(&req.project)?)?
                .clone();
            let options = PublishOptions {
                algorithm: self.options.hash_algorithm,
                force_copy: self.options.force_copy,
                bag: self.options.bag.clone(),
            };
            let manifest = blocking(move || {
                let area =
                    destination.project(&req.project.project_name, &req.project.project_start_time);
                let lock = area.lock()?;
                lock.publish(&options)
            })
            .await??;
            let bytes: u64 = manifest.files.iter().map(|f| f.total_bytes).sum();
            Totals::add(&self.totals.bytes_published, bytes);
            info!(
                files = manifest.files.len(),
                bytes,
                elapsed_s = started.elapsed().as_secs_f64(),
                "published"
            );
            Ok(manifest.files.into_iter().map(Published::File).collect())
        }
        .instrument(span)
        .await
        .map_err(|e| self.out_of_space(e, &name, Container::Production))
    }

    /// Checks that the destination's containers exist and that the source accepts the
    /// credentials. Writes nothing.
    pub async fn validate(
        &self,
        req: ValidateRequest,
        interrupt: Interrupt,
    ) -> Result<(), WorkflowError> {
        let span = info_span!(
            "validate",
            destination = %req.project.destination,
            project = %req.project.project_name,
        );
        interrupt
            .before_commit(async {
                match req.project.destination.filestore() {
                    Some(name) => {
                        let destination = self.destinations.get(name)?.clone();
                        blocking(move || destination.check_containers()).await??;
                    }
                    None => self.validate_database(&req.project).await?,
                }
                let source = self.open_source(&req.source, &req.project).await?;
                source.check().await?;
                info!("source and destination validated");
                Ok(())
            })
            .instrument(span)
            .await
    }

    /// Allow-list first, then secrets: credentials are never read for a refused host.
    async fn open_source(
        &self,
        spec: &SourceSpec,
        project: &ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError> {
        let host = self
            .allowed_hosts
            .admit(&spec.host_url)
            .map_err(|refused| WorkflowError::HostNotAllowed {
                host: refused.host,
                allowed: refused.allowed,
            })?;
        let read = |field: &'static str, name| {
            self.secrets
                .read(name)
                .map_err(|source| WorkflowError::Secret { field, source })
        };
        let (identity_field, secret_field) = if spec.kind.is_sql_database() {
            (
                "source.credentials.username_key",
                "source.credentials.password_key",
            )
        } else {
            (
                "source.credentials.spn_clientid",
                "source.credentials.spn_secret",
            )
        };
        let credentials = SourceCredentials {
            identity: read(identity_field, &spec.credentials.identity)?,
            secret: read(secret_field, &spec.credentials.secret)?,
        };
        self.sources.open(spec, host, credentials, project).await
    }
}

/// Describes every requested table of the dataset: unknown tables and columns fail here, before
/// anything is written.
async fn describe_all(
    source: &dyn Source,
    req: &PackageRequest,
) -> Result<Vec<TableSchema>, WorkflowError> {
    let mut schemas = Vec::with_capacity(req.dataset.tables.len());
    for t in &req.dataset.tables {
        let request = TableRequest {
            catalog: req.source.catalog.clone(),
            schema: req.dataset.schema_name.clone(),
            table: t.name.clone(),
            columns: t.columns.clone(),
        };
        schemas.push(source.describe(&request).await?);
    }
    info!(
        tables = schemas.len(),
        "all requested tables and columns resolved"
    );
    Ok(schemas)
}

/// Runs blocking file-system work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkflowError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WorkflowError::Internal(format!("blocking task failed: {e}")))
}
