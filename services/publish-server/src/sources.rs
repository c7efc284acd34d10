//! Wires the Databricks implementation of `Source` into the workflow, by hand.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use publish_databricks::{DatabricksConfig, DatabricksOptions, DatabricksSource};
use publish_source::Source;
use publish_types::{HostAllowList, ProjectRef, SourceKind, SourceSpec};
use publish_workflow::{SourceCredentials, SourceFactory, WorkflowError};

/// Opens a [`DatabricksSource`] for each request.
pub struct DatabricksSources {
    /// Hosts the source may contact.
    pub allowed_hosts: HostAllowList,
    /// Limit of one HTTP call.
    pub request_timeout: Duration,
    /// Overall limit of one statement.
    pub overall_timeout: Duration,
    /// Chunks fetched at once.
    pub parallel_downloads: usize,
    /// Ask for LZ4-compressed results.
    pub lz4_compression: bool,
    /// Where every source's retries are counted (shared; read by `/metrics`).
    pub retries: publish_source::RetryCounts,
}

#[async_trait]
impl SourceFactory for DatabricksSources {
    async fn open(
        &self,
        spec: &SourceSpec,
        credentials: SourceCredentials,
        project: &ProjectRef,
    ) -> Result<Arc<dyn Source>, WorkflowError> {
        match spec.kind {
            SourceKind::DatabricksSql => {}
        }
        let options = DatabricksOptions {
            request_timeout: self.request_timeout,
            overall_timeout: self.overall_timeout,
            max_parallel_downloads: self.parallel_downloads,
            lz4_compression: self.lz4_compression,
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
            retries: self.retries.clone(),
            ..DatabricksOptions::default()
        };
        let config = DatabricksConfig {
            host: spec.host_url.clone(),
            http_path: spec.http_path.clone(),
            catalog: spec.catalog.clone(),
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            options,
        };
        Ok(Arc::new(DatabricksSource::new(
            config,
            &self.allowed_hosts,
        )?))
    }
}
