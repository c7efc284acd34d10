//! Configuration: read once at startup, typed and validated before the port is bound.
//!
//! Sources, later ones winning: built-in defaults, an optional TOML file named by
//! `PUBLISH_CONFIG_FILE` (keys are the environment variable names, any case), then the
//! environment. Every error names the variable and the bad value.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use publish_databricks::{DatabricksOptions, DownloadBudget, EntraIdError, TokenSource};
use publish_hash::HashAlgorithm;
use publish_sql::{SqlOptions, SqlTls};
use publish_storage::{BagInfo, Destinations};
use publish_types::{HostAllowList, SecretName};
use publish_workflow::WorkflowOptions;
use publish_writers::SinkOptions;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// The server's settings, grouped as they are used: each group is the typed options of the
/// crate that uses it, built here from the environment once and passed down as it is. A
/// setting's default is written once, in this module's table below (and, where the crate has
/// one, it is the crate's own default).
///
/// | variable | default | goes to |
/// |---|---|---|
/// | `PUBLISH_BIND_ADDR` | `0.0.0.0:8003` | [`HttpSettings::bind_addr`] |
/// | `PUBLISH_MAX_BODY_BYTES` | 1 MiB | [`HttpSettings::max_body_bytes`] |
/// | `PUBLISH_HEADER_READ_TIMEOUT_SECS` | 10 | [`HttpSettings::header_read_timeout`] |
/// | `PUBLISH_SHUTDOWN_GRACE_SECS` | 25 | [`HttpSettings::shutdown_grace`] |
/// | `PUBLISH_MAX_CONCURRENT_OPERATIONS` | 4 | [`HttpSettings::max_concurrent_operations`] |
/// | `PUBLISH_OPERATION_TIMEOUT_SECS` | 3600 | [`HttpSettings::operation_timeout`] |
/// | `PUBLISH_LOG_FORMAT` (or `RUST_LOG_FORMAT`), `RUST_LOG` | `text`, `info` | [`LogSettings`] |
/// | `SECRETS_MNT_PATH` | `./secrets` | [`Settings::secrets_dir`] |
/// | `DLTHUB_PIPELINE_WORKING_DIR` | `/home/appuser/dlt/pipelines` | [`Settings::working_dir`] |
/// | `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH` | LSC `./outputs/lsc-sde`, NW `./outputs/nw-sde` | [`Settings::destinations`] |
/// | `PUBLISH_ALLOWED_SOURCE_HOSTS` | Azure Databricks hosts | [`Settings::allowed_hosts`] |
/// | `PUBLISH_HASH_ALGORITHM` | `sha512` | [`WorkflowOptions::hash_algorithm`] (what a publish answers; the package record uses BLAKE3, [`WorkflowOptions::record_algorithm`]) |
/// | `PUBLISH_FORCE_COPY` | false | [`WorkflowOptions::force_copy`] |
/// | `PUBLISH_BAGIT` | true | [`WorkflowOptions::bag`]: the published folder is a BagIt bag |
/// | `PUBLISH_BAG_SOURCE_ORGANIZATION` | none | `Source-Organization` in the bag's `bag-info.txt` |
/// | `PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS` | 120 | [`DatabricksOptions::request_timeout`]: one HTTP call; also [`SqlOptions::connect_timeout`] |
/// | `PUBLISH_STATEMENT_TIMEOUT_SECS` | 3600 | [`DatabricksOptions::overall_timeout`]: how long a query may run on the warehouse |
/// | `PUBLISH_PARALLEL_DOWNLOADS` | 16 | [`DatabricksOptions::max_parallel_downloads`]: the ceiling of downloads at once, which adapt to the writer |
/// | `PUBLISH_DOWNLOAD_BUDGET_MIB` | 256 | [`DatabricksOptions::download_budget`]: MiB of result chunks (uncompressed) downloading or waiting at once, shared by every package running |
/// | `PUBLISH_DATABRICKS_LZ4` | true | [`DatabricksOptions::lz4_compression`] |
/// | `PUBLISH_DATABRICKS_AUTH` | `databricks` | [`DatabricksOptions::token_source`]: `databricks` (the workspace's OAuth, a Databricks OAuth secret) or `entra-id` (Microsoft Entra ID, the Azure service principal's Entra ID client secret) |
/// | `PUBLISH_ENTRA_TENANT_ID` | none; required with `entra-id` | the Entra ID directory (tenant) |
/// | `PUBLISH_ENTRA_AUTHORITY` | `https://login.microsoftonline.com` | the Entra ID authority (sovereign clouds have their own) |
/// | `PUBLISH_PARALLEL_PARTS` | 2 | [`DatabricksOptions::parallel_parts`]: statements at once for a table read in parts |
/// | `PUBLISH_SQL_TLS` | `verify-full` | [`SqlOptions::tls`]: TLS to PostgreSQL/MySQL sources, the certificate and host name checked; `disable` for plain connections |
/// | `PUBLISH_SQL_CA_FILE` | none (the system's roots) | [`SqlOptions::ca_file`]: further CA certificates (PEM) to trust for SQL sources |
/// | `PUBLISH_SQL_BATCH_ROWS` | 65536 | [`SqlOptions::batch_rows`]: rows per Arrow batch read from a SQL source |
/// | `PUBLISH_DUCKDB_THREADS` | DuckDB's (the cores) | [`SinkOptions::duckdb_threads`] |
/// | `PUBLISH_DUCKDB_MEMORY_LIMIT` | `256MB` (all packages together) | [`SinkOptions::duckdb_memory_limit`] |
/// | `DESTINATION_POSTGRESQL_HOST`, `_PORT` (5432), `_DATABASE`, `_USERNAME`, `_PASSWORD_SECRET_NAME`, `_OPAL_READONLY_USERNAME`, `_OPAL_READONLY_PASSWORD_SECRET_NAME`, `DESTINATION_OPAL_HOST`, `_USERNAME`, `_PASSWORD_SECRET_NAME`, `_NO_SSL_VERIFY` (false) | none: the postgresql destination is off; all or none | [`Settings::database`], the reference service's names |
/// | `DESTINATION_POSTGRESQL_TLS` | `prefer` | [`PostgresSettings::tls`]: `prefer` (libpq's default: encrypted when the server offers it), `verify-full`, `disable` |
/// | `DESTINATION_POSTGRESQL_CA_FILE`, `DESTINATION_OPAL_CA_FILE` | none | further CA certificates (PEM) for the destination database and for Opal |
#[derive(Debug, Clone)]
pub struct Settings {
    /// How the HTTP server serves and admits operations.
    pub http: HttpSettings,
    /// How the service logs.
    pub log: LogSettings,
    /// The folder of the secret files requests name (and the API key's).
    pub secrets_dir: PathBuf,
    /// Scratch space (DuckDB spill files, under `duckdb_tmp`). Created if missing.
    pub working_dir: PathBuf,
    /// The destinations' mounts.
    pub destinations: Destinations,
    /// Hosts a source may contact.
    pub allowed_hosts: HostAllowList,
    /// The workflow's options.
    pub workflow: WorkflowOptions,
    /// The Databricks source's options (per request, the service adds its query tags).
    pub source: DatabricksOptions,
    /// The SQL-database sources' options (PostgreSQL).
    pub sql: SqlOptions,
    /// The writers' options; the server adds the one shared DuckDB instance.
    pub sink: SinkOptions,
    /// The PostgreSQL destination and Opal, when configured.
    pub database: Option<DatabaseDestinationSettings>,
    /// Configuration that is valid but probably not what was meant (e.g. a mount variable the
    /// service never reads), for the start-up log.
    pub warnings: Vec<String>,
}

/// The PostgreSQL destination that DataSHIELD reads, and the Opal it is published to:
/// configured by the reference service's variables, so a deployment's configuration works
/// unchanged. Secrets are the names of files under `SECRETS_MNT_PATH`.
#[derive(Debug, Clone)]
pub struct DatabaseDestinationSettings {
    /// The database the tables are loaded into.
    pub postgres: PostgresSettings,
    /// The Opal server the tables are registered with.
    pub opal: OpalConfig,
}

/// `DESTINATION_POSTGRESQL_*`.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `DESTINATION_POSTGRESQL_HOST`.
    pub host: String,
    /// `DESTINATION_POSTGRESQL_PORT` (5432).
    pub port: u16,
    /// `DESTINATION_POSTGRESQL_DATABASE`.
    pub database: String,
    /// `DESTINATION_POSTGRESQL_USERNAME`: the writer.
    pub username: String,
    /// `DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME`.
    pub password_secret: SecretName,
    /// `DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME`: the role Opal's resources read as.
    pub reader_username: String,
    /// `DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME`.
    pub reader_password_secret: SecretName,
    /// `DESTINATION_POSTGRESQL_TLS`.
    pub tls: SqlTls,
    /// `DESTINATION_POSTGRESQL_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS` also bounds connecting to it.
    pub connect_timeout: Duration,
}

/// `DESTINATION_OPAL_*`.
#[derive(Debug, Clone)]
pub struct OpalConfig {
    /// `DESTINATION_OPAL_HOST`, e.g. `https://opal.example.org`.
    pub url: String,
    /// `DESTINATION_OPAL_USERNAME`.
    pub username: String,
    /// `DESTINATION_OPAL_PASSWORD_SECRET_NAME`.
    pub password_secret: SecretName,
    /// Not `DESTINATION_OPAL_NO_SSL_VERIFY`.
    pub verify_tls: bool,
    /// `DESTINATION_OPAL_CA_FILE`.
    pub ca_file: Option<PathBuf>,
}

/// The HTTP server's settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Where to listen.
    pub bind_addr: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A client must send a request's headers within this time, also on an idle keep-alive
    /// connection, or the connection is closed.
    pub header_read_timeout: Duration,
    /// On SIGTERM, how long running operations may take to reach their end before they are
    /// stopped (answering 503); shorter than Kubernetes' default 30 s.
    pub shutdown_grace: Duration,
    /// Packages, publishes and validates running at once; beyond it the answer is 503 with
    /// `Retry-After` (each package holds ~200 MB).
    pub max_concurrent_operations: usize,
    /// How long an operation may take to reach its commit point (the workflow's `Interrupt`);
    /// the Approval Service waits one hour.
    pub operation_timeout: Duration,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Lines or JSON.
    pub format: LogFormat,
    /// tracing-subscriber filter syntax.
    pub filter: String,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The variable (or config-file key).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads settings from the process environment (and the file it names).
    pub fn from_environment() -> Result<Self, ConfigError> {
        #[allow(clippy::disallowed_methods)] // the one place configuration is read
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load(env)
    }

    /// Loads settings from the given environment (and the file it names). Tests pass their own.
    pub fn load(env: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        let file = env
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("PUBLISH_CONFIG_FILE"))
            .map(|(_, v)| v.clone());
        if let Some(path) = &file {
            if !std::path::Path::new(path).is_file() {
                return Err(bad(
                    "PUBLISH_CONFIG_FILE",
                    format!("{path:?} does not exist or is not a file"),
                ));
            }
            builder = builder.add_source(config::File::new(path, config::FileFormat::Toml));
        }
        let merged = builder
            .add_source(config::Environment::default().source(Some(env.into_iter().collect())))
            .build()
            .map_err(|e| bad("PUBLISH_CONFIG_FILE", e.to_string()))?;
        let raw: BTreeMap<String, String> = merged
            .try_deserialize::<HashMap<String, config::Value>>()
            .map_err(|e| bad("PUBLISH_CONFIG_FILE", e.to_string()))?
            .into_iter()
            .filter_map(|(k, v)| v.into_string().ok().map(|v| (k.to_ascii_uppercase(), v)))
            .collect();
        Self::from_map(&raw)
    }

    fn from_map(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let raw = Raw(raw);
        let working_dir = PathBuf::from(
            raw.get("DLTHUB_PIPELINE_WORKING_DIR")
                .unwrap_or("/home/appuser/dlt/pipelines"),
        );
        Ok(Self {
            http: raw.http()?,
            log: raw.log()?,
            secrets_dir: PathBuf::from(raw.get("SECRETS_MNT_PATH").unwrap_or("./secrets")),
            destinations: raw.destinations()?,
            allowed_hosts: HostAllowList::parse(
                raw.get("PUBLISH_ALLOWED_SOURCE_HOSTS")
                    .unwrap_or(HostAllowList::DEFAULT),
            )
            .map_err(|e| bad("PUBLISH_ALLOWED_SOURCE_HOSTS", e.to_string()))?,
            workflow: WorkflowOptions {
                hash_algorithm: raw.hash_algorithm()?,
                force_copy: raw.switch("PUBLISH_FORCE_COPY", false)?,
                bag: raw.bag()?,
                ..WorkflowOptions::default()
            },
            source: raw.source()?,
            sql: raw.sql()?,
            sink: raw.sink(&working_dir)?,
            database: raw.database()?,
            warnings: raw.warnings(),
            working_dir,
        })
    }
}

/// The merged raw settings, upper-case keys, with typed readers that name the key on error.
struct Raw<'a>(&'a BTreeMap<String, String>);

impl Raw<'_> {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn num(&self, k: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad(k, format!("{v:?} is not a whole number"))),
        }
    }

    /// A whole number within `range`.
    fn bounded(
        &self,
        k: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n = self.num(k, default)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(bad(
                k,
                format!("must be between {} and {}", range.start(), range.end()),
            ))
        }
    }

    fn secs(&self, k: &str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.num(k, default.as_secs())?))
    }

    fn switch(&self, k: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(k).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("false" | "0" | "no") => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some(other) => Err(bad(k, format!("{other:?}: use true or false"))),
        }
    }

    fn http(&self) -> Result<HttpSettings, ConfigError> {
        let bind_addr = self
            .get("PUBLISH_BIND_ADDR")
            .unwrap_or("0.0.0.0:8003")
            .parse::<SocketAddr>()
            .map_err(|_| {
                bad(
                    "PUBLISH_BIND_ADDR",
                    "expected an address like 0.0.0.0:8003 or 127.0.0.1:0",
                )
            })?;
        Ok(HttpSettings {
            bind_addr,
            max_body_bytes: self.num("PUBLISH_MAX_BODY_BYTES", 1024 * 1024)? as usize,
            header_read_timeout: Duration::from_secs(self.bounded(
                "PUBLISH_HEADER_READ_TIMEOUT_SECS",
                10,
                1..=3600,
            )?),
            shutdown_grace: self.secs("PUBLISH_SHUTDOWN_GRACE_SECS", Duration::from_secs(25))?,
            max_concurrent_operations: self.bounded(
                "PUBLISH_MAX_CONCURRENT_OPERATIONS",
                4,
                1..=256,
            )? as usize,
            operation_timeout: self
                .secs("PUBLISH_OPERATION_TIMEOUT_SECS", Duration::from_secs(3600))?,
        })
    }

    fn log(&self) -> Result<LogSettings, ConfigError> {
        let format = match self
            .get("PUBLISH_LOG_FORMAT")
            .or(self.get("RUST_LOG_FORMAT"))
            .unwrap_or("text")
            .to_ascii_lowercase()
            .as_str()
        {
            "text" | "pretty" | "human" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "PUBLISH_LOG_FORMAT",
                    format!("{other:?}: use text or json"),
                ));
            }
        };
        Ok(LogSettings {
            format,
            filter: self.get("RUST_LOG").unwrap_or("info").to_owned(),
        })
    }

    fn destinations(&self) -> Result<Destinations, ConfigError> {
        Destinations::from_env_vars(
            self.0
                .iter()
                .filter(|(k, _)| k.starts_with("TARGET_STORAGE_ACCOUNT_"))
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .map_err(|e| bad("TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH", e.to_string()))
    }

    /// The PostgreSQL destination and Opal: all of their required variables, or none.
    fn database(&self) -> Result<Option<DatabaseDestinationSettings>, ConfigError> {
        const REQUIRED: [&str; 9] = [
            "DESTINATION_POSTGRESQL_HOST",
            "DESTINATION_POSTGRESQL_DATABASE",
            "DESTINATION_POSTGRESQL_USERNAME",
            "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
            "DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME",
            "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
            "DESTINATION_OPAL_HOST",
            "DESTINATION_OPAL_USERNAME",
            "DESTINATION_OPAL_PASSWORD_SECRET_NAME",
        ];
        let set: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| self.get(k).is_some())
            .collect();
        if set.is_empty() {
            return Ok(None);
        }
        if let Some(missing) = REQUIRED.iter().find(|k| self.get(k).is_none()) {
            return Err(bad(
                missing,
                format!(
                    "missing: the postgresql destination is configured ({} set) and also needs {}",
                    set.join(", "),
                    REQUIRED
                        .iter()
                        .filter(|k| self.get(k).is_none())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let value = |k: &str| self.get(k).unwrap_or_default().to_owned();
        let secret = |k: &str| {
            SecretName::parse(&value(k))
                .map_err(|e| bad(k, format!("{e} (a file name under SECRETS_MNT_PATH)")))
        };
        let ca_file = |k: &str| -> Result<Option<PathBuf>, ConfigError> {
            let path = self.get(k).map(PathBuf::from);
            match &path {
                Some(p) if !p.is_file() => Err(bad(
                    k,
                    format!("{} does not exist or is not a file", p.display()),
                )),
                _ => Ok(path),
            }
        };
        let port = self.bounded("DESTINATION_POSTGRESQL_PORT", 5432, 1..=65_535)? as u16;
        let tls = match self.get("DESTINATION_POSTGRESQL_TLS") {
            None => SqlTls::Prefer,
            Some(v) => {
                SqlTls::parse_destination(v).map_err(|e| bad("DESTINATION_POSTGRESQL_TLS", e))?
            }
        };
        let postgres_ca = ca_file("DESTINATION_POSTGRESQL_CA_FILE")?;
        if postgres_ca.is_some() && tls != SqlTls::VerifyFull {
            return Err(bad(
                "DESTINATION_POSTGRESQL_CA_FILE",
                "a CA file is used only with DESTINATION_POSTGRESQL_TLS=verify-full",
            ));
        }
        let url = value("DESTINATION_OPAL_HOST");
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(bad(
                "DESTINATION_OPAL_HOST",
                format!("{url:?} must be Opal's address, e.g. https://opal.example.org"),
            ));
        }
        Ok(Some(DatabaseDestinationSettings {
            postgres: PostgresSettings {
                host: value("DESTINATION_POSTGRESQL_HOST"),
                port,
                database: value("DESTINATION_POSTGRESQL_DATABASE"),
                username: value("DESTINATION_POSTGRESQL_USERNAME"),
                password_secret: secret("DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME")?,
                reader_username: value("DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME"),
                reader_password_secret: secret(
                    "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
                )?,
                tls,
                ca_file: postgres_ca,
                connect_timeout: self.secs(
                    "PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS",
                    Duration::from_secs(120),
                )?,
            },
            opal: OpalConfig {
                url,
                username: value("DESTINATION_OPAL_USERNAME"),
                password_secret: secret("DESTINATION_OPAL_PASSWORD_SECRET_NAME")?,
                verify_tls: !self.switch("DESTINATION_OPAL_NO_SSL_VERIFY", false)?,
                ca_file: ca_file("DESTINATION_OPAL_CA_FILE")?,
            },
        }))
    }

    /// Variables that are valid but probably not what was meant.
    fn warnings(&self) -> Vec<String> {
        self.0
            .keys()
            .filter_map(|k| {
                let name = k
                    .strip_prefix("TARGET_STORAGE_ACCOUNT_")?
                    .strip_suffix("_MNT_PATH")?;
                (!name.ends_with("_SDE") && !name.is_empty()).then(|| {
                    format!(
                        "{k} is not read: destinations are TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH; \
                         did you mean TARGET_STORAGE_ACCOUNT_{name}_SDE_MNT_PATH?"
                    )
                })
            })
            .collect()
    }

    /// The BagIt bag publish writes (`PUBLISH_BAGIT`, `PUBLISH_BAG_SOURCE_ORGANIZATION`).
    fn bag(&self) -> Result<Option<BagInfo>, ConfigError> {
        if !self.switch("PUBLISH_BAGIT", true)? {
            return Ok(None);
        }
        let organization = self
            .get("PUBLISH_BAG_SOURCE_ORGANIZATION")
            .map(str::to_owned);
        BagInfo::new(
            organization,
            concat!("cr8tor-publish-service/", env!("CARGO_PKG_VERSION")).to_owned(),
        )
        .map(Some)
        .map_err(|e| bad("PUBLISH_BAG_SOURCE_ORGANIZATION", e))
    }

    fn hash_algorithm(&self) -> Result<HashAlgorithm, ConfigError> {
        let algorithm = self.get("PUBLISH_HASH_ALGORITHM").unwrap_or("sha512");
        algorithm.parse::<HashAlgorithm>().map_err(|_| {
            bad(
                "PUBLISH_HASH_ALGORITHM",
                format!("{algorithm:?}: use sha512 or sha3-512"),
            )
        })
    }

    fn source(&self) -> Result<DatabricksOptions, ConfigError> {
        let defaults = DatabricksOptions::default();
        Ok(DatabricksOptions {
            request_timeout: self.secs(
                "PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS",
                defaults.request_timeout,
            )?,
            overall_timeout: self
                .secs("PUBLISH_STATEMENT_TIMEOUT_SECS", defaults.overall_timeout)?,
            max_parallel_downloads: self.bounded(
                "PUBLISH_PARALLEL_DOWNLOADS",
                defaults.max_parallel_downloads as u64,
                1..=64,
            )? as usize,
            download_budget: DownloadBudget::new(
                self.bounded(
                    "PUBLISH_DOWNLOAD_BUDGET_MIB",
                    defaults.download_budget.bytes() >> 20,
                    1..=65_536,
                )? << 20,
            ),
            lz4_compression: self.switch("PUBLISH_DATABRICKS_LZ4", defaults.lz4_compression)?,
            token_source: self.token_source()?,
            parallel_parts: self.bounded(
                "PUBLISH_PARALLEL_PARTS",
                defaults.parallel_parts as u64,
                1..=16,
            )? as usize,
            ..defaults
        })
    }

    fn sql(&self) -> Result<SqlOptions, ConfigError> {
        let defaults = SqlOptions::default();
        let tls = match self.get("PUBLISH_SQL_TLS") {
            None => defaults.tls,
            Some(v) => SqlTls::parse(v).map_err(|e| bad("PUBLISH_SQL_TLS", e))?,
        };
        let ca_file = self.get("PUBLISH_SQL_CA_FILE").map(PathBuf::from);
        if let Some(path) = &ca_file
            && !path.is_file()
        {
            return Err(bad(
                "PUBLISH_SQL_CA_FILE",
                format!("{} does not exist or is not a file", path.display()),
            ));
        }
        Ok(SqlOptions {
            tls,
            ca_file,
            batch_rows: self.bounded(
                "PUBLISH_SQL_BATCH_ROWS",
                defaults.batch_rows as u64,
                1..=1_048_576,
            )? as usize,
            connect_timeout: self.secs(
                "PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS",
                defaults.connect_timeout,
            )?,
            ..defaults
        })
    }

    fn token_source(&self) -> Result<TokenSource, ConfigError> {
        match self.get("PUBLISH_DATABRICKS_AUTH").unwrap_or("databricks") {
            "databricks" => Ok(TokenSource::Databricks),
            "entra-id" => {
                let tenant = self.get("PUBLISH_ENTRA_TENANT_ID").ok_or_else(|| {
                    bad(
                        "PUBLISH_ENTRA_TENANT_ID",
                        "required with PUBLISH_DATABRICKS_AUTH=entra-id: the directory (tenant) \
                         id of the service principal"
                            .to_owned(),
                    )
                })?;
                let authority = self
                    .get("PUBLISH_ENTRA_AUTHORITY")
                    .unwrap_or(publish_databricks::ENTRA_PUBLIC_AUTHORITY);
                TokenSource::entra_id_at(authority, tenant).map_err(|why| match why {
                    EntraIdError::Authority(_) => bad("PUBLISH_ENTRA_AUTHORITY", why.to_string()),
                    _ => bad("PUBLISH_ENTRA_TENANT_ID", why.to_string()),
                })
            }
            other => Err(bad(
                "PUBLISH_DATABRICKS_AUTH",
                format!("{other:?}: use databricks or entra-id"),
            )),
        }
    }

    fn sink(&self, working_dir: &std::path::Path) -> Result<SinkOptions, ConfigError> {
        let duckdb_threads = match self.get("PUBLISH_DUCKDB_THREADS") {
            None => None,
            Some(_) => Some(self.num("PUBLISH_DUCKDB_THREADS", 0)? as usize).filter(|n| *n > 0),
        };
        Ok(SinkOptions {
            scratch_dir: Some(working_dir.join("duckdb_tmp")),
            duckdb_threads,
            duckdb_memory_limit: Some(
                self.get("PUBLISH_DUCKDB_MEMORY_LIMIT")
                    .unwrap_or("256MB")
                    .to_owned(),
            ),
            ..SinkOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults() {
        let s = load(&[]).unwrap();
        assert_eq!(s.http.bind_addr.to_string(), "0.0.0.0:8003");
        assert_eq!(s.secrets_dir, PathBuf::from("./secrets"));
        assert_eq!(s.http.max_body_bytes, 1024 * 1024);
        assert_eq!(s.source.request_timeout, Duration::from_secs(120));
        assert_eq!(s.source.overall_timeout, Duration::from_secs(3600));
        assert_eq!(s.http.operation_timeout, Duration::from_secs(3600));
        assert_eq!(s.workflow.hash_algorithm, HashAlgorithm::Sha512);
        assert_eq!(s.log.format, LogFormat::Text);
        assert!(s.source.lz4_compression, "LZ4 results by default");
        assert!(!s.workflow.force_copy);
        let names: Vec<String> = s
            .destinations
            .iter()
            .map(|d| d.name().to_string())
            .collect();
        assert_eq!(names, ["LSC", "NW"]);
    }

    #[test]
    fn rejections_name_the_variable() {
        for (k, v) in [
            ("PUBLISH_BIND_ADDR", "nope"),
            ("PUBLISH_LOG_FORMAT", "xml"),
            ("PUBLISH_HASH_ALGORITHM", "md5"),
            ("PUBLISH_PARALLEL_DOWNLOADS", "0"),
            ("PUBLISH_DOWNLOAD_BUDGET_MIB", "0"),
            ("PUBLISH_MAX_BODY_BYTES", "-1"),
            ("PUBLISH_ALLOWED_SOURCE_HOSTS", "ftp://x"),
            ("PUBLISH_CONFIG_FILE", "/nonexistent/file.toml"),
            ("PUBLISH_DATABRICKS_LZ4", "maybe"),
            ("PUBLISH_SQL_TLS", "prefer"),
            ("PUBLISH_SQL_CA_FILE", "/nonexistent/ca.pem"),
            ("PUBLISH_SQL_BATCH_ROWS", "0"),
            ("PUBLISH_FORCE_COPY", "2"),
            ("PUBLISH_STATEMENT_TIMEOUT_SECS", "soon"),
            ("PUBLISH_MAX_CONCURRENT_OPERATIONS", "0"),
            ("PUBLISH_HEADER_READ_TIMEOUT_SECS", "0"),
            ("PUBLISH_DATABRICKS_AUTH", "azure"),
            ("PUBLISH_PARALLEL_PARTS", "0"),
            ("PUBLISH_PARALLEL_PARTS", "17"),
        ] {
            let err = load(&[(k, v)]).unwrap_err();
            assert_eq!(err.key, k, "{err}");
        }
    }

    /// K8TRE's configuration of the PostgreSQL destination (postgresql-destination.md), as it
    /// is: every variable read under the reference's name, the port defaulted, TLS as libpq's
    /// default, Opal verified.
    const K8TRE: [(&str, &str); 10] = [
        (
            "DESTINATION_POSTGRESQL_HOST",
            "datashield-postgres-cluster-rw.datashield.svc.cluster.local",
        ),
        ("DESTINATION_POSTGRESQL_PORT", "5432"),
        ("DESTINATION_POSTGRESQL_DATABASE", "opal-resource-db"),
        ("DESTINATION_POSTGRESQL_USERNAME", "writer"),
        (
            "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
            "pgwriterpassword",
        ),
        ("DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME", "writer"),
        (
            "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME",
            "pgwriterpassword",
        ),
        ("DESTINATION_OPAL_HOST", "https://opal.k8tre.example"),
        ("DESTINATION_OPAL_USERNAME", "administrator"),
        ("DESTINATION_OPAL_PASSWORD_SECRET_NAME", "opaladminpassword"),
    ];

    #[test]
    fn the_postgresql_destination_from_k8tres_variables() {
        assert!(
            load(&[]).unwrap().database.is_none(),
            "off unless configured"
        );
        let mut k8tre = K8TRE.to_vec();
        k8tre.push(("DESTINATION_OPAL_NO_SSL_VERIFY", "false"));
        let s = load(&k8tre).unwrap();
        let d = s.database.unwrap();
        assert_eq!(d.postgres.host, K8TRE[0].1);
        assert_eq!(
            (d.postgres.port, d.postgres.database.as_str()),
            (5432, "opal-resource-db")
        );
        assert_eq!(
            d.postgres.tls,
            SqlTls::Prefer,
            "libpq's default, as the reference"
        );
        assert_eq!(
            d.postgres.reader_password_secret.as_str(),
            "pgwriterpassword"
        );
        assert!(d.opal.verify_tls);
        let without_port: Vec<_> = K8TRE
            .iter()
            .copied()
            .filter(|(k, _)| !k.ends_with("_PORT"))
            .collect();
        assert_eq!(
            load(&without_port).unwrap().database.unwrap().postgres.port,
            5432
        );
        let mut off = K8TRE.to_vec();
        off.push(("DESTINATION_OPAL_NO_SSL_VERIFY", "true"));
        assert!(!load(&off).unwrap().database.unwrap().opal.verify_tls);
    }

    #[test]
    fn an_incomplete_or_wrong_postgresql_destination_is_refused_naming_the_variable() {
        for missing in K8TRE
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !k.ends_with("_PORT"))
        {
            let partial: Vec<_> = K8TRE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = load(&partial).unwrap_err();
            assert_eq!(err.key, missing, "{err}");
            assert!(err.message.contains("missing"), "{err}");
        }
        for (k, v) in [
            ("DESTINATION_POSTGRESQL_PORT", "70000"),
            ("DESTINATION_POSTGRESQL_TLS", "require-ish"),
            (
                "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME",
                "../etc/passwd",
            ),
            ("DESTINATION_OPAL_HOST", "opal.example"),
            ("DESTINATION_OPAL_NO_SSL_VERIFY", "perhaps"),
            ("DESTINATION_POSTGRESQL_CA_FILE", "/nonexistent/ca.pem"),
            ("DESTINATION_OPAL_CA_FILE", "/nonexistent/ca.pem"),
        ] {
            let mut env: Vec<_> = K8TRE.iter().copied().filter(|(key, _)| *key != k).collect();
            env.push((k, v));
            let err = load(&env).unwrap_err();
            assert_eq!(err.key, k, "{err}");
        }
    }

    /// K8TRE sets `TARGET_STORAGE_ACCOUNT_K8TRE_MNT_PATH`, which names no destination: the
    /// start-up log says so and what was probably meant.
    #[test]
    fn a_mount_variable_that_is_never_read_is_named_in_a_warning() {
        let s = load(&[("TARGET_STORAGE_ACCOUNT_K8TRE_MNT_PATH", "/mnt/k8tre")]).unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("TARGET_STORAGE_ACCOUNT_K8TRE_SDE_MNT_PATH"),
            "{:?}",
            s.warnings
        );
        assert!(
            load(&[("TARGET_STORAGE_ACCOUNT_LSC_SDE_MNT_PATH", "/mnt/lsc")])
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    /// The per-call timeout and the statement wait are separate settings; neither is the
    /// operation timeout.
    #[test]
    fn the_timeouts_are_separate() {
        let s = load(&[
            ("PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS", "30"),
            ("PUBLISH_STATEMENT_TIMEOUT_SECS", "900"),
            ("PUBLISH_OPERATION_TIMEOUT_SECS", "1800"),
        ])
        .unwrap();
        assert_eq!(s.source.request_timeout, Duration::from_secs(30));
        assert_eq!(s.source.overall_timeout, Duration::from_secs(900));
        assert_eq!(s.http.operation_timeout, Duration::from_secs(1800));
        assert_eq!(load(&[]).unwrap().source.parallel_parts, 2);
        assert_eq!(
            load(&[("PUBLISH_PARALLEL_PARTS", "4")])
                .unwrap()
                .source
                .parallel_parts,
            4
        );
    }

    #[test]
    fn sql_sources() {
        let s = load(&[]).unwrap();
        assert_eq!(s.sql.tls, SqlTls::VerifyFull, "TLS verified by default");
        assert_eq!((s.sql.ca_file, s.sql.batch_rows), (None, 65_536));
        let ca = tempfile::NamedTempFile::new().unwrap();
        let path = ca.path().to_string_lossy().into_owned();
        let s = load(&[
            ("PUBLISH_SQL_TLS", "disable"),
            ("PUBLISH_SQL_CA_FILE", path.as_str()),
            ("PUBLISH_SQL_BATCH_ROWS", "1000"),
            ("PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS", "7"),
        ])
        .unwrap();
        assert_eq!(s.sql.tls, SqlTls::Disable);
        assert_eq!(s.sql.ca_file.as_deref(), Some(ca.path()));
        assert_eq!(s.sql.batch_rows, 1000);
        assert_eq!(s.sql.connect_timeout, Duration::from_secs(7));
    }

    #[test]
    fn entra_id_tokens() {
        assert_eq!(
            load(&[]).unwrap().source.token_source,
            TokenSource::Databricks
        );
        let s = load(&[
            ("PUBLISH_DATABRICKS_AUTH", "entra-id"),
            ("PUBLISH_ENTRA_TENANT_ID", "contoso.onmicrosoft.com"),
        ])
        .unwrap();
        assert_eq!(
            s.source.token_source,
            TokenSource::EntraId {
                authority: "https://login.microsoftonline.com".into(),
                tenant: "contoso.onmicrosoft.com".into()
            }
        );
        let err = load(&[("PUBLISH_DATABRICKS_AUTH", "entra-id")]).unwrap_err();
        assert_eq!(
            err.key, "PUBLISH_ENTRA_TENANT_ID",
            "a tenant is required: {err}"
        );
        let err = load(&[
            ("PUBLISH_DATABRICKS_AUTH", "entra-id"),
            ("PUBLISH_ENTRA_TENANT_ID", "a/b"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "PUBLISH_ENTRA_TENANT_ID", "{err}");
        let err = load(&[
            ("PUBLISH_DATABRICKS_AUTH", "entra-id"),
            ("PUBLISH_ENTRA_TENANT_ID", "t"),
            ("PUBLISH_ENTRA_AUTHORITY", "login.microsoftonline.com"),
        ])
        .unwrap_err();
        assert_eq!(err.key, "PUBLISH_ENTRA_AUTHORITY", "{err}");
    }

    #[test]
    fn switches() {
        for (v, want) in [
            ("false", false),
            ("0", false),
            ("NO", false),
            ("True", true),
        ] {
            let s = load(&[("PUBLISH_DATABRICKS_LZ4", v)]).unwrap();
            assert_eq!(s.source.lz4_compression, want, "{v}");
        }
    }

    #[test]
    fn file_under_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("publish.toml");
        std::fs::write(
            &file,
            "publish_bind_addr = \"127.0.0.1:9000\"\nTARGET_STORAGE_ACCOUNT_XYZ_SDE_MNT_PATH = \"/mnt/xyz\"\npublish_log_format = \"json\"\n",
        )
        .unwrap();
        let s = load(&[
            ("PUBLISH_CONFIG_FILE", file.to_str().unwrap()),
            ("PUBLISH_LOG_FORMAT", "text"),
        ])
        .unwrap();
        assert_eq!(s.http.bind_addr.to_string(), "127.0.0.1:9000");
        assert_eq!(
            s.log.format,
            LogFormat::Text,
            "environment wins over the file"
        );
        assert!(s.destinations.iter().any(|d| d.name().as_str() == "XYZ"));
    }
}
