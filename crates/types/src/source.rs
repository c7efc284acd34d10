//! Source descriptions: the kind of source, its URL, and the allow-list of hosts the service
//! may send service-principal credentials to.

use std::fmt;

/// Kinds of source the service can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// Databricks SQL warehouse + Unity Catalog (`DatabricksSQL`, any case).
    DatabricksSql,
}

impl SourceKind {
    /// Parses a case-insensitive source type; other known CR8TOR source types get a clear
    /// "not supported by this service yet".
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "databrickssql" => Ok(Self::DatabricksSql),
            "postgresql" | "postgres" | "mysql" | "mariadb" | "mssql" | "sqlserver" => {
                Err(format!(
                    "source type {value:?} (a SQL database) is not supported by this service yet; \
                 supported source types: DatabricksSQL"
                ))
            }
            _ => Err(format!(
                "source type {value:?} is not supported; supported source types: DatabricksSQL"
            )),
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
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
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
    pub fn parse(text: &str, port: Option<u16>) -> Result<Self, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("{text:?} must start with https://"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@', '\\']) || authority.is_empty() {
            return Err(format!(
                "{text:?} must be just the workspace address, e.g. https://adb-123.azuredatabricks.net"
            ));
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
/// may start with `*.` (one or more labels) and port may be `*`. The scheme defaults to https,
/// and an entry without a port allows only the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAllowList {
    entries: Vec<AllowEntry>,
}

impl HostAllowList {
    /// The default: Azure, AWS and GCP Databricks workspaces over https.
    pub const DEFAULT: &'static str =
        "*.azuredatabricks.net,*.cloud.databricks.com,*.gcp.databricks.com";

    /// Parses a comma-separated list; empty entries are skipped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            entries.push(parse_entry(raw)?);
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

impl Default for HostAllowList {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // a constant, covered by a test
        Self::parse(Self::DEFAULT).expect("default allow-list parses")
    }
}

fn parse_entry(raw: &str) -> Result<AllowEntry, String> {
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if lower.contains("://") {
        return Err(format!(
            "allowed host {raw:?}: only http:// and https:// are supported"
        ));
    } else {
        (Scheme::Https, lower.as_str())
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
        assert!(
            SourceKind::parse("postgresql").unwrap_err().contains(
                "not supported by this service yet; supported source types: DatabricksSQL"
            )
        );
    }
}
