//! Database errors in the caller's terms ([`SourceError`]). Never a password or user name (the
//! user name comes from a secret file, so authentication failures are reworded), never a row:
//! only the server's primary message, not its `DETAIL`, which can quote values.

use std::error::Error as _;

use publish_source::SourceError;

pub(crate) fn protocol(message: impl Into<String>) -> SourceError {
    SourceError::protocol(message)
}

/// Maps a tokio-postgres error met while `operation` (e.g. `reading the columns`) on `host`.
pub(crate) fn pg_error(operation: &str, host: &str, e: tokio_postgres::Error) -> SourceError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let message = db.message().to_owned();
        return match code {
            // invalid_password, invalid_authorization_specification
            "28P01" | "28000" => SourceError::Authentication {
                message: format!(
                    "{host} refused the user name or password read from the secret files \
                     (SQLSTATE {code})"
                ),
            },
            // insufficient_privilege
            "42501" => SourceError::PermissionDenied {
                object: operation.to_owned(),
                message,
            },
            // invalid_catalog_name: the database does not exist.
            "3D000" => SourceError::UnknownCatalog {
                catalog: message
                    .split('"')
                    .nth(1)
                    .map_or_else(|| message.clone(), str::to_owned),
            },
            // too_many_connections, cannot_connect_now, admin/crash shutdown, and the
            // connection_exception class.
            "53300" | "57P01" | "57P02" | "57P03" => SourceError::Unavailable {
                operation: operation.to_owned(),
                message: format!("{message} (SQLSTATE {code})"),
            },
            c if c.starts_with("08") => SourceError::Unavailable {
                operation: operation.to_owned(),
                message: format!("{message} (SQLSTATE {code})"),
            },
            _ => SourceError::Statement {
                error_code: operation.to_owned(),
                message,
                sql_state: Some(code.to_owned()),
            },
        };
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    let mut tls = false;
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        tls |= c.downcast_ref::<rustls::Error>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        cause = c.source();
    }
    if text.contains("server does not support TLS") {
        return SourceError::InvalidConfig {
            message: format!(
                "{host} does not offer TLS, which the service requires by default: enable TLS \
                 on the server, or set PUBLISH_SQL_TLS=disable if the network to it is trusted"
            ),
        };
    }
    if tls {
        return SourceError::InvalidConfig {
            message: format!(
                "TLS to {host} failed ({text}): the server's certificate must be signed by a \
                 CA the service trusts (the system's, or PUBLISH_SQL_CA_FILE) and name the host \
                 it is reached by"
            ),
        };
    }
    SourceError::Unavailable {
        operation: operation.to_owned(),
        message: text,
    }
}
