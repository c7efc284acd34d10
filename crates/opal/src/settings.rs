//! How to reach Opal.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// How to reach and sign in to one Opal server.
#[derive(Debug, Clone)]
pub struct OpalSettings {
    /// Opal's address, `https://opal.example.org` (a path prefix is kept: Opal behind
    /// `https://host/opal` is `https://host/opal`). `http://` is accepted only for a loopback
    /// host, for tests.
    pub url: String,
    /// An Opal administrator's name (`administrator` in K8TRE).
    pub username: String,
    /// Its password.
    pub password: SecretString,
    /// Verify Opal's TLS certificate (default). `false` accepts any certificate: the caller
    /// logs that it did so.
    pub verify_tls: bool,
    /// A PEM file of CA certificates trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// How long connecting (TCP and TLS) may take. Default 10 s.
    pub connect_timeout: Duration,
    /// How long one call may take from sending to the last byte of the answer. Default 60 s.
    pub request_timeout: Duration,
}

impl OpalSettings {
    /// Settings with certificate verification on, no extra CA, and the default timeouts.
    pub fn new(
        url: impl Into<String>,
        username: impl Into<String>,
        password: SecretString,
    ) -> OpalSettings {
        OpalSettings {
            url: url.into(),
            username: username.into(),
            password,
            verify_tls: true,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}
