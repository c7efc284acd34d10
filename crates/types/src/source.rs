//! Source descriptions: the kind of source, its URL, and the allow-list of hosts the service
//! may send service-principal credentials to.

use std::fmt;

use crate::error::ParseError;

/// Kinds of source the service can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// Databricks SQL warehouse + Unity Catalog (`DatabricksSQL`, any case).
    DatabricksSql,
    /// A PostgreSQL database (`postgresql` or `postgres`).
    Postgresql,
    /// A MySQL or MariaDB database (`mysql` or `mariadb`).
    Mysql,
}

impl SourceKind {
    /// The source types this service reads, for messages.
    pub const SUPPORTED: &'static str = "DatabricksSQL, postgresql, mysql";

    /// Parses a case-insensitive source type; other known CR8TOR source types get a clear
    /// "not supported by this service yet".
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        match value.to_ascii_lowercase().as_str() {
            "databrickssql" => Ok(Self::DatabricksSql),
            "postgresql" | "postgres" => Ok(Self::Postgresql),
            "mysql" | "mariadb" => Ok(Self::Mysql),
            "mssql" | "sqlserver" => Err(ParseError::SourceType(format!(
                "source type {value:?} (SQL Server) is not supported by this service yet; \
                 supported source types: {}",
                Self::SUPPORTED
            ))),
            _ => Err(ParseError::SourceType(format!(
                "source type {value:?} is not supported; supported source types: {}",
                Self::SUPPORTED
            ))),
        }
    }

    /// True for the SQL databases (PostgreSQL, MySQL/MariaDB).
    pub fn is_sql_database(self) -> bool {
        matches!(self, Self::Postgresql | Self::Mysql)
    }

    /// The scheme of this kind's hosts in the allow-list.
    pub fn scheme(self) -> Scheme {
        match self {
            Self::DatabricksSql => Scheme::Https,
            Self::Postgresql => Scheme::Postgresql,
            Self::Mysql => Scheme::Mysql,
        }
    }
}

/// URL scheme of a source host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://` — only ever allowed when configured explicitly (local emulator).
    Http,
    /// `https://`.
    Https,
    /// `postgresql://` — a PostgreSQL server (port 5432 by default).
    Postgresql,
    /// `mysql://` — a MySQL or MariaDB server (port 3306 by default).
    Mysql,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
            Self::Postgresql => 5432,
            Self::Mysql => 3306,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Postgresql => "postgresql",
            Self::Mysql => "mysql",
        }
    }

    /// The scheme a URL or allow-list entry starts with, and the rest; `postgres://` and
    /// `mariadb://` are accepted spellings.
    fn strip(lower: &str) -> Option<(Self, &str)> {
        [
            ("https://", Self::Https),
            ("http://", Self::Http),
            ("postgresql://", Self::Postgresql),
            ("postgres://", Self::Postgresql),
            ("mysql://", Self::Mysql),
            ("mariadb://", Self::Mysql),
        ]
        .into_iter()
        .find_map(|(prefix, scheme)| lower.strip_prefix(prefix).map(|rest| (scheme, rest)))
    }
}

/// A source workspace URL reduced to scheme, host and port (no user info, path or query).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostUrl {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl HostUrl {
    /// Parses `scheme://host[:port][/]`. The port comes from the URL, else from `port`, else
    /// the scheme's default.
    pub fn parse(text: &str, port: Option<u16>) -> Result<Self, ParseError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = match Scheme::strip(&lower) {
            Some((scheme @ (Scheme::Http | Scheme::Https), rest)) => (scheme, rest),
            _ => {
                return Err(ParseError::HostUrl(format!(
                    "{text:?} must start with https://"
                )));
            }
        };
        Self::authority(text, scheme, rest, port).map_err(ParseError::HostUrl)
    }

    /// Parses a SQL database server's address: `host[:port]`, or the same after
    /// `postgresql://` / `mysql://` (the scheme must be `scheme`'s). The port comes from the
    /// address, else from `port`, else the scheme's default.
    pub fn parse_database(
        text: &str,
        scheme: Scheme,
        port: Option<u16>,
    ) -> Result<Self, ParseError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let rest = match Scheme::strip(&lower) {
            None => lower.as_str(),
            Some((given, rest)) if given == scheme => rest,
            Some(_) => {
                return Err(ParseError::HostUrl(format!(
                    "{text:?} must be the database server's host name (or {}://host)",
                    scheme.as_str()
                )));
            }
        };
        Self::authority(text, scheme, rest, port).map_err(ParseError::HostUrl)
    }

    fn authority(
        text: &str,
        scheme: Scheme,
        rest: &str,
        port: Option<u16>,
    ) -> Result<Self, String> {
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@', '\\']) || authority.is_empty() {
            let what = match scheme {
                Scheme::Http | Scheme::Https => {
                    "the workspace address, e.g. https://adb-123.azuredatabricks.net"
                }
                Scheme::Postgresql | Scheme::Mysql => {
                    "the database server's host name, e.g. db.internal.example"
                }
            };
            return Err(format!("{text:?} must be just {what}"));
        }
        let (host, url_port) = split_host_port(authority)
            .ok_or_else(|| format!("{text:?} has an invalid host or port"))?;
        let port = match (url_port, port) {
            (Some(p), _) => p,
            (None, Some(p)) => p,
            (None, None) => scheme.default_port(),
        };
        if port == 0 {
            return Err(format!("{text:?} has port 0"));
        }
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name (lower-case), without brackets for IPv6.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `scheme://host[:port]`, the port left out when it is the scheme's default.
    pub fn origin(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            format!("{}://{host}", self.scheme.as_str())
        } else {
            format!("{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }
}

impl fmt::Display for HostUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

/// Splits `host[:port]` / `[v6][:port]`; validates the host's characters.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        if !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return None;
        }
        (host, &rest[end + 1..])
    } else {
        match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        }
    };
    let port = match port {
        "" => None,
        p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with(['.', '-'])
        && !host.contains("..");
    host_ok.then_some((host, port))
}

/// One allow-list entry: `[scheme://]host[:port]`, host may start with `*.`, port may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowEntry {
    scheme: Scheme,
    /// Lower-case host, or the suffix after `*.` (with its leading dot) when `wildcard`.
    host: String,
    wildcard: bool,
    /// `None` = any port.
    port: Option<u16>,
    text: String,
}

/// The hosts the service may contact (and send credentials to), from
/// `PUBLISH_ALLOWED_SOURCE_HOSTS`: comma-separated `[scheme://]host[:port]` entries, where host
/// may start with `*.` (one or more labels) and port may be `*`. The scheme is `https` (the
/// default), `http`, `postgresql` or `mysql` (which also covers MariaDB); an entry allows only
/// its scheme, and an entry without a port only the scheme's default port (443, 80, 5432,
/// 3306). So `postgresql://*.postgres.database.azure.com` allows Azure's PostgreSQL servers
/// on 5432, and no Databricks default entry ever allows a database server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAllowList {
    entries: Vec<AllowEntry>,
}

impl HostAllowList {
    /// The default: Azure, AWS and GCP Databricks workspaces over https.
    pub const DEFAULT: &'static str =
        "*.azuredatabricks.net,*.cloud.databricks.com,*.gcp.databricks.com";

    /// Parses a comma-separated list; empty entries are skipped.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut entries = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            entries.push(parse_entry(raw).map_err(ParseError::AllowList)?);
        }
        Ok(Self { entries })
    }

    /// True when `url` may be contacted.
    pub fn allows(&self, url: &HostUrl) -> bool {
        self.entries.iter().any(|e| {
            e.scheme == url.scheme
                && e.port.is_none_or(|p| p == url.port)
                && if e.wildcard {
                    url.host.len() > e.host.len() && url.host.ends_with(&e.host)
                } else {
                    url.host == e.host
                }
        })
    }

    /// Admits `url` when the list allows it. The [`AllowedHost`] this returns is the only way
    /// to configure a source's host, so the list is checked once, where the service decides
    /// (before any credential is read), and nothing downstream can skip or repeat it.
    pub fn admit(&self, url: &HostUrl) -> Result<AllowedHost, HostRefused> {
        if self.allows(url) {
            Ok(AllowedHost(url.clone()))
        } else {
            Err(HostRefused {
                host: url.origin(),
                allowed: self.describe(),
            })
        }
    }

    /// The entries as configured, for error messages.
    pub fn describe(&self) -> String {
        if self.entries.is_empty() {
            return "none".to_owned();
        }
        self.entries
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A host an allow-list admitted: made only by [`HostAllowList::admit`]. Sources take their
/// host as one, so a source cannot be pointed at a host the service's list refuses. Reads as
/// the [`HostUrl`] it wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost(HostUrl);

impl std::ops::Deref for AllowedHost {
    type Target = HostUrl;

    fn deref(&self) -> &HostUrl {
        &self.0
    }
}

/// A host the allow-list does not admit ([`HostAllowList::admit`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} is not an allowed source host (allowed: {allowed})")]
pub struct HostRefused {
    /// The refused host's origin, e.g. `https://db.example:443`.
    pub host: String,
    /// The allow-list's entries as configured ([`HostAllowList::describe`]).
    pub allowed: String,
}

impl Default for HostAllowList {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // a constant, covered by a test
        Self::parse(Self::DEFAULT).expect("default allow-list parses")
    }
}

fn parse_entry(raw: &str) -> Result<AllowEntry, String> {
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest) = match Scheme::strip(&lower) {
        Some(found) => found,
        None if lower.contains("://") => {
            return Err(format!(
                "allowed host {raw:?}: only https://, http://, postgresql:// and mysql:// are \
                 supported"
            ));
        }
        None => (Scheme::Https, lower.as_str()),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host_part, port) = match rest.rsplit_once(':') {
        Some((h, "*")) => (h, None),
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("allowed host {raw:?}: bad port {p:?}"))?,
            ),
        ),
        _ => (rest, Some(scheme.default_port())),
    };
    let (wildcard, host) = match host_part.strip_prefix("*.") {
        Some(suffix) => (true, format!(".{suffix}")),
        None => (
            false,
            host_part
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        ),
    };
    let check = host.trim_start_matches('.');
    if check.is_empty()
        || !check
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(format!("allowed host {raw:?}: invalid host"));
    }
    Ok(AllowEntry {
        scheme,
        host,
        wildcard,
        port,
        text: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> HostUrl {
        HostUrl::parse(s, None).unwrap()
    }

    #[test]
    fn host_urls() {
        let cases: &[(&str, Option<u16>, Result<&str, ()>)] = &[
            (
                "https://my-ws.azuredatabricks.net",
                Some(443),
                Ok("https://my-ws.azuredatabricks.net"),
            ),
            (
                "HTTPS://My-WS.azuredatabricks.net/",
                None,
                Ok("https://my-ws.azuredatabricks.net"),
            ),
            (
                "https://h.example:8443",
                Some(443),
                Ok("https://h.example:8443"),
            ),
            (
                "https://h.example",
                Some(8443),
                Ok("https://h.example:8443"),
            ),
            (
                "http://127.0.0.1:4000",
                Some(443),
                Ok("http://127.0.0.1:4000"),
            ),
            ("http://[::1]:4000", None, Ok("http://[::1]:4000")),
            ("my-ws.azuredatabricks.net", None, Err(())),
            ("ftp://h", None, Err(())),
            ("https://user:pw@h.example", None, Err(())),
            ("https://h.example/path", None, Err(())),
            ("https://h.example?x=1", None, Err(())),
            ("https://", None, Err(())),
            ("https://h.example:99999", None, Err(())),
            ("https://h..example", None, Err(())),
        ];
        for (text, port, want) in cases {
            let got = HostUrl::parse(text, *port)
                .map(|u| u.origin())
                .map_err(|_| ());
            assert_eq!(got.as_deref().map_err(|_| ()), *want, "{text}");
        }
    }

    #[test]
    fn default_allow_list() {
        let list = HostAllowList::default();
        for (u, ok) in [
            ("https://adb-1.azuredatabricks.net", true),
            ("https://a.b.cloud.databricks.com", true),
            ("https://x.gcp.databricks.com", true),
            ("https://azuredatabricks.net", false),
            ("https://evilazuredatabricks.net", false),
            ("https://adb-1.azuredatabricks.net.evil.com", false),
            ("http://adb-1.azuredatabricks.net", false),
            ("https://adb-1.azuredatabricks.net:8443", false),
            ("http://127.0.0.1:8080", false),
        ] {
            assert_eq!(list.allows(&url(u)), ok, "{u}");
        }
    }

    #[test]
    fn configured_allow_list() {
        let list =
            HostAllowList::parse("http://127.0.0.1:*, ws.example:8443,https://*.corp.example")
                .unwrap();
        for (u, ok) in [
            ("http://127.0.0.1:1234", true),
            ("https://127.0.0.1:1234", false),
            ("http://127.0.0.2:1234", false),
            ("https://ws.example:8443", true),
            ("https://ws.example", false),
            ("https://a.corp.example", true),
            ("https://corp.example", false),
        ] {
            assert_eq!(list.allows(&url(u)), ok, "{u}");
        }
        assert!(HostAllowList::parse("ftp://x").is_err());
        assert!(HostAllowList::parse("x:notaport").is_err());
        assert!(
            !HostAllowList::parse("")
                .unwrap()
                .allows(&url("https://a.azuredatabricks.net"))
        );
    }

    #[test]
    fn source_kinds() {
        assert_eq!(
            SourceKind::parse("DatabricksSQL"),
            Ok(SourceKind::DatabricksSql)
        );
        assert_eq!(
            SourceKind::parse("databrickssql"),
            Ok(SourceKind::DatabricksSql)
        );
        assert_eq!(SourceKind::parse("PostgreSQL"), Ok(SourceKind::Postgresql));
        assert_eq!(SourceKind::parse("MariaDB"), Ok(SourceKind::Mysql));
        assert!(
            SourceKind::parse("mssql")
                .unwrap_err()
                .to_string()
                .contains(
                    "not supported by this service yet; supported source types: DatabricksSQL, \
             postgresql, mysql"
                )
        );
    }

    #[test]
    fn database_hosts_and_their_allow_list_entries() {
        let pg = |t: &str, p| HostUrl::parse_database(t, Scheme::Postgresql, p);
        assert_eq!(
            pg("db.internal.example", Some(5432)).unwrap().origin(),
            "postgresql://db.internal.example"
        );
        assert_eq!(
            pg("postgres://DB.internal.example:6432", None)
                .unwrap()
                .origin(),
            "postgresql://db.internal.example:6432"
        );
        assert_eq!(pg("127.0.0.1", Some(40001)).unwrap().port(), 40001);
        for bad in ["mysql://db", "https://db", "user@db", "db/x", "", "db:0"] {
            assert!(pg(bad, None).is_err(), "{bad}");
        }
        let my = HostUrl::parse_database("db", Scheme::Mysql, None).unwrap();
        assert_eq!(my.origin(), "mysql://db");

        let list = HostAllowList::parse(
            "postgresql://*.postgres.database.azure.com, mysql://127.0.0.1:*, https://db",
        )
        .unwrap();
        for (u, ok) in [
            (pg("a.postgres.database.azure.com", None).unwrap(), true),
            (
                pg("a.postgres.database.azure.com", Some(6432)).unwrap(),
                false,
            ),
            (pg("127.0.0.1", Some(5432)).unwrap(), false),
            (
                HostUrl::parse_database("127.0.0.1", Scheme::Mysql, Some(3)).unwrap(),
                true,
            ),
            (my, false),
            (pg("db", None).unwrap(), false),
        ] {
            assert_eq!(list.allows(&u), ok, "{u}");
        }
        assert!(!HostAllowList::default().allows(&pg("x.azuredatabricks.net", None).unwrap()));
        assert!(HostAllowList::parse("mssql://x").is_err());
    }
}
