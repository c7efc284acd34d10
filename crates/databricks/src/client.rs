//! The HTTP side of the Databricks client: the OAuth M2M token cache, workspace API calls with
//! the retry policy of docs/DATABRICKS-WIRE.md §12, and reading error bodies.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::wire;
use crate::{DatabricksOptions, TokenSource};
use publish_source::RetryCause;
use publish_source::SourceError;

/// An access token and when to replace it.
pub(crate) struct Token {
    /// `Authorization` value (`Bearer …`), marked sensitive so it is never printed.
    header: HeaderValue,
    /// After this, fetch a new one before use.
    refresh_at: Instant,
    /// After this, the token is no longer usable at all.
    expires_at: Instant,
}

/// Whether repeating a request can do harm (docs/DATABRICKS-WIRE.md §12): execute is not idempotent
/// and is retried only when the server certainly did not accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Status GETs, chunk GETs, metadata, cancel: retried on 429/503, other 5xx and connection
    /// errors.
    Idempotent,
    /// Execute: retried only on 429/503 and refused connections.
    Once,
}

/// The workspace connection shared by every describe and read of one [`crate::DatabricksSource`].
pub(crate) struct Client {
    pub(crate) origin: String,
    pub(crate) options: DatabricksOptions,
    pub(crate) warehouse_id: String,
    org_id: Option<String>,
    api: reqwest::Client,
    /// For presigned links: never carries an `Authorization` header.
    pub(crate) storage: reqwest::Client,
    client_id: SecretString,
    client_secret: SecretString,
    token: tokio::sync::Mutex<Option<Arc<Token>>>,
}

/// Failure of one HTTP exchange, before it is put in the caller's terms.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    // `without_url`: a presigned link is a credential; API URLs add nothing useful either.
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Retry bookkeeping for one logical call: attempts, backoff and the overall deadline.
pub(crate) struct Retry<'a> {
    options: &'a DatabricksOptions,
    attempts: u32,
    started: Instant,
    backoff: Duration,
}

static JITTER_COUNTER: AtomicU64 = AtomicU64::new(0);

fn jitter(max: Duration) -> Duration {
    let n = RandomState::new().hash_one(JITTER_COUNTER.fetch_add(1, Ordering::Relaxed));
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(n % max_ms)
}

impl<'a> Retry<'a> {
    pub(crate) fn new(options: &'a DatabricksOptions) -> Self {
        Retry {
            options,
            attempts: 0,
            started: Instant::now(),
            backoff: options.retry_initial_backoff,
        }
    }

    /// How long to wait before the next attempt, or `None` when the budget is spent.
    /// `retry_after` is the server's `Retry-After` (throttling); otherwise exponential backoff.
    pub(crate) fn next(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.attempts >= self.options.max_retries {
            return None;
        }
        let base = match retry_after {
            Some(after) => after.min(self.options.max_retry_after).max(self.backoff),
            None => self.backoff,
        };
        let wait = base + jitter(base / 4 + Duration::from_millis(1));
        if self.started.elapsed() + wait > self.options.retry_deadline {
            return None;
        }
        self.attempts += 1;
        self.backoff = (self.backoff * 2).min(self.options.retry_max_backoff);
        Some(wait)
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts + 1
    }
}

/// `Retry-After` in integer seconds (what the platform sends); 1 s when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

/// A non-2xx workspace answer, read once: status and the Databricks error body if any.
pub(crate) struct ApiFailure {
    pub(crate) status: StatusCode,
    pub(crate) error_code: Option<String>,
    pub(crate) message: String,
}

impl ApiFailure {
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let parsed: wire::ApiError = serde_json::from_slice(&body).unwrap_or_default();
        let message = parsed
            .message
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
        ApiFailure {
            status,
            error_code: parsed.error_code,
            message,
        }
    }

    /// The failure as [`SourceError::Rejected`] (for statuses the caller has no better name for).
    pub(crate) fn rejected(self, operation: &str) -> SourceError {
        SourceError::Rejected {
            operation: operation.to_owned(),
            status: self.status.as_u16(),
            error_code: self.error_code,
            message: self.message,
        }
    }
}

/// Reads a 2xx JSON body.
pub(crate) async fn json_body<T: DeserializeOwned>(
    response: reqwest::Response,
    operation: &str,
) -> Result<T, SourceError> {
    let body = response
        .bytes()
        .await
        .map_err(|e| SourceError::Unavailable {
            operation: operation.to_owned(),
            message: describe_reqwest(&e),
        })?;
    serde_json::from_slice(&body).map_err(|e| {
        SourceError::protocol(format!(
            "{operation}: the answer is not the documented JSON ({e})"
        ))
    })
}

impl Client {
    pub(crate) fn new(
        origin: String,
        options: DatabricksOptions,
        warehouse_id: String,
        org_id: Option<String>,
        client_id: SecretString,
        client_secret: SecretString,
    ) -> Result<Self, SourceError> {
        let user_agent = concat!("cr8tor-publish/", env!("CARGO_PKG_VERSION"));
        let api = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            // Never follow a workspace API redirect: it could carry the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SourceError::InvalidConfig {
                message: format!("cannot build the HTTP client: {}", describe_reqwest(&e)),
            })?;
        // Downloads can be large: no total timeout, but a stalled transfer fails.
        let storage = reqwest::Client::builder()
            .user_agent(user_agent)
            .read_timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| SourceError::InvalidConfig {
                message: format!("cannot build the HTTP client: {}", describe_reqwest(&e)),
            })?;
        Ok(Client {
            origin,
            options,
            warehouse_id,
            org_id,
            api,
            storage,
            client_id,
            client_secret,
            token: tokio::sync::Mutex::new(None),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A usable token: the cached one, or a new one when less than the refresh margin remains.
    /// Single-flight: concurrent callers wait for one token request.
    async fn token(&self) -> Result<Arc<Token>, SourceError> {
        let mut cached = self.token.lock().await;
        let now = Instant::now();
        if let Some(token) = cached.as_ref()
            && now < token.refresh_at
        {
            return Ok(token.clone());
        }
        match self.fetch_token().await {
            Ok(token) => {
                let token = Arc::new(token);
                *cached = Some(token.clone());
                Ok(token)
            }
            // A refresh that failed for a transient reason: the old token still works a while.
            Err(e) if e.is_transient() => match cached.as_ref() {
                Some(old) if now + Duration::from_secs(30) < old.expires_at => {
                    tracing::warn!(error = %e, "token refresh failed; using the current token");
                    Ok(old.clone())
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Forgets `used` if it is still the cached token (after a 401).
    async fn invalidate(&self, used: &Arc<Token>) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| Arc::ptr_eq(t, used)) {
            *cached = None;
        }
    }

    /// The token endpoint (docs/DATABRICKS-WIRE.md §2): the workspace's `/oidc/v1/token`, or
    /// Entra ID's for the configured tenant.
    fn token_url(&self) -> String {
        match &self.options.token_source {
            TokenSource::Databricks => self.url("/oidc/v1/token"),
            TokenSource::EntraId { authority, tenant } => {
                format!("{authority}/{tenant}/oauth2/v2.0/token")
            }
        }
    }

    /// A client-credentials token (docs/DATABRICKS-WIRE.md §2), with retries.
    async fn fetch_token(&self) -> Result<Token, SourceError> {
        let url = self.token_url();
        let mut retry = Retry::new(&self.options);
        loop {
            let started = Instant::now();
            let response = match self.post_token_request(&url).await {
                Ok(r) => r,
                Err(e) if e.is_builder() => return Err(builder_error(TOKEN_OP, &e)),
                Err(e) => {
                    self.wait_after_token_transport_error(&mut retry, &e)
                        .await?;
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                return read_token(response, started).await;
            }
            if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || status.is_server_error()
            {
                let after = retry_after(response.headers());
                self.wait_for_token_endpoint(&mut retry, status, after)
                    .await?;
                continue;
            }
            if !matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                return Err(ApiFailure::read(response).await.rejected(TOKEN_OP));
            }
            return Err(token_refused(response, status, &self.options.token_source).await);
        }
    }

    /// One client-credentials request to the token endpoint: Databricks' with Basic auth and
    /// scope `all-apis`; Entra ID's with the credentials in the form and the Azure Databricks
    /// scope.
    async fn post_token_request(&self, url: &str) -> Result<reqwest::Response, reqwest::Error> {
        let (id, secret) = (
            self.client_id.expose_secret(),
            self.client_secret.expose_secret(),
        );
        let request = match &self.options.token_source {
            TokenSource::Databricks => self
                .api
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")]),
            TokenSource::EntraId { .. } => self.api.post(url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
                ("scope", crate::AZURE_DATABRICKS_SCOPE),
            ]),
        };
        request.send().await
    }

    /// Waits before asking for a token again after no answer, while the retry budget lasts.
    async fn wait_after_token_transport_error(
        &self,
        retry: &mut Retry<'_>,
        e: &reqwest::Error,
    ) -> Result<(), SourceError> {
        let Some(wait) = retry.next(None) else {
            return Err(transport_error(TOKEN_OP, e, &self.options));
        };
        tracing::warn!(error = %describe_reqwest(e), ?wait, "token request failed; retrying");
        self.options.retries.record(RetryCause::Connection);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Waits out a throttling or failing token endpoint, while the retry budget lasts.
    async fn wait_for_token_endpoint(
        &self,
        retry: &mut Retry<'_>,
        status: StatusCode,
        after: Duration,
    ) -> Result<(), SourceError> {
        let cause = RetryCause::of_status(status.as_u16());
        let throttled = cause == RetryCause::Throttled;
        let Some(wait) = retry.next(throttled.then_some(after)) else {
            return Err(SourceError::Unavailable {
                operation: TOKEN_OP.to_owned(),
                message: format!("HTTP {status} after {} attempts", retry.attempts()),
            });
        };
        tracing::warn!(%status, ?wait, "token endpoint busy; retrying");
        self.options.retries.record(cause);
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Sends a workspace API request built by `build`, with the bearer token, retrying per
    /// `call`. Returns the response for any status the caller must interpret (2xx and the
    /// non-retryable errors); throttling and server errors that outlast the retry budget become
    /// [`SourceError::Unavailable`], a 401 after one token refresh [`SourceError::Authentication`].
    pub(crate) async fn send(
        &self,
        operation: &str,
        call: Call,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SourceError> {
        let mut retry = Retry::new(&self.options);
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let mut request = build(&self.api).header(AUTHORIZATION, token.header.clone());
            if let Some(org) = &self.org_id {
                request = request.header("x-databricks-org-id", org);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if e.is_builder() => return Err(builder_error(operation, &e)),
                Err(e) => {
                    if (call == Call::Idempotent || e.is_connect())
                        && let Some(wait) = retry.next(None)
                    {
                        tracing::warn!(operation, error = %describe_reqwest(&e), ?wait, "request failed; retrying");
                        self.options.retries.record(RetryCause::Connection);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(transport_error(operation, &e, &self.options));
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let failure = ApiFailure::read(response).await;
                if !refreshed {
                    refreshed = true;
                    tracing::info!(operation, "access token refused; fetching a new one");
                    self.invalidate(&token).await;
                    continue;
                }
                return Err(SourceError::Authentication {
                    message: format!(
                        "{operation}: the workspace refused a freshly issued access token ({})",
                        failure.message
                    ),
                });
            }
            let cause = RetryCause::of_status(status.as_u16());
            let throttled = cause == RetryCause::Throttled;
            if throttled || (status.is_server_error() && call == Call::Idempotent) {
                let after = throttled.then(|| retry_after(response.headers()));
                let failure = ApiFailure::read(response).await;
                if let Some(wait) = retry.next(after) {
                    tracing::warn!(operation, %status, ?wait, "source busy or failing; retrying");
                    self.options.retries.record(cause);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(SourceError::Unavailable {
                    operation: operation.to_owned(),
                    message: format!(
                        "HTTP {status}{} after {} attempts: {}",
                        failure
                            .error_code
                            .as_deref()
                            .map(|c| format!(" {c}"))
                            .unwrap_or_default(),
                        retry.attempts(),
                        failure.message
                    ),
                });
            }
            return Ok(response);
        }
    }
}

/// What [`Client::fetch_token`] and its helpers name in their errors.
const TOKEN_OP: &str = "requesting an access token";

/// The token of a 2xx token answer, to be refreshed and to expire counting from `started`
/// (when it was requested).
async fn read_token(response: reqwest::Response, started: Instant) -> Result<Token, SourceError> {
    let body: wire::TokenResponse = json_body(response, TOKEN_OP).await?;
    let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
    // Refresh when less than 5 minutes remain (or half the lifetime of short tokens).
    let margin = (lifetime / 2).min(Duration::from_secs(300));
    let token_type = body.token_type.unwrap_or_else(|| "Bearer".to_owned());
    let mut header = HeaderValue::from_str(&format!("{token_type} {}", body.access_token))
        .map_err(|_| SourceError::protocol("the access token is not a valid header value"))?;
    header.set_sensitive(true);
    tracing::debug!(expires_in = lifetime.as_secs(), "access token obtained");
    Ok(Token {
        header,
        refresh_at: started + lifetime - margin,
        expires_at: started + lifetime,
    })
}

/// The token endpoint refused the credentials (HTTP `status`: 400, 401 or 403): its OAuth
/// error, with a hint at what to check.
async fn token_refused(
    response: reqwest::Response,
    status: StatusCode,
    source: &TokenSource,
) -> SourceError {
    let body = response.bytes().await.unwrap_or_default();
    let parsed: wire::OAuthError = serde_json::from_slice(&body).unwrap_or_default();
    let code = parsed.error.or(parsed.error_code);
    let description = parsed.error_description.or(parsed.error_summary);
    let invalid_client = code
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("invalid_client"));
    let message = match (code, description) {
        (Some(c), Some(d)) => format!("{c}: {d}"),
        (Some(c), None) => c,
        (None, Some(d)) => d,
        (None, None) => format!("HTTP {status} from the token endpoint"),
    };
    let hint = match (source, invalid_client) {
        // The usual mistake: the Microsoft Entra ID client secret of an Azure service
        // principal, which Databricks' own token endpoint does not accept.
        (TokenSource::Databricks, true) => {
            "the secret must be a Databricks OAuth secret of the service principal (created \
             in the Databricks account or workspace for it), not its Microsoft Entra ID \
             client secret; check the client id and that secret"
        }
        (TokenSource::EntraId { .. }, true) => {
            "Microsoft Entra ID is configured (PUBLISH_DATABRICKS_AUTH=entra-id): the secret \
             must be the Entra ID client secret's value (not its id) of the service principal's \
             app registration in the configured tenant, not a Databricks OAuth secret"
        }
        (TokenSource::EntraId { .. }, false) => {
            "check the Entra ID tenant (PUBLISH_ENTRA_TENANT_ID) and the service principal's \
             application (client) id and secret"
        }
        (TokenSource::Databricks, false) => "check the service principal's client id and secret",
    };
    SourceError::Authentication {
        message: format!("{message} ({hint})"),
    }
}

/// A request that could not even be built (e.g. a header value the server handed out that is
/// not a valid header): retrying cannot help.
pub(crate) fn builder_error(operation: &str, e: &reqwest::Error) -> SourceError {
    SourceError::protocol(format!("{operation}: {}", describe_reqwest(e)))
}

/// A transport failure (no HTTP answer) in the caller's terms.
pub(crate) fn transport_error(
    operation: &str,
    e: &reqwest::Error,
    options: &DatabricksOptions,
) -> SourceError {
    if e.is_timeout() {
        SourceError::Timeout {
            operation: operation.to_owned(),
            after: options.request_timeout,
        }
    } else {
        SourceError::Unavailable {
            operation: operation.to_owned(),
            message: describe_reqwest(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_budget_and_retry_after() {
        let options = DatabricksOptions {
            max_retries: 2,
            retry_initial_backoff: Duration::from_millis(10),
            max_retry_after: Duration::from_secs(3),
            ..DatabricksOptions::default()
        };
        let mut retry = Retry::new(&options);
        let first = retry.next(Some(Duration::from_secs(100))).unwrap();
        assert!(
            first >= Duration::from_secs(3) && first < Duration::from_secs(4),
            "{first:?}"
        );
        assert!(retry.next(None).is_some());
        assert!(retry.next(None).is_none(), "budget of 2 retries spent");

        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Duration::from_secs(7));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
    }
}
