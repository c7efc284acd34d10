//! Wires the implementations of `Source` into the workflow, by hand: Databricks, PostgreSQL,
//! MySQL/MariaDB.

use std::sync::Arc;

use async_trait::async_trait;
use publish_databricks::{DatabricksConfig, DatabricksOptions, DatabricksSource};
use publish_source::Source;
use publish_sql::{MysqlSource, PostgresSource, SqlConfig, SqlOptions};
use publish_types::{AllowedHost, ProjectRef, SourceKind, SourceSpec};
use publish_workflow::{SourceCredentials, SourceFactory, WorkflowError};

/// Opens the source a request names.
pub(crate) struct Sources {
    /// Every Databricks source's options (their retry counts are shared, read by `/metrics`);
    /// each request's query tags are added to a copy.
    pub databricks: DatabricksOptions,
    /// Every SQL-database source's options.
    pub sql: SqlOptions,
}

impl Sources {
    fn databricks(
        &self,
        spec: &SourceSpec,
        host: AllowedHost,
        credentials: SourceCredentials,
        project: &ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError> {
        let options = DatabricksOptions {
            // The workspace's query history then says which project read what.
            query_tags: vec![
                ("service".to_owned(), "cr8tor-publish-service".to_owned()),
                ("project".to_owned(), project.project_name.to_string()),
                (
                    "project_start_time".to_owned(),
                    project.project_start_time.to_string(),
                ),
                ("destination".to_owned(), project.destination.to_string()),
            ],
            ..self.databricks.clone()
        };
        let config = DatabricksConfig {
            host,
            http_path: spec.http_path.clone(),
            catalog: spec.catalog.clone(),
            client_id: credentials.identity,
            client_secret: credentials.secret,
            options,
        };
        Ok(Arc::new(DatabricksSource::new(config)?))
    }
}

#[async_trait]
impl SourceFactory for Sources {
    async fn open(
        &self,
        spec: &SourceSpec,
        host: AllowedHost,
        credentials: SourceCredentials,
        project: &ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError> {
        match spec.kind {
            SourceKind::DatabricksSql => self.databricks(spec, host, credentials, project),
            SourceKind::Postgresql | SourceKind::Mysql => {
                let config = SqlConfig {
                    host,
                    database: spec.catalog.clone(),
                    user: credentials.identity,
                    password: credentials.secret,
                    // The server's activity view then says which project reads.
                    application_name: format!(
                        "cr8tor-publish-service {} {}",
                        project.project_name, project.project_start_time
                    ),
                    options: self.sql.clone(),
                };
                let source: Arc<dyn Source> = if spec.kind == SourceKind::Postgresql {
                    Arc::new(PostgresSource::connect(config).await?)
                } else {
                    Arc::new(MysqlSource::connect(config).await?)
                };
                Ok(source)
            }
        }
    }
}
