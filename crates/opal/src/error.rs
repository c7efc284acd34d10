//! What can go wrong talking to Opal, in the caller's terms. Every message names the step it
//! happened in and never contains a password, a credentials document or an `Authorization`
//! header: Opal's own text is passed through [`crate::redact`] first.

use std::time::Duration;

/// Errors of [`crate::OpalClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpalError {
    /// The settings cannot work (a malformed or non-HTTPS URL, an unreadable CA file).
    #[error("invalid Opal settings: {message}")]
    InvalidSettings {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The publish request cannot be carried out as asked (a project name Opal refuses, two
    /// tables that would share one resource name); nothing was sent to Opal.
    #[error("cannot publish to Opal: {message}")]
    InvalidRequest {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Opal answered 401: it does not accept the configured username and password (or, after
    /// three failures, has banned the name for a few minutes).
    #[error(
        "Opal refused the credentials of `{username}` (HTTP 401) while {step}; check the Opal \
         username and password (after three failed sign-ins Opal refuses the name for 5 minutes)"
    )]
    Unauthorized {
        /// The configured Opal username.
        username: String,
        /// What was being done.
        step: String,
    },
    /// Opal answered 403: the user may sign in but not do this; it must be an Opal
    /// administrator.
    #[error(
        "Opal user `{username}` may not do this (HTTP 403) while {step}; publishing needs an \
         Opal administrator"
    )]
    Forbidden {
        /// The configured Opal username.
        username: String,
        /// What was being done.
        step: String,
    },
    /// Opal refused the call with another status; `message` is Opal's own, with anything that
    /// could repeat a secret removed.
    #[error("Opal refused {step} (HTTP {status}): {message}")]
    Refused {
        /// What was being done.
        step: String,
        /// The HTTP status.
        status: u16,
        /// Opal's reason.
        message: String,
    },
    /// What Opal holds contradicts the request, and changing it could break what others use
    /// (an existing resource of the same name reads another table).
    #[error("Opal holds something else while {step}: {message}")]
    Conflict {
        /// What was being done.
        step: String,
        /// What is in the way, and what to do.
        message: String,
    },
    /// No answer: the connection or the TLS handshake failed, or was closed before Opal
    /// answered.
    #[error("cannot reach Opal while {step}: {detail}")]
    Unreachable {
        /// What was being done.
        step: String,
        /// What the network or TLS layer said.
        detail: String,
    },
    /// Opal did not answer within the request timeout.
    #[error("Opal did not answer within {}s while {step}", after.as_secs_f64())]
    Timeout {
        /// What was being done.
        step: String,
        /// The configured request timeout.
        after: Duration,
    },
    /// Opal answered something this client does not understand.
    #[error("unexpected answer from Opal while {step}: {message}")]
    Protocol {
        /// What was being done.
        step: String,
        /// What was unexpected.
        message: String,
    },
}

impl OpalError {
    /// Whether trying the same publish again later may succeed without anyone changing
    /// anything: Opal unreachable, slow, or failing with a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            OpalError::Unreachable { .. } | OpalError::Timeout { .. } => true,
            OpalError::Refused { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
