//! Configuration: read once at startup, typed and validated before the port is bound.
//!
//! Sources, later ones winning: built-in defaults, an optional TOML file named by
//! `PUBLISH_CONFIG_FILE` (keys are the environment variable names, any case), then the
//! environment. Every error names the variable and the bad value.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use publish_hash::HashAlgorithm;
use publish_storage::Destinations;
use publish_types::HostAllowList;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PUBLISH_BIND_ADDR` [`0.0.0.0:8003`].
    pub bind_addr: SocketAddr,
    /// `SECRETS_MNT_PATH` [`./secrets`].
    pub secrets_dir: PathBuf,
    /// `DLTHUB_PIPELINE_WORKING_DIR` [`/home/appuser/dlt/pipelines`]: scratch space (DuckDB
    /// spill files). Created if missing.
    pub working_dir: PathBuf,
    /// `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH` [LSC `./outputs/lsc-sde`, NW `./outputs/nw-sde`].
    pub destinations: Destinations,
    /// `PUBLISH_ALLOWED_SOURCE_HOSTS`.
    pub allowed_hosts: HostAllowList,
    /// `PUBLISH_LOG_FORMAT` (or `RUST_LOG_FORMAT`) `text`|`json` [`text`].
    pub log_format: LogFormat,
    /// `RUST_LOG` (tracing-subscriber filter syntax) [`info`].
    pub log_filter: String,
    /// `PUBLISH_MAX_BODY_BYTES` [1 MiB].
    pub max_body_bytes: usize,
    /// `PUBLISH_OPERATION_TIMEOUT_SECS` [3600]: overall limit of one package/publish/validate.
    pub operation_timeout: Duration,
    /// `PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS` [120]: limit of one HTTP call to the source.
    pub source_request_timeout: Duration,
    /// `PUBLISH_PARALLEL_DOWNLOADS` [3]: result chunks fetched at once per table.
    pub parallel_downloads: usize,
    /// `PUBLISH_DATABRICKS_LZ4` [true]: ask the warehouse for LZ4-compressed results.
    pub databricks_lz4: bool,
    /// `PUBLISH_DUCKDB_THREADS` [DuckDB's default].
    pub duckdb_threads: Option<usize>,
    /// `PUBLISH_DUCKDB_MEMORY_LIMIT` [`256MB`]: for all packages together, e.g. `1GB`.
    pub duckdb_memory_limit: Option<String>,
    /// `PUBLISH_HASH_ALGORITHM` `sha512`|`sha3-512` [`sha512`].
    pub hash_algorithm: HashAlgorithm,
    /// `PUBLISH_FORCE_COPY` [false]: always copy (never rename) on publish.
    pub force_copy: bool,
    /// `PUBLISH_MAX_CONCURRENT_OPERATIONS` [4]: packages, publishes and validates running at
    /// once; beyond it the answer is 503 with `Retry-After` (each package holds ~200 MB).
    pub max_concurrent_operations: usize,
    /// `PUBLISH_HEADER_READ_TIMEOUT_SECS` [10]: a client must send a request's headers within
    /// this time, also on an idle keep-alive connection, or the connection is closed.
    pub header_read_timeout: Duration,
    /// `PUBLISH_SHUTDOWN_GRACE_SECS` [25]: on SIGTERM, how long running operations may take to
    /// finish before they are stopped (answering 503); shorter than Kubernetes' default 30 s.
    pub shutdown_grace: Duration,
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
        let get = |k: &str| raw.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let parse_num = |k: &str, default: u64| -> Result<u64, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| bad(k, format!("{v:?} is not a whole number"))),
            }
        };
        let bind_addr = get("PUBLISH_BIND_ADDR")
            .unwrap_or("0.0.0.0:8003")
            .parse::<SocketAddr>()
            .map_err(|_| {
                bad(
                    "PUBLISH_BIND_ADDR",
                    "expected an address like 0.0.0.0:8003 or 127.0.0.1:0",
                )
            })?;
        let destinations = Destinations::from_env_vars(
            raw.iter()
                .filter(|(k, _)| k.starts_with("TARGET_STORAGE_ACCOUNT_"))
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .map_err(|e| bad("TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH", e.to_string()))?;
        let allowed_hosts = HostAllowList::parse(
            get("PUBLISH_ALLOWED_SOURCE_HOSTS").unwrap_or(HostAllowList::DEFAULT),
        )
        .map_err(|e| bad("PUBLISH_ALLOWED_SOURCE_HOSTS", e))?;
        let log_format = match get("PUBLISH_LOG_FORMAT")
            .or(get("RUST_LOG_FORMAT"))
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
        let algorithm = get("PUBLISH_HASH_ALGORITHM").unwrap_or("sha512");
        let hash_algorithm = algorithm.parse::<HashAlgorithm>().map_err(|_| {
            bad(
                "PUBLISH_HASH_ALGORITHM",
                format!("{algorithm:?}: use sha512 or sha3-512"),
            )
        })?;
        let parse_bool = |k: &str, default: bool| -> Result<bool, ConfigError> {
            match get(k).map(str::to_ascii_lowercase).as_deref() {
                None => Ok(default),
                Some("false" | "0" | "no") => Ok(false),
                Some("true" | "1" | "yes") => Ok(true),
                Some(other) => Err(bad(k, format!("{other:?}: use true or false"))),
            }
        };
        let force_copy = parse_bool("PUBLISH_FORCE_COPY", false)?;
        let databricks_lz4 = parse_bool("PUBLISH_DATABRICKS_LZ4", true)?;
        let parallel_downloads = parse_num("PUBLISH_PARALLEL_DOWNLOADS", 3)?;
        if parallel_downloads == 0 || parallel_downloads > 64 {
            return Err(bad(
                "PUBLISH_PARALLEL_DOWNLOADS",
                "must be between 1 and 64",
            ));
        }
        let max_concurrent_operations = parse_num("PUBLISH_MAX_CONCURRENT_OPERATIONS", 4)?;
        if max_concurrent_operations == 0 || max_concurrent_operations > 256 {
            return Err(bad(
                "PUBLISH_MAX_CONCURRENT_OPERATIONS",
                "must be between 1 and 256",
            ));
        }
        let header_read_timeout = parse_num("PUBLISH_HEADER_READ_TIMEOUT_SECS", 10)?;
        if header_read_timeout == 0 {
            return Err(bad(
                "PUBLISH_HEADER_READ_TIMEOUT_SECS",
                "must be at least 1 second",
            ));
        }
        let duckdb_threads = match get("PUBLISH_DUCKDB_THREADS") {
            None => None,
            Some(_) => Some(parse_num("PUBLISH_DUCKDB_THREADS", 0)? as usize).filter(|n| *n > 0),
        };
        Ok(Self {
            bind_addr,
            secrets_dir: PathBuf::from(get("SECRETS_MNT_PATH").unwrap_or("./secrets")),
            working_dir: PathBuf::from(
                get("DLTHUB_PIPELINE_WORKING_DIR").unwrap_or("/home/appuser/dlt/pipelines"),
            ),
            destinations,
            allowed_hosts,
            log_format,
            log_filter: get("RUST_LOG").unwrap_or("info").to_owned(),
            max_body_bytes: parse_num("PUBLISH_MAX_BODY_BYTES", 1024 * 1024)? as usize,
            operation_timeout: Duration::from_secs(parse_num(
                "PUBLISH_OPERATION_TIMEOUT_SECS",
                3600,
            )?),
            source_request_timeout: Duration::from_secs(parse_num(
                "PUBLISH_SOURCE_REQUEST_TIMEOUT_SECS",
                120,
            )?),
            parallel_downloads: parallel_downloads as usize,
            databricks_lz4,
            duckdb_threads,
            duckdb_memory_limit: Some(
                get("PUBLISH_DUCKDB_MEMORY_LIMIT")
                    .unwrap_or("256MB")
                    .to_owned(),
            ),
            hash_algorithm,
            force_copy,
            max_concurrent_operations: max_concurrent_operations as usize,
            header_read_timeout: Duration::from_secs(header_read_timeout),
            shutdown_grace: Duration::from_secs(parse_num("PUBLISH_SHUTDOWN_GRACE_SECS", 25)?),
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
        assert_eq!(s.bind_addr.to_string(), "0.0.0.0:8003");
        assert_eq!(s.secrets_dir, PathBuf::from("./secrets"));
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        assert_eq!(s.hash_algorithm, HashAlgorithm::Sha512);
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.databricks_lz4, "LZ4 results by default");
        assert!(!s.force_copy);
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
            ("PUBLISH_MAX_BODY_BYTES", "-1"),
            ("PUBLISH_ALLOWED_SOURCE_HOSTS", "ftp://x"),
            ("PUBLISH_CONFIG_FILE", "/nonexistent/file.toml"),
            ("PUBLISH_DATABRICKS_LZ4", "maybe"),
            ("PUBLISH_FORCE_COPY", "2"),
        ] {
            let err = load(&[(k, v)]).unwrap_err();
            assert_eq!(err.key, k, "{err}");
        }
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
            assert_eq!(s.databricks_lz4, want, "{v}");
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
        assert_eq!(s.bind_addr.to_string(), "127.0.0.1:9000");
        assert_eq!(
            s.log_format,
            LogFormat::Text,
            "environment wins over the file"
        );
        assert!(s.destinations.iter().any(|d| d.name().as_str() == "XYZ"));
    }
}
