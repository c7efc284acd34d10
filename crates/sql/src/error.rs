//! Database errors in the caller's terms ([`SourceError`] for the sources, [`SinkError`] for
//! the PostgreSQL destination). Never a password or user name (user names come from secret
//! files, so authentication failures are reworded), never a row: only the server's primary
//! message, not its `DETAIL`, which can quote values.

use std::error::Error as _;

use publish_sink::SinkError;
use publish_source::SourceError;

pub(crate) fn protocol(message: impl Into<String>) -> SourceError {
    SourceError::protocol(message)
}

/// A database driver's error, as a source reports it: met while `operation` on `host`.
pub(crate) trait DriverError {
    fn source_error(self, operation: &str, host: &str) -> SourceError;
}

impl DriverError for tokio_postgres::Error {
    fn source_error(self, operation: &str, host: &str) -> SourceError {
        pg_error(operation, host, self)
    }
}

impl DriverError for mysql_async::Error {
    fn source_error(self, operation: &str, host: &str) -> SourceError {
        my_error(operation, host, self)
    }
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
    unavailable_or_tls(operation, host, text, tls)
}

/// An error's message with its causes, and whether one of them is rustls' (a handshake or
/// certificate failure).
fn chain(e: &dyn std::error::Error) -> (String, bool) {
    let mut text = e.to_string();
    let mut cause = e.source();
    let mut tls = false;
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        tls |= c.downcast_ref::<rustls::Error>().is_some()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        cause = c.source();
    }
    (text, tls)
}

fn unavailable_or_tls(operation: &str, host: &str, text: String, tls: bool) -> SourceError {
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

/// Maps a mysql_async error met while `operation` on `host`.
pub(crate) fn my_error(operation: &str, host: &str, e: mysql_async::Error) -> SourceError {
    use mysql_async::{DriverError, Error, IoError};
    match e {
        Error::Server(server) => {
            let code = server.code;
            match code {
                // ER_ACCESS_DENIED_ERROR (the message names the user: reworded).
                1045 => SourceError::Authentication {
                    message: format!(
                        "{host} refused the user name or password read from the secret files \
                         (error {code})"
                    ),
                },
                // ER_BAD_DB_ERROR
                1049 => SourceError::UnknownCatalog {
                    catalog: server
                        .message
                        .split('\'')
                        .nth(1)
                        .map_or_else(|| server.message.clone(), str::to_owned),
                },
                // ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR
                1044 | 1142 | 1143 => SourceError::PermissionDenied {
                    object: operation.to_owned(),
                    message: format!("the database user lacks a privilege (error {code})"),
                },
                // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_LOCK_WAIT_TIMEOUT
                1040 | 1053 | 1205 => SourceError::Unavailable {
                    operation: operation.to_owned(),
                    message: format!("{} (error {code})", server.message),
                },
                _ => SourceError::Statement {
                    error_code: operation.to_owned(),
                    message: format!("{} (error {code})", server.message),
                    sql_state: Some(server.state),
                },
            }
        }
        Error::Driver(DriverError::NoClientSslFlagFromServer) => SourceError::InvalidConfig {
            message: format!(
                "{host} does not offer TLS, which the service requires by default: enable TLS \
                 on the server, or set PUBLISH_SQL_TLS=disable if the network to it is trusted"
            ),
        },
        tls @ Error::Io(IoError::Tls(_)) => {
            let (text, _) = chain(&tls);
            unavailable_or_tls(operation, host, text, true)
        }
        other => {
            let (text, tls) = chain(&other);
            unavailable_or_tls(operation, host, text, tls)
        }
    }
}

/// Maps a tokio-postgres error met by the PostgreSQL destination while `operation` on `host`
/// (e.g. `postgresql://db:5432/opal`) to [`SinkError::Database`]. A failure inside a binary
/// `COPY` names the column PostgreSQL refused (its context line, which for binary `COPY` never
/// holds the value).
pub(crate) fn pg_sink_error(operation: &str, host: &str, e: &tokio_postgres::Error) -> SinkError {
    let database = |message: String| SinkError::Database {
        operation: operation.to_owned(),
        message,
    };
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if matches!(code, "28P01" | "28000") {
            return database(format!(
                "{host} refused the writer's user name or password (SQLSTATE {code})"
            ));
        }
        let column = db
            .where_()
            .and_then(|w| w.lines().find(|l| l.starts_with("COPY ")))
            .and_then(|l| l.split_once(", column "))
            .map(|(_, column)| format!(" in column `{column}`"))
            .unwrap_or_default();
        return database(format!("{}{column} (SQLSTATE {code})", db.message()));
    }
    let (text, tls) = chain(e);
    if text.contains("server does not support TLS") {
        return database(format!(
            "{host} does not offer TLS, which TLS mode verify-full requires: enable TLS on the \
             server, or choose prefer or disable"
        ));
    }
    if tls {
        return database(format!(
            "TLS to {host} failed ({text}): with verify-full the server's certificate must be \
             signed by a CA the service trusts (the system's, or the configured CA file) and \
             name the host it is reached by"
        ));
    }
    database(text)
}
