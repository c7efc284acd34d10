//! Wiring of the PostgreSQL destination (issue 22): `publish-sql`'s `PostgresDestination` for
//! package and an adapter of `publish-opal`'s client for publish, built from the configuration
//! and the secret files it names, and handed to the workflow as its contracts.

use std::sync::Arc;

use async_trait::async_trait;
use publish_opal::{
    DatabaseLocation, OpalClient, OpalError, OpalPublishRequest, OpalSettings, PgTable,
    ReadOnlyRole,
};
use publish_sink::LoadedTable;
use publish_sql::{PostgresDestination, PostgresDestinationConfig, SqlOptions, SqlTls};
use publish_types::{ProjectName, PublishedTable, SecretName};
use publish_workflow::{
    DatabaseDestinationParts, DatabaseSetting, PublisherError, PublisherFailure, SecretStore,
    TablePublisher,
};
use secrecy::SecretString;

use crate::config::{DatabaseDestinationSettings, Settings};

/// What a request for the PostgreSQL destination is told when it is not configured.
const NOT_CONFIGURED: &str = "the postgresql destination is not configured in this service: \
    set DESTINATION_POSTGRESQL_HOST, _DATABASE, _USERNAME, _PASSWORD_SECRET_NAME, \
    _OPAL_READONLY_USERNAME, _OPAL_READONLY_PASSWORD_SECRET_NAME and DESTINATION_OPAL_HOST, \
    _USERNAME, _PASSWORD_SECRET_NAME";

/// The PostgreSQL destination as configured (its passwords read from their files now), or why
/// not. Logs what TLS each connection verifies.
pub(crate) fn database(
    settings: &Settings,
    secrets: &SecretStore,
) -> Result<DatabaseSetting, String> {
    let Some(config) = &settings.database else {
        return Ok(DatabaseSetting::NotConfigured(NOT_CONFIGURED.into()));
    };
    let read = |variable: &str, name: &SecretName| -> Result<SecretString, String> {
        secrets.read(name).map_err(|e| format!("{variable}: {e}"))
    };
    let pg = &config.postgres;
    let database = PostgresDestination::new(PostgresDestinationConfig {
        host: pg.host.clone(),
        port: pg.port,
        database: pg.database.clone(),
        writer_user: pg.username.clone(),
        writer_password: read(
            "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
            &pg.password_secret,
        )?,
        reader_role: pg.reader_username.clone(),
        options: SqlOptions {
            tls: pg.tls,
            ca_file: pg.ca_file.clone(),
            connect_timeout: pg.connect_timeout,
            ..SqlOptions::default()
        },
    })
    .map_err(|e| format!("DESTINATION_POSTGRESQL_*: {e}"))?;
    let opal = &config.opal;
    let client = OpalClient::new(OpalSettings {
        verify_tls: opal.verify_tls,
        ca_file: opal.ca_file.clone(),
        ..OpalSettings::new(
            opal.url.clone(),
            opal.username.clone(),
            read(
                "DESTINATION_OPAL_PASSWORD_SECRET_NAME",
                &opal.password_secret,
            )?,
        )
    })
    .map_err(|e| format!("DESTINATION_OPAL_HOST: {e}"))?;
    let publisher = OpalPublisher {
        client,
        database: DatabaseLocation {
            host: pg.host.clone(),
            port: pg.port,
            database: pg.database.clone(),
        },
        reader: ReadOnlyRole {
            username: pg.reader_username.clone(),
            password: read(
                "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
                &pg.reader_password_secret,
            )?,
        },
    };
    log_trust(config);
    Ok(DatabaseSetting::Configured(DatabaseDestinationParts {
        database: Arc::new(database),
        publisher: Arc::new(publisher),
    }))
}

/// Says at start-up what each connection of the destination verifies.
fn log_trust(config: &DatabaseDestinationSettings) {
    let pg = &config.postgres;
    let tls = match pg.tls {
        SqlTls::VerifyFull => "TLS, the server's certificate and host name verified",
        SqlTls::Prefer => {
            "TLS when the server offers it, the certificate NOT verified (libpq's default; \
             DESTINATION_POSTGRESQL_TLS=verify-full with DESTINATION_POSTGRESQL_CA_FILE verifies it)"
        }
        SqlTls::Disable => "plain TCP, no TLS (DESTINATION_POSTGRESQL_TLS=disable)",
    };
    tracing::info!(
        host = %pg.host, port = pg.port, database = %pg.database, writer = %pg.username,
        reader = %pg.reader_username, tls,
        "postgresql destination configured"
    );
    if config.opal.verify_tls {
        tracing::info!(opal = %config.opal.url, "Opal configured; its TLS certificate is verified");
    } else {
        tracing::warn!(
            opal = %config.opal.url,
            "Opal configured with DESTINATION_OPAL_NO_SSL_VERIFY=true: its TLS certificate is NOT verified"
        );
    }
}

/// `publish-opal` as the workflow's [`TablePublisher`]: the database's address and the
/// read-only role's credentials go into every resource.
struct OpalPublisher {
    client: OpalClient,
    database: DatabaseLocation,
    reader: ReadOnlyRole,
}

fn publisher_error(e: OpalError) -> PublisherError {
    let failure = match &e {
        OpalError::InvalidRequest { .. } | OpalError::InvalidSettings { .. } => {
            PublisherFailure::Invalid
        }
        OpalError::Timeout { .. } => PublisherFailure::Timeout,
        _ => PublisherFailure::Failed,
    };
    PublisherError {
        failure,
        message: format!("Opal: {e}"),
    }
}

#[async_trait]
impl TablePublisher for OpalPublisher {
    fn check_project(&self, project: &ProjectName) -> Result<(), PublisherError> {
        if publish_opal::opal_project_name_allowed(project.as_str()) {
            Ok(())
        } else {
            Err(PublisherError {
                failure: PublisherFailure::Invalid,
                message: format!(
                    "project_name: {:?} cannot name an Opal project, which allows only letters, \
                     digits, spaces, '_' and '-'; nothing was read or written",
                    project.as_str()
                ),
            })
        }
    }

    async fn publish(
        &self,
        project: &ProjectName,
        tables: &[LoadedTable],
    ) -> Result<Vec<PublishedTable>, PublisherError> {
        let request = OpalPublishRequest::new(
            project.as_str(),
            self.database.clone(),
            self.reader.clone(),
            tables
                .iter()
                .map(|t| PgTable {
                    schema: t.schema.clone(),
                    table: t.table.clone(),
                })
                .collect(),
        );
        let published = self
            .client
            .publish(&request)
            .await
            .map_err(publisher_error)?;
        Ok(published
            .into_iter()
            .map(|p| PublishedTable {
                postgresql_table_name: p.postgresql_table_name,
                opal_resource_name: p.opal_resource_name,
                opal_project_name: p.opal_project_name,
                opal_group_name: p.opal_group_name,
            })
            .collect())
    }

    async fn check(&self) -> Result<(), PublisherError> {
        self.client.check().await.map_err(publisher_error)
    }
}
