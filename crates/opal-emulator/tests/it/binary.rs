//! The `opal-emulator` binary: prints its address first, serves until SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn first_line(child: &mut tokio::process::Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn prints_listening_line_serves_and_stops_on_sigterm() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opal-emulator"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--admin-password",
            "Bin-adm1n!",
            "--user",
            "researcher:Res3archer!:Pr004_group,other",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = first_line(&mut child).await;
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    assert_ne!(url, "http://127.0.0.1:0");

    let http = reqwest::Client::new();
    let profile = |user: &'static str, password: &'static str| {
        http.get(format!("{url}/ws/system/subject-profile/_current"))
            .basic_auth(user, Some(password))
            .send()
    };
    assert_eq!(
        profile("administrator", "Bin-adm1n!")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        profile("researcher", "Res3archer!").await.unwrap().status(),
        StatusCode::OK
    );
    let state: serde_json::Value = http
        .get(format!("{url}/emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["subject_credentials"][0]["groups"],
        serde_json::json!(["Pr004_group", "other"])
    );

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn https_flags_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, _ca) = crate::tls_identity(dir.path());
    std::fs::write(dir.path().join("cert.pem"), identity.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), identity.key_pem).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_opal-emulator"))
        .args(["--admin-password", "x", "--tls-cert"])
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = first_line(&mut child).await;
    assert!(
        line.starts_with("listening on https://127.0.0.1:"),
        "{line}"
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_opal-emulator"))
        .args(["--admin-password", "x", "--user", "no-password"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user wants NAME:PASSWORD"));
}
