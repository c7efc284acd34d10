//! `GET /project/{p}` and `POST /projects` (OPAL-WIRE §5).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Env, Reply};

#[tokio::test]
async fn create_then_get() {
    let env = Env::start().await;
    env.get("/project/Pr004")
        .await
        .assert_error(404, "NoSuchProject", &["Pr004"]);
    let reply = env
        .post(
            "/projects",
            json!({"name": "Pr004", "title": "Pr004", "description": "Data Access Request for project Pr004"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.text, "");
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/ws/project/Pr004", env.emu.url()).as_str())
    );
    let project = env.get("/project/Pr004").await;
    assert_eq!(project.status, StatusCode::OK);
    assert_eq!(project.header("content-type"), Some("application/json"));
    assert_eq!(project.json["name"], "Pr004");
    assert_eq!(project.json["title"], "Pr004");
    assert_eq!(
        project.json["description"],
        "Data Access Request for project Pr004"
    );
    assert_eq!(project.json["link"], "/project/Pr004");
    assert_eq!(project.json["datasourceStatus"], "NONE");
    let state = env.emu.state();
    assert_eq!(state.projects.len(), 1);
    assert_eq!(state.project("Pr004").unwrap().title, "Pr004");
}

#[tokio::test]
async fn an_existing_name_is_400_before_the_name_rule() {
    let env = Env::start().await;
    env.create_project("Pr004").await;
    env.post("/projects", json!({"name": "Pr004", "title": "again"}))
        .await
        .assert_error(400, "IllegalArgument", &["Project already exists"]);
    assert_eq!(env.emu.state().project("Pr004").unwrap().title, "Pr004");
}

/// Opal's `^[\w _-]+$` with Java's ASCII `\w`.
#[tokio::test]
async fn project_name_rule() {
    let env = Env::start().await;
    let cases: &[(&str, bool)] = &[
        ("Pr004", true),
        ("my project", true),
        ("a-b_c", true),
        ("Pr.004", false),
        ("Prøject", false),
        ("a/b", false),
        ("tab\there", false),
        ("", false),
    ];
    for (name, ok) in cases {
        let reply = env
            .post("/projects", json!({"name": name, "title": "t"}))
            .await;
        if *ok {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "{name:?}: {}",
                reply.text
            );
        } else {
            reply.assert_error(
                400,
                "IllegalArgument",
                &["Project nome invalid: only words, blank space, underscore and hyphen characters are valid"],
            );
        }
    }
    // A name with a space is percent-encoded in the Location and the path.
    assert_eq!(
        env.get("/project/my%20project").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_bodies() {
    let env = Env::start().await;
    // No title: Project's @NotBlank title.
    env.post("/projects", json!({"name": "p1"}))
        .await
        .assert_error(400, "ConstraintViolation", &[]);
    // No name: the protobuf message cannot be built.
    env.post("/projects", json!({"title": "t"}))
        .await
        .assert_error(
            500,
            "UnhandledException",
            &[
                "UninitializedMessageException",
                "Message missing required fields: name (ProjectFactoryDto)",
            ],
        );
    // Unknown fields and nulls are ignored, as JsonFormat.merge does.
    let reply = env
        .post(
            "/projects",
            json!({"name": "p2", "title": "t", "database": null, "unknown": {"a": [1]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    // Not JSON: 415 without a JSON content type, 400 with one.
    let reply = Reply::read(
        env.admin(Method::POST, "/projects")
            .header("Content-Type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = Reply::read(
        env.admin(Method::POST, "/projects")
            .header("Content-Type", "application/json")
            .body("not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json["status"], "BadRequest");
    assert_eq!(env.emu.state().projects.len(), 1);
}

#[tokio::test]
async fn unknown_paths_are_resteasy_404s() {
    let env = Env::start().await;
    let reply = env.get("/no/such/thing").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.starts_with("RESTEASY003210"), "{}", reply.text);
    assert_eq!(reply.json, Value::Null);
    // The journal keeps only known operations.
    assert!(env.emu.journal().is_empty());
}
