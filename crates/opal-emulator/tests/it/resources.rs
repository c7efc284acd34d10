//! Resource references: list, create (an existing name is overwritten), get, update
//! (OPAL-WIRE §9).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Env;

const LIST: &str = "/project/Pr004/resources";
const ONE: &str = "/project/Pr004/resource/tre_postgresql_s_t";

fn resource(name: &str, password: &str) -> Value {
    json!({
        "name": name,
        "description": "Resource for table t in schema s",
        "project": "Pr004",
        "provider": "resourcer",
        "factory": "sql",
        "parameters": json!({"host": "db.example", "port": 5432, "db": "opal-resource-db", "table": "t", "schema": "s", "driver": "postgresql"}).to_string(),
        "credentials": json!({"username": "reader", "password": password}).to_string(),
    })
}

#[tokio::test]
async fn create_list_get() {
    let env = Env::start().await;
    env.get(LIST)
        .await
        .assert_error(404, "NoSuchProject", &["Pr004"]);
    env.post(LIST, resource("tre_postgresql_s_t", "pw1"))
        .await
        .assert_error(404, "NoSuchProject", &["Pr004"]);
    env.create_project("Pr004").await;
    assert_eq!(env.get(LIST).await.json, json!([]));
    let reply = env.post(LIST, resource("tre_postgresql_s_t", "pw1")).await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (StatusCode::CREATED, "")
    );
    assert_eq!(
        reply.header("location"),
        Some(format!("{}/ws{ONE}", env.emu.url()).as_str())
    );
    env.post(LIST, resource("a_first", "pw0")).await;

    // The list is sorted by name and, by default ("safe"), carries no credentials.
    let list = env.get(LIST).await.json;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a_first", "tre_postgresql_s_t"]);
    let listed = &list[1];
    assert_eq!(listed["editable"], false);
    assert_eq!(listed.get("credentials"), None);
    assert_eq!(listed["provider"], "resourcer");
    assert_eq!(listed["description"], "Resource for table t in schema s");
    assert_eq!(
        listed["resource"],
        json!({"name": "tre_postgresql_s_t", "url": "postgresql://db.example:5432/opal-resource-db/s/t"})
    );
    let created = listed["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() <= "2025-06-01T10:11:12.345Z".len(),
        "{created}"
    );
    // safe=false (anything but "true"): credentials of what the caller may edit.
    for safe in ["false", "no"] {
        let list = env.get(&format!("{LIST}?safe={safe}")).await.json;
        assert_eq!(list[1]["editable"], true);
        assert_eq!(list[1]["credentials"], resource("x", "pw1")["credentials"]);
    }
    assert_eq!(
        env.get(&format!("{LIST}?safe=TRUE")).await.json[1].get("credentials"),
        None
    );

    let one = env.get(ONE).await.json;
    assert_eq!(one["credentials"], resource("x", "pw1")["credentials"]);
    assert_eq!(one["parameters"], resource("x", "pw1")["parameters"]);
    env.get("/project/Pr004/resource/missing")
        .await
        .assert_error(404, "NoSuchResource", &["Pr004", "missing"]);

    let state = env.emu.state();
    let stored = state.resource("Pr004", "tre_postgresql_s_t").unwrap();
    assert_eq!(stored.credentials_json().unwrap()["password"], "pw1");
    assert_eq!(stored.parameters_json().unwrap()["port"], 5432);
}

#[tokio::test]
async fn create_errors() {
    let env = Env::start().await;
    env.create_project("Pr004").await;
    let mut other = resource("r", "pw");
    other["project"] = json!("Pr005");
    env.post(LIST, other).await.assert_error(
        400,
        "IllegalArgument",
        &["Expected project name: Pr004"],
    );
    env.post(LIST, resource("*", "pw"))
        .await
        .assert_error(400, "ReservedResourceName", &[]);
    let mut no_parameters = resource("r", "pw");
    no_parameters.as_object_mut().unwrap().remove("parameters");
    env.post(LIST, no_parameters).await.assert_error(
        500,
        "UnhandledException",
        &[
            "UninitializedMessageException",
            "Message missing required fields: parameters (ResourceReferenceDto)",
        ],
    );
    // No credentials: stored as "".
    let mut no_credentials = resource("r", "pw");
    no_credentials
        .as_object_mut()
        .unwrap()
        .remove("credentials");
    assert_eq!(
        env.post(LIST, no_credentials).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        env.emu.state().resource("Pr004", "r").unwrap().credentials,
        ""
    );
    assert_eq!(
        env.get("/project/Pr004/resource/r").await.json["credentials"],
        ""
    );
}

#[tokio::test]
async fn a_post_of_an_existing_name_overwrites_it() {
    let env = Env::start().await;
    env.create_project("Pr004").await;
    env.post(LIST, resource("tre_postgresql_s_t", "pw1")).await;
    let first = env
        .emu
        .state()
        .resource("Pr004", "tre_postgresql_s_t")
        .unwrap()
        .clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let reply = env.post(LIST, resource("tre_postgresql_s_t", "pw2")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let state = env.emu.state();
    assert_eq!(state.resources.len(), 1);
    let second = state.resource("Pr004", "tre_postgresql_s_t").unwrap();
    assert_eq!(second.credentials_json().unwrap()["password"], "pw2");
    // The whole reference is replaced, its creation time included.
    assert_ne!(second.created, first.created);
}

#[tokio::test]
async fn update_keeps_created_and_may_rename() {
    let env = Env::start().await;
    env.create_project("Pr004").await;
    env.put(ONE, resource("tre_postgresql_s_t", "pw2"))
        .await
        .assert_error(404, "NoSuchResource", &["Pr004", "tre_postgresql_s_t"]);
    env.post(LIST, resource("tre_postgresql_s_t", "pw1")).await;
    let first = env
        .emu
        .state()
        .resource("Pr004", "tre_postgresql_s_t")
        .unwrap()
        .clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let reply = env.put(ONE, resource("tre_postgresql_s_t", "pw2")).await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, ""));
    let state = env.emu.state();
    let updated = state.resource("Pr004", "tre_postgresql_s_t").unwrap();
    assert_eq!(updated.credentials_json().unwrap()["password"], "pw2");
    assert_eq!(updated.created, first.created);
    assert_ne!(updated.updated, first.updated);

    let mut other = resource("tre_postgresql_s_t", "pw3");
    other["project"] = json!("Pr005");
    env.put(ONE, other).await.assert_error(
        400,
        "IllegalArgument",
        &["Expecting a resource of project: Pr004"],
    );
    env.put(ONE, resource("*", "pw3"))
        .await
        .assert_error(400, "ReservedResourceName", &[]);
    assert_eq!(
        env.put(ONE, resource("renamed", "pw3")).await.status,
        StatusCode::OK
    );
    let state = env.emu.state();
    assert!(state.resource("Pr004", "tre_postgresql_s_t").is_none());
    assert_eq!(
        state.resource("Pr004", "renamed").unwrap().created,
        first.created
    );
}
