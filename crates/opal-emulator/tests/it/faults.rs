//! Every fault kind, observed over HTTP, plus the test-only route that queues them.

use std::time::{Duration, Instant};

use opal_emulator::{Fault, Operation};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{ADMIN_PASSWORD, Env, Reply};

#[tokio::test]
async fn error_then_normal() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::GetProject,
        Fault::Error {
            status: 500,
            error_status: "UnhandledException".into(),
            arguments: vec!["OrientDB".into()],
        },
    );
    env.get("/project/p")
        .await
        .assert_error(500, "UnhandledException", &["OrientDB"]);
    assert_eq!(env.emu.faults().pending(Operation::GetProject), 0);
    env.get("/project/p")
        .await
        .assert_error(404, "NoSuchProject", &["p"]);
    let statuses: Vec<u16> = env.emu.journal().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [500, 404]);
}

#[tokio::test]
async fn faults_come_before_authentication_and_per_operation() {
    let env = Env::start().await;
    env.emu
        .faults()
        .push(Operation::CreateProject, Fault::Status { status: 503 });
    // Another operation is untouched.
    assert_eq!(env.get("/project/p").await.status, StatusCode::NOT_FOUND);
    let reply = Reply::read(
        env.http
            .post(env.url("/projects"))
            .json(&json!({"name": "p", "title": "p"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "")
    );
    assert!(env.emu.state().projects.is_empty());
}

#[tokio::test]
async fn delay() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::SignIn,
        Fault::Delay {
            delay: Duration::from_millis(300),
        },
    );
    let started = Instant::now();
    let reply = env.get("/system/subject-profile/_current").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn hang_until_the_client_gives_up() {
    let env = Env::start().await;
    env.emu.faults().push(Operation::ListResources, Fault::Hang);
    let started = Instant::now();
    let err = env
        .admin(Method::GET, "/project/p/resources")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The emulator still serves others while one request hangs.
    assert_eq!(env.get("/project/p").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn drop_connection() {
    let env = Env::start().await;
    env.emu
        .faults()
        .push(Operation::CreateResource, Fault::DropConnection);
    let err = env
        .admin(Method::POST, "/project/p/resources")
        .json(&json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err}");
    let entry = env.emu.journal().pop().unwrap();
    assert_eq!(
        (entry.operation, entry.status),
        (Some(Operation::CreateResource), 0)
    );
    // The next request gets a new connection and a normal answer.
    env.post(
        "/project/p/resources",
        json!({"name": "r", "project": "p", "provider": "x", "factory": "y", "parameters": "{}"}),
    )
    .await
    .assert_error(404, "NoSuchProject", &["p"]);
}

#[tokio::test]
async fn echo_request_repeats_body_and_authorization_but_the_journal_does_not() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::CreateSubjectCredential,
        Fault::EchoRequest { status: 500 },
    );
    let reply = env
        .post(
            "/system/subject-credentials",
            json!({"name": "u", "authenticationType": "PASSWORD", "password": "Secr3t!pw"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.text.contains("Secr3t!pw"), "{}", reply.text);
    assert!(
        reply.json["arguments"][2]
            .as_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let journal = serde_json::to_string(&env.emu.journal()).unwrap();
    assert!(
        !journal.contains("Secr3t!pw") && !journal.contains("Basic"),
        "{journal}"
    );
    assert!(!journal.contains(ADMIN_PASSWORD));
}

#[tokio::test]
async fn test_only_routes() {
    let env = Env::start().await;
    let admin = |path: &str| format!("{}/emulator{path}", env.emu.url());
    let queued = env
        .http
        .post(admin("/faults"))
        .json(&json!({"operation": "get_group", "fault": {"kind": "error", "status": 502, "error_status": "BadGateway"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::NO_CONTENT);
    let bad = env
        .http
        .post(admin("/faults"))
        .json(&json!({"operation": "nope", "fault": {"kind": "hang"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.emu.faults().pending(Operation::GetGroup), 1);
    env.get("/system/group/g")
        .await
        .assert_error(502, "BadGateway", &[]);
    let journal: serde_json::Value = env
        .http
        .get(admin("/journal"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(journal[0]["operation"], "get_group");
    assert_eq!(journal[0]["status"], 502);
    env.emu.add_user("u", "Us3r-one!", &["g"]).unwrap();
    let state: serde_json::Value = env
        .http
        .get(admin("/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["subject_credentials"][0]["groups"], json!(["g"]));
    assert!(!state.to_string().contains("Us3r-one!"));
    let check: serde_json::Value = env
        .http
        .post(admin("/password-check"))
        .json(&json!({"name": "u", "password": "Us3r-one!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check, json!({"ok": true, "meets_opal_rule": true}));
    env.emu.faults().push(Operation::GetGroup, Fault::Hang);
    let cleared = env.http.delete(admin("/faults")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(env.emu.faults().pending(Operation::GetGroup), 0);
}
