//! The request bodies as they arrive on the wire: one tolerant body type for every route and
//! both shapes (the brief's flat shape A, CR8TOR's nested shape B), which the request module
//! normalises. With the `openapi` feature the types also describe themselves for OpenAPI
//! (`utoipa`), so the service's `/openapi.json` is generated from exactly what is parsed.
//! Unknown fields are ignored; every optional field may be `null`.

use serde::Deserialize;

use crate::names::{Identifier, ObjectName, ProjectName, SecretName, StartTime};

/// A package, publish or validate body, in either shape. Package needs a destination, a source
/// and a dataset (`dataset`, or `metadata` in shape A); validate the same without the dataset;
/// publish only the project and the destination.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = RequestBody))]
pub struct RawBody {
    /// 1-64 of `[A-Za-z0-9_.-]`, not starting with `.`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Pr004"))]
    pub(crate) project_name: ProjectName,
    /// `YYYYMMDD_HHMMSS`, a real date and time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "20250205_010101"))]
    pub(crate) project_start_time: StartTime,
    /// Shape A: the destination's name (e.g. `LSC`), any case.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) destination_type: Option<String>,
    /// Shape A: `duckdb`, `csv` or `parquet`, any case (default `duckdb`).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) destination_format: Option<String>,
    /// Shape B: the destination.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) destination: Option<RawDestination>,
    /// The source (read in two steps, its `type` first, so that a source of another type is
    /// refused for its type rather than for the fields a Databricks source needs).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<AnySource>, nullable))]
    pub(crate) source: Option<serde_json::Value>,
    /// Shape A: the secret files' names.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) credentials: Option<RawCredentials>,
    /// Shape A: the approved tables.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) metadata: Option<RawDataset>,
    /// Shape B: the approved tables.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) dataset: Option<RawDataset>,
}

/// Shape B's destination.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Destination))]
pub struct RawDestination {
    /// The destination's name, any case (`lsc` for `TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH`);
    /// required for `filestore`, ignored for `postgresql` (CR8TOR sends `""`).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) name: Option<String>,
    /// `filestore` (the default) or `postgresql`, any case.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) kind: Option<String>,
    /// `duckdb`, `csv` or `parquet` (default `duckdb`) for `filestore`; `sql` for
    /// `postgresql`; any case.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) format: Option<String>,
}

/// The first step of reading a source: its type.
#[derive(Deserialize)]
pub(crate) struct RawSourceType {
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// The source as documented: a Databricks workspace or a SQL database, told apart by `type`
/// (parsed in two steps, see [`RawBody`]; this type only describes it).
#[cfg(feature = "openapi")]
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = AnySource)]
#[allow(dead_code, reason = "describes the two source shapes for OpenAPI")]
pub enum AnySource {
    /// `DatabricksSQL`.
    Databricks(RawSource),
    /// `postgresql`, `mysql`.
    Sql(RawSqlSource),
}

/// A Databricks SQL source.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Source))]
pub struct RawSource {
    /// `DatabricksSQL`, any case; other CR8TOR source types get a 422 naming the supported ones.
    #[serde(rename = "type")]
    #[allow(dead_code, reason = "read first, through RawSourceType")]
    pub(crate) kind: String,
    /// The workspace, `https://`, on the host allow-list.
    pub(crate) host_url: String,
    /// The warehouse's HTTP path, `/sql/1.0/warehouses/<id>`.
    pub(crate) http_path: String,
    /// The port (443 by default).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) port: Option<u16>,
    /// The Unity Catalog catalog.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub(crate) catalog: ObjectName,
    /// Shape B: the secret files' names.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) credentials: Option<RawCredentials>,
}

/// Names of the secret files (under `SECRETS_MNT_PATH`) holding the service principal's OAuth
/// client id and secret; never the values. `[A-Za-z0-9_-]+`.
#[derive(Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Credentials))]
pub struct RawCredentials {
    /// Informational (e.g. `AzureKeyVault`).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) provider: Option<String>,
    /// File name of the client id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "databricksspnclientid"))]
    pub(crate) spn_clientid: SecretName,
    /// File name of the client secret.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "databricksspnsecret"))]
    pub(crate) spn_secret: SecretName,
}

/// A SQL database source (`postgresql`, `mysql`), as CR8TOR sends it.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SqlSource))]
pub struct RawSqlSource {
    /// `postgresql` (or `postgres`), `mysql` (or `mariadb`), any case.
    #[serde(rename = "type")]
    #[allow(dead_code, reason = "read first, through RawSourceType")]
    pub(crate) kind: String,
    /// The server's host name (optionally after `postgresql://` / `mysql://`), on the host
    /// allow-list with that scheme.
    pub(crate) host_url: String,
    /// The database; the tables are read from its schema `dataset.schema_name`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub(crate) database: ObjectName,
    /// The port (5432 for PostgreSQL, 3306 for MySQL by default).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) port: Option<u16>,
    /// The secret files' names.
    pub(crate) credentials: RawSqlCredentials,
}

/// Names of the secret files (under `SECRETS_MNT_PATH`) holding the database user's name and
/// password; never the values. `[A-Za-z0-9_-]+`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SqlCredentials))]
pub struct RawSqlCredentials {
    /// Informational (e.g. `AzureKeyVault`).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) provider: Option<String>,
    /// File name of the user name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "pgusername"))]
    pub(crate) username_key: SecretName,
    /// File name of the password.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "pgpassword"))]
    pub(crate) password_key: SecretName,
}

/// One dataset's approved tables.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Dataset))]
pub struct RawDataset {
    /// Identifies the dataset among the project's datasets (else `schema_name` does).
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) name: Option<String>,
    /// The Unity Catalog schema, also the output schema (or folder).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub(crate) schema_name: ObjectName,
    /// At least one table, no duplicates.
    pub(crate) tables: Vec<RawTable>,
}

/// One approved table.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Table))]
pub struct RawTable {
    /// The table's name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub(crate) name: ObjectName,
    /// The approved columns in order; absent or `null` means all of them.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub(crate) columns: Option<Vec<RawColumn>>,
}

/// One approved column.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Column))]
pub struct RawColumn {
    /// The column's name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub(crate) name: Identifier,
}
