//! The hardened HTTP edge (issue 12): header-read timeout, one `x-api-key`, a key rotated the
//! Kubernetes way without a restart, short keys refused, the key file never a credential,
//! admission limits (503 + `Retry-After`, never 500), readiness, and SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use databricks_emulator::{Fault, Operation};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::package::setup;
use crate::support::{API_KEY, Deployment, Server, fixture, oneshot, post};

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

#[test]
fn half_a_request_header_is_dropped_within_the_timeout() {
    let mut d = Deployment::new();
    d.extra_env
        .push(("PUBLISH_HEADER_READ_TIMEOUT_SECS".into(), "1".into()));
    let server = Server::start(&d);
    let mut stream = TcpStream::connect(host_port(&server.url)).unwrap();
    stream
        .write_all(b"POST /data-publish/package HTTP/1.1\r\nHost: x\r\nx-api-")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let began = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let waited = began.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "still connected after {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer {text:?}"
    );
    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(host_port(&server.url)).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let began = Instant::now();
    let mut all = Vec::new();
    let _ = idle.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "idle connection kept open"
    );
    server.stop();
}

#[tokio::test]
async fn two_api_key_headers_are_refused_even_with_the_right_one_first() {
    let d = Deployment::new();
    let req = Request::builder()
        .method("POST")
        .uri("/data-publish/publish")
        .header("content-type", "application/json")
        .header("x-api-key", API_KEY)
        .header("x-api-key", "wrong")
        .body(Body::from(fixture("publish-shape-b.json").to_string()))
        .unwrap();
    let response = publish_server::app(d.state()).oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["payload"]["detail"],
        json!("several x-api-key headers were sent; send exactly one")
    );
}

/// `publishserviceapikey` as Kubernetes mounts a secret: a link into `..data`, itself a link to
/// a timestamped folder, swapped on rotation.
fn kubernetes_key(d: &Deployment, version: &str, key: &str) {
    let secrets = d.path().join("secrets");
    std::fs::create_dir_all(secrets.join(version)).unwrap();
    std::fs::write(secrets.join(version).join("publishserviceapikey"), key).unwrap();
    let tmp = secrets.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, secrets.join("..data")).unwrap();
    let link = secrets.join("publishserviceapikey");
    if std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_file()) {
        std::fs::remove_file(&link).unwrap();
    }
    if std::fs::symlink_metadata(&link).is_err() {
        symlink("..data/publishserviceapikey", &link).unwrap();
    }
}

#[tokio::test]
async fn a_key_rotated_the_kubernetes_way_works_without_a_restart() {
    let d = Deployment::new();
    kubernetes_key(&d, "..2026_12_01_01", API_KEY);
    let server = Server::start(&d);
    let body = json!({"project_name": "Pr004", "project_start_time": "20250205_010101", "destination_type": "LSC"});
    let publish = |key: &'static str| {
        let (url, body) = (server.url.clone(), body.clone());
        async move {
            post(&url, "/data-publish/publish", Some(key), &body)
                .await
                .0
        }
    };
    // Nothing staged: 409 means the key was accepted.
    assert_eq!(publish(API_KEY).await, 409);
    let rotated = "rotated-key-0123456789abcdef";
    kubernetes_key(&d, "..2026_12_01_02", rotated);
    assert_eq!(publish(rotated).await, 409, "the new key works at once");
    assert_eq!(publish(API_KEY).await, 403, "the old key no longer works");
    // A rotation to an unusable key fails closed: 503, and not ready.
    kubernetes_key(&d, "..2026_12_01_03", "short");
    assert_eq!(publish(rotated).await, 503);
    let ready = reqwest::get(format!("{}/ready", server.url)).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    server.stop();
}

#[test]
fn a_key_shorter_than_16_bytes_refuses_start_up() {
    let d = Deployment::new();
    std::fs::write(
        d.path().join("secrets/publishserviceapikey"),
        "0123456789abcde\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_publish-server"))
        .env_clear()
        .envs(d.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("is 15 bytes; it must be at least 16"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_api_key_file_can_never_be_named_as_a_credential() {
    let (d, emulator) = setup().await;
    let mut body = fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    body["source"]["credentials"]["spn_secret"] = json!("publishserviceapikey");
    let before = d.snapshot();
    let (status, json) = oneshot(
        d.state(),
        "POST",
        "/data-publish/package",
        Some(API_KEY),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 422, "{json}");
    assert_eq!(
        json["payload"]["detail"],
        json!(
            "source.credentials.spn_secret: secret `publishserviceapikey` is reserved for the service itself and cannot be used as a credential"
        )
    );
    assert_eq!(d.snapshot(), before);
    emulator.shutdown().await;
}

#[tokio::test]
async fn sixteen_packages_at_once_get_only_200s_and_503s() {
    let (d, emulator) = setup().await;
    // Every statement is slow, so the packages overlap.
    for _ in 0..40 {
        emulator.faults().push(
            Operation::ExecuteStatement,
            Fault::Slow {
                delay: Duration::from_millis(400),
            },
        );
    }
    let server = Server::start(&d);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let mut body = fixture("package-shape-b.json");
        body["source"]["host_url"] = json!(emulator.url());
        body["project_name"] = json!(format!("Pr{i:03}"));
        let url = server.url.clone();
        tasks.spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{url}/data-publish/package"))
                .header("x-api-key", API_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            (response.status().as_u16(), retry_after)
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, retry_after) = done.unwrap();
        assert!(status == 200 || status == 503, "status {status}");
        if status == 503 {
            assert!(retry_after.is_some(), "a 503 without Retry-After");
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&503),
        "the limit (4) was never reached: {statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn readiness_needs_every_destinations_volumes() {
    let d = Deployment::new();
    let (status, json) = oneshot(d.state(), "GET", "/ready", None, Body::empty()).await;
    assert_eq!(status, 200, "{json}");
    std::fs::remove_dir(d.mount("nw").join("production")).unwrap();
    let (status, json) = oneshot(d.state(), "GET", "/ready", None, Body::empty()).await;
    assert_eq!(status, 503, "{json}");
    let detail = json["payload"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("destination NW: the production container"),
        "{detail}"
    );
}

/// The operation timeout cuts a package before its commit point: 504 saying nothing was
/// committed, and nothing was.
#[tokio::test]
async fn a_package_out_of_time_is_stopped_before_its_commit_point() {
    let (mut d, emulator) = setup().await;
    d.extra_env
        .push(("PUBLISH_OPERATION_TIMEOUT_SECS".into(), "2".into()));
    emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::Slow {
            delay: Duration::from_secs(20),
        },
    );
    let before = d.snapshot();
    let server = Server::start(&d);
    let mut body = fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    let began = Instant::now();
    let (status, json) = post(&server.url, "/data-publish/package", Some(API_KEY), &body).await;
    assert_eq!(status, 504, "{json}");
    let detail = json["payload"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("did not reach its commit point within 2 s")
            && detail.contains("nothing was committed"),
        "{detail}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "the timeout was not applied"
    );
    // The dropped work folder is removed in the background; give it a moment.
    let settle = Instant::now();
    while d.snapshot() != before && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.snapshot(), before, "nothing was committed or left behind");
    server.stop();
    emulator.shutdown().await;
}

#[tokio::test]
async fn sigterm_during_a_package_stops_it_cleanly_and_exits_0() {
    let (mut d, emulator) = setup().await;
    d.extra_env
        .push(("PUBLISH_SHUTDOWN_GRACE_SECS".into(), "1".into()));
    emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::Slow {
            delay: Duration::from_secs(20),
        },
    );
    let before = d.snapshot();
    let server = Server::start(&d);
    let mut body = fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    let url = server.url.clone();
    let package =
        tokio::spawn(
            async move { post(&url, "/data-publish/package", Some(API_KEY), &body).await },
        );
    // Wait until the package is writing into its temporary folder, then ask the server to stop.
    let work = d
        .mount("lsc")
        .join("staging/.publish-service/work/Pr004/20250205_010101");
    let began = Instant::now();
    while std::fs::read_dir(&work).map_or(true, |mut e| e.next().is_none()) {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the package never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = server.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let (status, json) = package.await.unwrap();
    assert_eq!(status, 503, "{json}");
    let (exit, logs) = server.wait();
    assert_eq!(
        exit.code(),
        Some(0),
        "exit status after SIGTERM ({exit}); server log:\n{logs}"
    );
    assert_eq!(d.snapshot(), before, "nothing partial was left");
    emulator.shutdown().await;
}
