//! The HTTP side: the client built from [`OpalSettings`], one call with its retries, and how
//! answers and transport failures become [`OpalError`]s (docs/OPAL-WIRE.md §12).

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::OpalError;
use crate::redact::Redactor;
use crate::settings::OpalSettings;

/// Attempts of a `GET` that fails to connect, loses its connection or gets 503.
const GET_ATTEMPTS: u32 = 3;
/// Pause before the second attempt; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A client of one Opal server, signed in as one user. Every call signs in again with HTTP
/// Basic: no session cookie is kept, so Opal's demand for a recent sign-in before changing
/// users (OPAL-WIRE §2.3) is always met. Cheap to share by reference; calls may run
/// concurrently.
pub struct OpalClient {
    http: reqwest::Client,
    /// `scheme://host[:port][/prefix]`, without a trailing slash.
    base: String,
    username: String,
    authorization: HeaderValue,
    redactor: Redactor,
    request_timeout: Duration,
}

impl std::fmt::Debug for OpalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpalClient")
            .field("base", &self.base)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> OpalError {
    OpalError::InvalidSettings {
        message: message.into(),
    }
}

/// One answer: its status and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl OpalClient {
    /// Checks the settings and builds the HTTP client (nothing is sent yet).
    ///
    /// The URL must be `https://`, or `http://` to a loopback host; it may carry a path prefix
    /// but no user, password, query or fragment. With `verify_tls` false certificates are not
    /// checked at all (the caller logs that); otherwise the system's roots and those of
    /// `ca_file` are trusted.
    pub fn new(settings: OpalSettings) -> Result<OpalClient, OpalError> {
        let url = reqwest::Url::parse(settings.url.trim()).map_err(|e| {
            invalid(format!(
                "the Opal URL `{}` is not a URL ({e}); write it as https://opal.example.org",
                settings.url
            ))
        })?;
        let host = url.host_str().unwrap_or("").to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(invalid(format!(
                    "the Opal URL must use https:// (http:// would send the password in clear); got http://{host}"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "the Opal URL must use https://, not {other}://"
                )));
            }
        }
        if host.is_empty() {
            return Err(invalid("the Opal URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "the Opal URL must not carry a user or password; set them as the Opal username and password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("the Opal URL must not have a query or fragment"));
        }
        if settings.username.is_empty() || settings.username.contains(':') {
            return Err(invalid(
                "the Opal username must be set and cannot contain `:` (HTTP Basic)",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cr8tor-publish/", env!("CARGO_PKG_VERSION")));
        if !settings.verify_tls {
            builder = builder.tls_danger_accept_invalid_certs(true);
        } else if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                invalid(format!(
                    "cannot read the Opal CA file {}: {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                invalid(format!(
                    "the Opal CA file {} is not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(invalid(format!(
                    "the Opal CA file {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            settings.username,
            settings.password.expose_secret()
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| invalid("the Opal username or password cannot be sent in a header"))?;
        authorization.set_sensitive(true);
        let mut redactor = Redactor::default();
        redactor.add(settings.password.expose_secret());
        redactor.add(&token);
        Ok(OpalClient {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            username: settings.username,
            authorization,
            redactor,
            request_timeout: settings.request_timeout,
        })
    }

    /// Signs in (`GET /ws/system/subject-profile/_current`): Opal is reachable, its certificate
    /// trusted and the credentials accepted. What validate calls.
    pub async fn check(&self) -> Result<(), OpalError> {
        let step = format!("signing in to Opal as `{}`", self.username);
        let answer = self
            .send(
                &step,
                Method::GET,
                "/system/subject-profile/_current",
                &[],
                None,
            )
            .await?;
        self.expect(&step, answer, &[StatusCode::OK], &self.redactor)?;
        Ok(())
    }

    /// The redactor of this client's own secrets, to extend with a publish's.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sends one call to `{base}/ws{path}`. A `GET` is tried again after a failed connection,
    /// a connection closed before the answer, or a 503; nothing else is retried, and no
    /// timeout is.
    pub(crate) async fn send(
        &self,
        step: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, OpalError> {
        let url = format!("{}/ws{path}", self.base);
        let attempts = if method == Method::GET {
            GET_ATTEMPTS
        } else {
            1
        };
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, self.authorization.clone());
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            let retry = attempt < attempts;
            let outcome = match request.send().await {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE && retry => {
                    None
                }
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(bytes) => Some(Ok(Answer {
                            status,
                            body: bytes.to_vec(),
                        })),
                        Err(e) => Some(Err(self.transport(step, &e))),
                    }
                }
                Err(e) if !e.is_timeout() && (e.is_connect() || e.is_request()) && retry => None,
                Err(e) => Some(Err(self.transport(step, &e))),
            };
            if let Some(outcome) = outcome {
                if let Err(e) = &outcome {
                    tracing::debug!(step, error = %e, "Opal call failed");
                }
                return outcome;
            }
            tracing::debug!(step, attempt, "Opal call failed; trying again");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    /// The answer if its status is one of `ok`, else the error it means.
    pub(crate) fn expect(
        &self,
        step: &str,
        answer: Answer,
        ok: &[StatusCode],
        redactor: &Redactor,
    ) -> Result<Answer, OpalError> {
        if ok.contains(&answer.status) {
            return Ok(answer);
        }
        Err(self.refusal(step, &answer, redactor))
    }

    /// The error an unwanted answer means.
    pub(crate) fn refusal(&self, step: &str, answer: &Answer, redactor: &Redactor) -> OpalError {
        let step = step.to_owned();
        match answer.status {
            StatusCode::UNAUTHORIZED
                if String::from_utf8_lossy(&answer.body).contains("reauthentication_required") =>
            {
                OpalError::Refused {
                    step,
                    status: 401,
                    message: "Opal wants a recent sign-in for this (reauthentication_required)"
                        .into(),
                }
            }
            StatusCode::UNAUTHORIZED => OpalError::Unauthorized {
                username: self.username.clone(),
                step,
            },
            StatusCode::FORBIDDEN => OpalError::Forbidden {
                username: self.username.clone(),
                step,
            },
            status => OpalError::Refused {
                step,
                status: status.as_u16(),
                message: redactor.describe(&answer.body),
            },
        }
    }

    /// Parses an answer's JSON body as `T`.
    pub(crate) fn parse<T: DeserializeOwned>(
        &self,
        step: &str,
        answer: &Answer,
    ) -> Result<T, OpalError> {
        serde_json::from_slice(&answer.body).map_err(|e| OpalError::Protocol {
            step: step.to_owned(),
            message: format!("the answer is not the JSON expected ({e})"),
        })
    }

    fn transport(&self, step: &str, e: &reqwest::Error) -> OpalError {
        let step = step.to_owned();
        if e.is_timeout() {
            return OpalError::Timeout {
                step,
                after: self.request_timeout,
            };
        }
        if e.is_connect() || e.is_request() || e.is_body() {
            return OpalError::Unreachable {
                step,
                detail: describe_transport(e),
            };
        }
        OpalError::Protocol {
            step,
            message: describe_transport(e),
        }
    }
}

/// The causes of a transport error, without the URL reqwest puts first.
fn describe_transport(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        "the connection failed".to_owned()
    } else {
        parts.join(": ")
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
