//! The server refuses to start, with a one-line reason, without its API key.

use std::process::Command;

use crate::support::Deployment;

fn start_and_fail(d: &Deployment) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_publish-server"))
        .env_clear()
        .envs(d.env())
        .output()
        .unwrap();
    assert!(!out.status.success(), "server started without a key");
    assert!(out.stdout.is_empty(), "it must not have listened");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn refuses_to_start_without_the_key_file() {
    let d = Deployment::new();
    std::fs::remove_file(d.path().join("secrets/publishserviceapikey")).unwrap();
    let stderr = start_and_fail(&d);
    assert!(
        stderr.contains("publishserviceapikey") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn refuses_to_start_with_an_empty_key_file() {
    let d = Deployment::new();
    std::fs::write(d.path().join("secrets/publishserviceapikey"), " \n").unwrap();
    let stderr = start_and_fail(&d);
    assert!(stderr.contains("is empty"), "{stderr}");
}

#[test]
fn refuses_to_start_with_bad_configuration() {
    let mut d = Deployment::new();
    d.extra_env
        .push(("PUBLISH_BIND_ADDR".into(), "not-an-address".into()));
    let stderr = start_and_fail(&d);
    assert!(stderr.contains("PUBLISH_BIND_ADDR"), "{stderr}");
}
