//! Integration tests: the publisher against the Opal emulator on `127.0.0.1:0`, one module per
//! scenario.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod errors;
mod publish;
mod secrets;
mod tls;

use std::time::Duration;

use opal_emulator::{JournalEntry, OpalEmulator, OpalEmulatorConfig};
use publish_opal::{
    DatabaseLocation, OpalClient, OpalPublishRequest, OpalSettings, PgTable, ReadOnlyRole,
};
use secrecy::SecretString;

pub const ADMIN: &str = "administrator";
pub const ADMIN_PASSWORD: &str = "Adm1n-secret!pw";
pub const READER_PASSWORD: &str = "r3ad-Only!\"pw";
pub const PROJECT: &str = "Pr004";
pub const GROUP: &str = "Pr004_group";

pub struct Env {
    pub emu: OpalEmulator,
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut OpalEmulatorConfig)) -> Env {
        let mut config = OpalEmulatorConfig::new(ADMIN_PASSWORD);
        configure(&mut config);
        Env {
            emu: OpalEmulator::start(config).await.unwrap(),
        }
    }

    pub fn settings(&self) -> OpalSettings {
        let mut settings =
            OpalSettings::new(self.emu.url(), ADMIN, SecretString::from(ADMIN_PASSWORD));
        settings.request_timeout = Duration::from_secs(10);
        settings
    }

    pub fn client(&self) -> OpalClient {
        OpalClient::new(self.settings()).unwrap()
    }

    /// The journal entries after the first `skip`.
    pub fn calls_since(&self, skip: usize) -> Vec<JournalEntry> {
        self.emu.journal().into_iter().skip(skip).collect()
    }
}

pub fn request(tables: &[(&str, &str)]) -> OpalPublishRequest {
    request_with_password(tables, READER_PASSWORD)
}

pub fn request_with_password(tables: &[(&str, &str)], password: &str) -> OpalPublishRequest {
    OpalPublishRequest::new(
        PROJECT,
        DatabaseLocation {
            host: "datashield-postgres.example".into(),
            port: 5432,
            database: "opal-resource-db".into(),
        },
        ReadOnlyRole {
            username: "opal_reader".into(),
            password: SecretString::from(password),
        },
        tables
            .iter()
            .map(|(schema, table)| PgTable {
                schema: (*schema).into(),
                table: (*table).into(),
            })
            .collect(),
    )
}

pub const TABLES: &[(&str, &str)] = &[
    ("pr004_20250601_cohort", "person"),
    ("pr004_20250601_cohort", "visit"),
];

/// The writes (POST, PUT) among `entries`: (operation name, status).
pub fn writes(entries: &[JournalEntry]) -> Vec<(String, u16)> {
    entries
        .iter()
        .filter(|e| e.method == "POST" || e.method == "PUT")
        .map(|e| {
            (
                serde_json::to_value(e.operation)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                e.status,
            )
        })
        .collect()
}
