//! Integration tests: the emulator on `127.0.0.1:0` over real HTTP(S), one module per scenario.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod auth;
mod binary;
mod faults;
mod permissions;
mod projects;
mod resources;
mod subjects;
mod tls;

use std::path::Path;

use opal_emulator::{OpalEmulator, OpalEmulatorConfig, TlsIdentity};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const ADMIN: &str = "administrator";
pub const ADMIN_PASSWORD: &str = "Adm1n-secret!";

/// A running emulator and a plain client.
pub struct Env {
    pub emu: OpalEmulator,
    pub http: reqwest::Client,
}

/// One answer: status, headers, the body as text and as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an Opal `ClientErrorDto` answer.
    #[track_caller]
    pub fn assert_error(&self, status: u16, error_status: &str, arguments: &[&str]) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/x-protobuf+json"),
            "{}",
            self.text
        );
        assert_eq!(self.json["code"], status, "{}", self.text);
        assert_eq!(self.json["status"], error_status, "{}", self.text);
        let args: Vec<&str> = self.json["arguments"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(args, arguments, "{}", self.text);
    }
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut OpalEmulatorConfig)) -> Env {
        let mut config = OpalEmulatorConfig::new(ADMIN_PASSWORD);
        configure(&mut config);
        let emu = OpalEmulator::start(config).await.unwrap();
        Env {
            emu,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/ws{path}", self.emu.url())
    }

    /// A request as the administrator.
    pub fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .header("Accept", "application/json")
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.admin(Method::GET, path).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::read(
            self.admin(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A `POST` without a body (the permission calls).
    pub async fn post_empty(&self, path: &str) -> Reply {
        Reply::read(self.admin(Method::POST, path).send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        Reply::read(
            self.admin(Method::PUT, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn create_project(&self, name: &str) {
        let reply = self
            .post(
                "/projects",
                serde_json::json!({"name": name, "title": name}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
}

/// A throwaway CA and server certificate: (the server's identity, the CA certificate PEM).
pub fn tls_identity(dir: &Path) -> (TlsIdentity, String) {
    opal_emulator::throwaway_tls(dir).unwrap()
}
