//! The package, publish and validate requests, in both accepted shapes, normalised.
//!
//! Shape A is the brief's (flat `destination_type`/`destination_format`, top-level
//! `credentials`, `metadata`); shape B is what CR8TOR sends today (nested `destination`,
//! `source.credentials`, `dataset`). Both are parsed by one tolerant raw type and then
//! normalised, so a caller never needs to know which shape arrived. Unknown fields are ignored;
//! enum-like strings are case-insensitive.

use serde::Deserialize;

use crate::error::RequestError;
use crate::names::{
    DestinationName, Identifier, ObjectName, ProjectName, SecretName, StartTime, TableRef,
};
use crate::source::{HostUrl, SourceKind};

/// Format of the packaged result, as the request's `format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One `data/outputs/database.duckdb` holding every table.
    Duckdb,
    /// One `data/outputs/<schema>/<table>.csv` per table.
    Csv,
    /// One `data/outputs/<schema>/<table>.parquet` per table.
    Parquet,
    /// Tables of a database: the PostgreSQL destination's only format, and only its
    /// ([`Destination::Postgresql`]); not a file format.
    Sql,
}

impl OutputFormat {
    /// A file destination's format.
    fn parse_file(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "duckdb" => Ok(Self::Duckdb),
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            "sql" => Err(
                "\"sql\" is the format of the postgresql destination; a filestore destination \
                 takes duckdb, csv or parquet"
                    .into(),
            ),
            _ => Err(format!(
                "{value:?} is not a supported format; use one of duckdb, csv, parquet"
            )),
        }
    }

    /// True for the formats written as files into the staging container.
    pub fn is_file(self) -> bool {
        !matches!(self, Self::Sql)
    }
}

/// Where a project's data goes (`destination.type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// A configured file destination (`filestore`): staging and production containers under the
    /// mount of `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH`.
    Filestore(DestinationName),
    /// The PostgreSQL database that DataSHIELD (OBiBa Opal) reads (`postgresql`), configured by
    /// the `DESTINATION_POSTGRESQL_*` and `DESTINATION_OPAL_*` settings; the request's
    /// `destination.name` carries no meaning for it.
    Postgresql,
}

impl Destination {
    /// The file destination's name, or `None` for the PostgreSQL destination.
    pub fn filestore(&self) -> Option<&DestinationName> {
        match self {
            Self::Filestore(name) => Some(name),
            Self::Postgresql => None,
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Filestore(name) => name.fmt(f),
            Self::Postgresql => f.write_str("postgresql"),
        }
    }
}

/// Which project a request is about, and where its files live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectRef {
    /// `project_name`.
    pub project_name: ProjectName,
    /// `project_start_time`.
    pub project_start_time: StartTime,
    /// The destination: a file destination's name (`destination_type` in shape A,
    /// `destination.name` in shape B), or the PostgreSQL destination (`destination.type`).
    pub destination: Destination,
}

/// The source of a package or validate request: a Databricks workspace or a SQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// Databricks SQL, PostgreSQL or MySQL/MariaDB.
    pub kind: SourceKind,
    /// The workspace URL or the database server (scheme `postgresql` / `mysql`), parsed but
    /// not yet checked against the allow-list.
    pub host_url: HostUrl,
    /// Databricks: the JDBC/ODBC HTTP path, whose last `warehouses/<id>` segment names the SQL
    /// warehouse. Empty for a SQL database, which has none.
    pub http_path: String,
    /// Databricks: the Unity Catalog catalog. A SQL database: the database (`database`).
    pub catalog: ObjectName,
    /// Names of the secret files holding the credentials.
    pub credentials: Credentials,
}

/// Names (never values) of the secret files with the credentials: for Databricks the service
/// principal's OAuth client id and secret, for a SQL database the user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Where the secrets come from, as the caller said (e.g. `AzureKeyVault`); informational —
    /// the service reads them from files under `SECRETS_MNT_PATH`.
    pub provider: String,
    /// File name of who signs in: the service principal's OAuth client id (`spn_clientid`),
    /// or the database user name (`username_key`).
    pub identity: SecretName,
    /// File name of the secret that proves it: the OAuth client secret (`spn_secret`), or the
    /// database password (`password_key`).
    pub secret: SecretName,
}

/// The approved tables and columns of one dataset.
///
/// CR8TOR packages each dataset of a project separately (same project, start time and
/// destination), then publishes once; [`DatasetSpec::id`] tells the datasets of a project apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// The dataset's `name` as the caller gave it, trimmed; `None` when absent, `null` or blank.
    pub name: Option<String>,
    /// Unity Catalog schema; also the schema (or folder) name in the output.
    pub schema_name: ObjectName,
    /// At least one table, no duplicates.
    pub tables: Vec<TableSpec>,
}

impl DatasetSpec {
    /// What identifies the dataset among the datasets of a project: its `name`, else its
    /// `schema_name`. Packaging a dataset again replaces exactly what the same id staged.
    pub fn id(&self) -> &str {
        self.name.as_deref().unwrap_or(self.schema_name.as_str())
    }

    /// The tables the dataset puts into the output, in request order.
    pub fn table_refs(&self) -> Vec<TableRef> {
        self.tables
            .iter()
            .map(|t| TableRef {
                schema: self.schema_name.clone(),
                table: t.name.clone(),
            })
            .collect()
    }
}

/// One approved table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name.
    pub name: ObjectName,
    /// The approved columns in the requested order, or `None` for all columns.
    pub columns: Option<Vec<Identifier>>,
}

/// A normalised package request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    /// Project and destination.
    pub project: ProjectRef,
    /// Output format.
    pub format: OutputFormat,
    /// Where to read from.
    pub source: SourceSpec,
    /// What to read.
    pub dataset: DatasetSpec,
}

/// A normalised publish request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// Project and destination.
    pub project: ProjectRef,
}

/// A normalised validate request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateRequest {
    /// Project and destination.
    pub project: ProjectRef,
    /// Output format (checked, otherwise unused).
    pub format: OutputFormat,
    /// The source to try.
    pub source: SourceSpec,
}

use crate::wire::{RawBody, RawDataset, RawDestination, RawSource, RawSourceType, RawSqlSource};

/// Deserialises a part of the body already read as a JSON value; errors name `field` and the
/// path inside it.
fn from_value<T: serde::de::DeserializeOwned>(
    field: &str,
    value: serde_json::Value,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut error = RequestError::from_serde_value(e);
        error.field = if error.field.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", error.field)
        };
        error
    })
}

fn from_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, RequestError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Serde would read an array as a tuple struct and report its first element instead.
        let valid = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
        return Err(RequestError::new(
            "",
            if valid {
                "the body must be a JSON object"
            } else {
                "the body is not valid JSON"
            },
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(de).map_err(RequestError::from_serde)?;
    Ok(value)
}

impl PackageRequest {
    /// Parses and validates a package request body in either shape.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let mut raw: RawBody = from_json(body)?;
        let (metadata, dataset) = (raw.metadata.take(), raw.dataset.take());
        let (project, format, source) = normalise_sourced(raw)?;
        let (field, dataset) = match (metadata, dataset) {
            (Some(_), Some(_)) => {
                return Err(RequestError::new(
                    "metadata",
                    "give either `metadata` (brief's shape) or `dataset` (CR8TOR's shape), not both",
                ));
            }
            (Some(m), None) => ("metadata", m),
            (None, Some(d)) => ("dataset", d),
            (None, None) => {
                return Err(RequestError::new(
                    "dataset",
                    "missing: the approved tables go in `dataset` (or `metadata`)",
                ));
            }
        };
        let dataset = normalise_dataset(field, dataset)?;
        Ok(Self {
            project,
            format,
            source,
            dataset,
        })
    }
}

impl PublishRequest {
    /// Parses and validates a publish request body in either shape.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let raw: RawBody = from_json(body)?;
        let (project, _format) = normalise_project(
            raw.project_name,
            raw.project_start_time,
            raw.destination_type,
            raw.destination_format,
            raw.destination,
            false,
        )?;
        Ok(Self { project })
    }
}

impl ValidateRequest {
    /// Parses and validates a validate request body (a package body without the dataset).
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let raw: RawBody = from_json(body)?;
        let (project, format, source) = normalise_sourced(raw)?;
        Ok(Self {
            project,
            format,
            source,
        })
    }
}

/// Returns the project reference and the format (when one was given, or `require_format`).
fn normalise_project(
    project_name: ProjectName,
    project_start_time: StartTime,
    destination_type: Option<String>,
    destination_format: Option<String>,
    destination: Option<RawDestination>,
    require_format: bool,
) -> Result<(ProjectRef, Option<OutputFormat>), RequestError> {
    let (name_field, name, format_field, format) = match (destination_type, destination) {
        (Some(_), Some(_)) => {
            return Err(RequestError::new(
                "destination",
                "give either `destination_type` (brief's shape) or `destination` (CR8TOR's shape), not both",
            ));
        }
        (Some(name), None) => (
            "destination_type",
            name,
            "destination_format",
            destination_format,
        ),
        (None, Some(d)) => {
            match d.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("filestore") => {}
                Some("postgresql") => {
                    // `name` carries no meaning here (CR8TOR sends ""); the format is `sql`.
                    if let Some(format) =
                        d.format.as_ref().filter(|f| !f.eq_ignore_ascii_case("sql"))
                    {
                        return Err(RequestError::new(
                            "destination.format",
                            format!(
                                "{format:?} is not a format of the postgresql destination; use sql"
                            ),
                        ));
                    }
                    return Ok((
                        ProjectRef {
                            project_name,
                            project_start_time,
                            destination: Destination::Postgresql,
                        },
                        Some(OutputFormat::Sql),
                    ));
                }
                Some(_) => {
                    return Err(RequestError::new(
                        "destination.type",
                        format!(
                            "{:?} is not supported; the destination types are filestore and \
                             postgresql",
                            d.kind.unwrap_or_default()
                        ),
                    ));
                }
            }
            let name = d.name.ok_or_else(|| {
                RequestError::new(
                    "destination.name",
                    "missing: name the filestore destination (e.g. LSC)",
                )
            })?;
            ("destination.name", name, "destination.format", d.format)
        }
        (None, None) => {
            return Err(RequestError::new(
                "destination",
                "missing: name the destination in `destination.name` (or `destination_type`)",
            ));
        }
    };
    let destination =
        DestinationName::parse(&name).map_err(|e| RequestError::new(name_field, e.to_string()))?;
    let format = match format {
        Some(f) => {
            Some(OutputFormat::parse_file(&f).map_err(|e| RequestError::new(format_field, e))?)
        }
        None if require_format => {
            return Err(RequestError::new(
                format_field,
                "missing: one of duckdb, csv, parquet",
            ));
        }
        None => None,
    };
    Ok((
        ProjectRef {
            project_name,
            project_start_time,
            destination: Destination::Filestore(destination),
        },
        format,
    ))
}

fn normalise_sourced(raw: RawBody) -> Result<(ProjectRef, OutputFormat, SourceSpec), RequestError> {
    let (project, format) = normalise_project(
        raw.project_name,
        raw.project_start_time,
        raw.destination_type,
        raw.destination_format,
        raw.destination,
        false,
    )?;
    let format = format.unwrap_or(OutputFormat::Duckdb);
    let Some(src) = raw.source.filter(|s| !s.is_null()) else {
        return Err(RequestError::new(
            "source",
            "missing: describe the Databricks source (type, host_url, http_path, catalog)",
        ));
    };
    let RawSourceType { kind } = from_value("source", src.clone())?;
    let kind =
        SourceKind::parse(&kind).map_err(|e| RequestError::new("source.type", e.to_string()))?;
    if kind.is_sql_database() {
        return Ok((project, format, sql_source(kind, src)?));
    }
    let src: RawSource = from_value("source", src)?;
    let host_url = HostUrl::parse(&src.host_url, src.port)
        .map_err(|e| RequestError::new("source.host_url", e.to_string()))?;
    if src.http_path.trim().is_empty() {
        return Err(RequestError::new("source.http_path", "must not be empty"));
    }
    let creds = match (raw.credentials, src.credentials) {
        (Some(top), Some(nested)) if top != nested => {
            return Err(RequestError::new(
                "credentials",
                "`credentials` and `source.credentials` disagree; give only one",
            ));
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => {
            return Err(RequestError::new(
                "source.credentials",
                "missing: name the secret files in `source.credentials` (or `credentials`)",
            ));
        }
    };
    let source = SourceSpec {
        kind,
        host_url,
        http_path: src.http_path,
        catalog: src.catalog,
        credentials: Credentials {
            provider: creds.provider.unwrap_or_default(),
            identity: creds.spn_clientid,
            secret: creds.spn_secret,
        },
    };
    Ok((project, format, source))
}

/// A SQL database source: `host_url` (a host name), `database`, `port`, and
/// `credentials.username_key` / `password_key`.
fn sql_source(kind: SourceKind, src: serde_json::Value) -> Result<SourceSpec, RequestError> {
    let src: RawSqlSource = from_value("source", src)?;
    let host_url = HostUrl::parse_database(&src.host_url, kind.scheme(), src.port)
        .map_err(|e| RequestError::new("source.host_url", e.to_string()))?;
    Ok(SourceSpec {
        kind,
        host_url,
        http_path: String::new(),
        catalog: src.database,
        credentials: Credentials {
            provider: src.credentials.provider.unwrap_or_default(),
            identity: src.credentials.username_key,
            secret: src.credentials.password_key,
        },
    })
}

fn normalise_dataset(field: &str, raw: RawDataset) -> Result<DatasetSpec, RequestError> {
    if raw.tables.is_empty() {
        return Err(RequestError::new(
            format!("{field}.tables"),
            "is empty; name at least one table",
        ));
    }
    let mut tables: Vec<TableSpec> = Vec::with_capacity(raw.tables.len());
    for (i, t) in raw.tables.into_iter().enumerate() {
        let here = format!("{field}.tables[{i}]");
        if let Some(prev) = tables
            .iter()
            .find(|p| p.name.as_str().eq_ignore_ascii_case(t.name.as_str()))
        {
            return Err(RequestError::new(
                format!("{here}.name"),
                format!("table {:?} is requested twice", prev.name.as_str()),
            ));
        }
        let columns = match t.columns {
            None => None,
            Some(cols) if cols.is_empty() => {
                return Err(RequestError::new(
                    format!("{here}.columns"),
                    "is empty; list the approved columns, or omit `columns` to request all of them",
                ));
            }
            Some(cols) => {
                let mut out: Vec<Identifier> = Vec::with_capacity(cols.len());
                for (j, c) in cols.into_iter().enumerate() {
                    if out
                        .iter()
                        .any(|p| p.as_str().eq_ignore_ascii_case(c.name.as_str()))
                    {
                        return Err(RequestError::new(
                            format!("{here}.columns[{j}].name"),
                            format!(
                                "column {:?} of table {:?} is requested twice",
                                c.name.as_str(),
                                t.name.as_str()
                            ),
                        ));
                    }
                    out.push(c.name);
                }
                Some(out)
            }
        };
        tables.push(TableSpec {
            name: t.name,
            columns,
        });
    }
    let name = raw
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(name) = &name
        && (name.chars().count() > 255 || name.chars().any(char::is_control))
    {
        return Err(RequestError::new(
            format!("{field}.name"),
            "must be at most 255 characters, without control characters",
        ));
    }
    Ok(DatasetSpec {
        name,
        schema_name: raw.schema_name,
        tables,
    })
}
