//! Wires the Databricks implementation of `Source` into the workflow, by hand.

use std::sync::Arc;

use async_trait::async_trait;
use publish_databricks::{DatabricksConfig, DatabricksOptions, DatabricksSource};
use publish_source::Source;
use publish_types::{HostAllowList, ProjectRef, SourceKind, SourceSpec};
use publish_workflow::{SourceCredentials, SourceFactory, WorkflowError};

/// Opens a [`DatabricksSource`] for each request.
pub(crate) struct DatabricksSources {
    /// Hosts the source may contact.
    pub allowed_hosts: HostAllowList,
    /// Every source's options (their retry counts are shared, read by `/metrics`); each
    /// request's query tags are added to a copy.
    pub options: DatabricksOptions,
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
            ..self.options.clone()
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
