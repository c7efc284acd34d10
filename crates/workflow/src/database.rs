//! The PostgreSQL destination that DataSHIELD reads (docs/CONTRACT.md §4.5, issue 22): package
//! loads a dataset's tables into the database ([`DatabaseDestination`]), publish registers the
//! project run's tables with the system researchers reach them through ([`TablePublisher`]:
//! OBiBa Opal). Both are contracts; the server passes the implementations (`publish-sql`'s
//! `PostgresDestination`, an adapter of `publish-opal`), so this crate links neither a database
//! driver nor an HTTP client.
//!
//! Order of a package, as for files: everything that can be refused without data is refused
//! first (the publisher's project-name rule, the database's name limits), then the source is
//! opened, the project run locked in the database, every table described and its column names
//! checked, the tables loaded into a private place, and the one transaction that makes them
//! visible is the commit point. Once begun it runs to its end even if the caller goes away.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use publish_sink::{DatabaseDestination, DatasetLoad, LoadedTable};
use publish_types::{
    PackageRequest, ProjectName, ProjectRef, Published, PublishedTable, Retrieved, RetrievedTable,
};
use tracing::info;

use crate::{Interrupt, Workflow, WorkflowError, describe_all};

/// Registers a project run's loaded tables where researchers reach them (OBiBa Opal for
/// DataSHIELD). Implementations are idempotent: publishing the same tables again answers the
/// same and creates nothing twice.
#[async_trait]
pub trait TablePublisher: Send + Sync {
    /// Refuses a project name the publisher cannot use (Opal's project-name rule), so that
    /// package refuses it before any data moves. Pure.
    fn check_project(&self, project: &ProjectName) -> Result<(), PublisherError>;

    /// Registers every table of `project`'s run and returns what the caller is answered, one
    /// entry per table, in the order given.
    async fn publish(
        &self,
        project: &ProjectName,
        tables: &[LoadedTable],
    ) -> Result<Vec<PublishedTable>, PublisherError>;

    /// Checks that the publisher accepts the service's credentials (what validate asks).
    async fn check(&self) -> Result<(), PublisherError>;
}

/// Why the publisher refused or failed. `message` names the publisher and the step and never
/// holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PublisherError {
    /// What kind of failure, for the status code.
    pub failure: PublisherFailure,
    /// What happened.
    pub message: String,
}

/// The kinds of [`PublisherError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherFailure {
    /// The request cannot be published as it is (e.g. a project name Opal refuses): 422.
    Invalid,
    /// The publisher refused or failed: 502.
    Failed,
    /// The publisher did not answer in time: 504.
    Timeout,
}

/// The PostgreSQL destination's two parts, as the server configured them.
#[derive(Clone)]
pub struct DatabaseDestinationParts {
    /// Where package loads the tables.
    pub database: Arc<dyn DatabaseDestination>,
    /// Where publish registers them.
    pub publisher: Arc<dyn TablePublisher>,
}

/// Whether the PostgreSQL destination is configured.
#[derive(Clone)]
pub enum DatabaseSetting {
    /// It is.
    Configured(DatabaseDestinationParts),
    /// It is not; the text says what configuring it takes (the server's words).
    NotConfigured(String),
}

impl Workflow {
    fn database_parts(&self) -> Result<&DatabaseDestinationParts, WorkflowError> {
        match &self.database {
            DatabaseSetting::Configured(parts) => Ok(parts),
            DatabaseSetting::NotConfigured(why) => Err(WorkflowError::DestinationNotConfigured {
                message: why.clone(),
            }),
        }
    }

    /// Package into the database destination: see the module documentation.
    pub(crate) async fn package_into_database(
        &self,
        req: PackageRequest,
        interrupt: &Interrupt,
    ) -> Result<Vec<Retrieved>, WorkflowError> {
        let parts = self.database_parts()?.clone();
        let ProjectRef {
            project_name: project,
            project_start_time: start,
            ..
        } = req.project.clone();
        parts.publisher.check_project(&project)?;
        let dataset = DatasetLoad {
            id: req.dataset.id().to_owned(),
            schema_name: req.dataset.schema_name.clone(),
            tables: req.dataset.table_refs(),
        };
        let schema = parts.database.plan(&project, &start, &dataset)?;
        let started = Instant::now();
        let locked = interrupt
            .before_commit(async {
                let source = self.open_source(&req.source, &req.project).await?;
                let mut locked = parts.database.lock(&project, &start).await?;
                let schemas = describe_all(source.as_ref(), &req).await?;
                for described in &schemas {
                    parts.database.check_columns(described)?;
                }
                let mut sink = locked.load(&dataset).await?;
                for described in &schemas {
                    self.copy_table(source.as_ref(), sink.as_mut(), described)
                        .await?;
                }
                sink.finish().await?;
                Ok::<_, WorkflowError>(locked)
            })
            .await?;
        // The commit point: one transaction, run to its end on a task of its own.
        let loaded = tokio::spawn(async move {
            let mut locked = locked;
            locked.commit().await
        })
        .await
        .map_err(|e| WorkflowError::Internal(format!("the commit task failed: {e}")))??;
        crate::Totals::add(&self.totals.tables_loaded, loaded.len() as u64);
        info!(
            dataset = %dataset.id, schema, tables = loaded.len(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "package committed to the postgresql destination"
        );
        Ok(loaded
            .iter()
            .map(|t| {
                Retrieved::Table(RetrievedTable {
                    table_name: t.qualified_name(),
                })
            })
            .collect())
    }

    /// Publish from the database destination: every table the run's datasets loaded,
    /// registered with the publisher under the run's lock (so no package replaces a table
    /// meanwhile). Nothing loaded is 409.
    pub(crate) async fn publish_from_database(
        &self,
        project: &ProjectRef,
    ) -> Result<Vec<Published>, WorkflowError> {
        let parts = self.database_parts()?.clone();
        let mut locked = parts
            .database
            .lock(&project.project_name, &project.project_start_time)
            .await?;
        let tables = locked.tables().await?;
        if tables.is_empty() {
            return Err(WorkflowError::NothingLoaded {
                project: project.project_name.to_string(),
                start: project.project_start_time.to_string(),
            });
        }
        let name = project.project_name.clone();
        // Registration runs to its end even if the caller goes away; the lock with it.
        let published = tokio::spawn(async move {
            let published = parts.publisher.publish(&name, &tables).await;
            drop(locked);
            published
        })
        .await
        .map_err(|e| WorkflowError::Internal(format!("the publish task failed: {e}")))??;
        crate::Totals::add(&self.totals.tables_registered, published.len() as u64);
        info!(tables = published.len(), "published to Opal");
        Ok(published.into_iter().map(Published::Table).collect())
    }

    /// Validate for the database destination: the writer can sign in and create schemas, the
    /// publisher accepts the credentials and the project's name.
    pub(crate) async fn validate_database(
        &self,
        project: &ProjectRef,
    ) -> Result<(), WorkflowError> {
        let parts = self.database_parts()?;
        parts.publisher.check_project(&project.project_name)?;
        parts.database.check().await?;
        parts.publisher.check().await?;
        Ok(())
    }
}
