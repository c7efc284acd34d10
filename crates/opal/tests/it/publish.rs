//! What a publish leaves in Opal, and that publishing again changes nothing.

use publish_opal::{DEFAULT_USER, OpalError, OpalPublication};
use serde_json::json;

use crate::{Env, GROUP, PROJECT, READER_PASSWORD, TABLES, request, request_with_password, writes};

fn expected_answer() -> Vec<OpalPublication> {
    TABLES
        .iter()
        .map(|(schema, table)| OpalPublication {
            postgresql_table_name: format!("{schema}.{table}"),
            opal_resource_name: format!("tre_postgresql_{schema}_{table}"),
            opal_project_name: PROJECT.into(),
            opal_group_name: GROUP.into(),
        })
        .collect()
}

#[tokio::test]
async fn first_publish_creates_exactly_the_expected_state() {
    let env = Env::start().await;
    let client = env.client();
    client.check().await.unwrap();
    let answer = client.publish(&request(TABLES)).await.unwrap();
    assert_eq!(answer, expected_answer());

    let state = env.emu.state();
    let project = state.project(PROJECT).unwrap();
    assert_eq!(project.title, PROJECT);
    assert_eq!(
        project.description.as_deref(),
        Some("Data Access Request for project Pr004")
    );
    assert_eq!(state.projects.len(), 1);
    let user = state.subject(DEFAULT_USER).unwrap();
    assert_eq!(user.groups, vec![GROUP]);
    assert!(user.enabled && user.has_password);
    assert_eq!(
        state.group(GROUP).unwrap().subject_credentials,
        vec![DEFAULT_USER]
    );
    assert_eq!(
        state.datashield_group_actions(GROUP),
        vec!["DATASHIELD_USE"]
    );
    assert_eq!(
        state.resource_group_actions(PROJECT, GROUP),
        vec!["RESOURCES_VIEW"]
    );
    assert_eq!(state.resources.len(), 2);
    for (schema, table) in TABLES {
        let r = state
            .resource(PROJECT, &format!("tre_postgresql_{schema}_{table}"))
            .unwrap();
        assert_eq!(
            (r.provider.as_str(), r.factory.as_str()),
            ("resourcer", "sql")
        );
        assert_eq!(
            r.parameters_json().unwrap(),
            json!({"host": "datashield-postgres.example", "port": 5432, "db": "opal-resource-db",
                   "table": table, "schema": schema, "driver": "postgresql"})
        );
        assert_eq!(
            r.credentials_json().unwrap(),
            json!({"username": "opal_reader", "password": READER_PASSWORD})
        );
        assert_eq!(
            r.description.as_deref(),
            Some(format!("Resource for table {table} in schema {schema}").as_str())
        );
    }
    let journal = env.emu.journal();
    assert_eq!(
        writes(&journal),
        [
            ("create_project".to_owned(), 201),
            ("create_subject_credential".to_owned(), 200),
            ("add_data_shield_permission".to_owned(), 200),
            ("create_resource".to_owned(), 201),
            ("create_resource".to_owned(), 201),
            ("add_resource_permission".to_owned(), 200),
        ]
    );
    // Only the reads that found nothing were not 2xx.
    let misses: Vec<_> = journal
        .iter()
        .filter(|e| e.status >= 300)
        .map(|e| (e.operation, e.status))
        .collect();
    use opal_emulator::Operation::*;
    assert_eq!(
        misses,
        [
            (Some(GetProject), 404),
            (Some(GetGroup), 404),
            (Some(GetSubjectCredential), 404)
        ]
    );
}

#[tokio::test]
async fn second_publish_answers_the_same_and_writes_nothing() {
    let env = Env::start().await;
    let client = env.client();
    let first = client.publish(&request(TABLES)).await.unwrap();
    let state = env.emu.state();
    let skip = env.emu.journal().len();
    let second = env.client().publish(&request(TABLES)).await.unwrap();
    assert_eq!(first, second);
    let calls = env.calls_since(skip);
    assert_eq!(writes(&calls), []);
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(env.emu.state(), state);
}

#[tokio::test]
async fn a_changed_read_only_password_updates_the_resources() {
    let env = Env::start().await;
    let client = env.client();
    client.publish(&request(TABLES)).await.unwrap();
    let created = env.emu.state().resources[0].created.clone();
    let skip = env.emu.journal().len();
    client
        .publish(&request_with_password(TABLES, "N3w-reader!pw"))
        .await
        .unwrap();
    assert_eq!(
        writes(&env.calls_since(skip)),
        [
            ("update_resource".to_owned(), 200),
            ("update_resource".to_owned(), 200)
        ]
    );
    let state = env.emu.state();
    for r in &state.resources {
        assert_eq!(r.credentials_json().unwrap()["password"], "N3w-reader!pw");
    }
    assert_eq!(
        state.resources[0].created, created,
        "updated, not recreated"
    );
}

#[tokio::test]
async fn a_new_table_adds_one_resource() {
    let env = Env::start().await;
    let client = env.client();
    client.publish(&request(&TABLES[..1])).await.unwrap();
    let skip = env.emu.journal().len();
    let answer = client.publish(&request(TABLES)).await.unwrap();
    assert_eq!(answer.len(), 2);
    assert_eq!(
        writes(&env.calls_since(skip)),
        [("create_resource".to_owned(), 201)]
    );
}

#[tokio::test]
async fn an_existing_user_keeps_its_other_groups_and_its_enabled_flag() {
    let env = Env::start().await;
    env.emu
        .add_user(DEFAULT_USER, "Pr3vious!pw", &["Pr001_group", "Pr002_group"])
        .unwrap();
    // An administrator disabled it (through the API: a fresh sign-in, no password change).
    let http = reqwest::Client::new();
    let disabled = http
        .put(format!(
            "{}/ws/system/subject-credential/{DEFAULT_USER}",
            env.emu.url()
        ))
        .basic_auth(crate::ADMIN, Some(crate::ADMIN_PASSWORD))
        .json(
            &json!({"name": DEFAULT_USER, "authenticationType": "PASSWORD",
                      "groups": ["Pr001_group", "Pr002_group"], "enabled": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    let skip = env.emu.journal().len();
    env.client().publish(&request(TABLES)).await.unwrap();
    let state = env.emu.state();
    let user = state.subject(DEFAULT_USER).unwrap();
    assert_eq!(user.groups, ["Pr001_group", "Pr002_group", GROUP]);
    assert!(!user.enabled);
    assert!(
        env.emu.password_ok(DEFAULT_USER, "Pr3vious!pw"),
        "password untouched"
    );
    let user_writes: Vec<_> = writes(&env.calls_since(skip))
        .into_iter()
        .filter(|(op, _)| op.contains("subject"))
        .collect();
    assert_eq!(user_writes, [("update_subject_credential".to_owned(), 200)]);
}

#[tokio::test]
async fn existing_permissions_are_not_downgraded() {
    let env = Env::start().await;
    let http = reqwest::Client::new();
    let post = |path: String| {
        http.post(format!("{}/ws{path}", env.emu.url()))
            .basic_auth(crate::ADMIN, Some(crate::ADMIN_PASSWORD))
            .send()
    };
    assert_eq!(
        post(format!(
            "/system/permissions/datashield?type=GROUP&permission=DATASHIELD_ALL&principal={GROUP}"
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    env.client().publish(&request(TABLES)).await.unwrap();
    assert_eq!(
        env.emu.state().datashield_group_actions(GROUP),
        ["DATASHIELD_ALL"]
    );
    // A USER of the group's name holding RESOURCES_VIEW does not count for the group.
    assert_eq!(
        post(format!("/project/{PROJECT}/permissions/resources?type=USER&permission=RESOURCES_VIEW&principal={GROUP}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        env.emu.state().resource_group_actions(PROJECT, GROUP),
        ["RESOURCES_VIEW"]
    );
}

#[tokio::test]
async fn resources_the_reference_wrote_are_corrected() {
    let env = Env::start().await;
    let client = env.client();
    client.publish(&request(&TABLES[..1])).await.unwrap();
    // The reference wrote the port as a string (or null) and its own description.
    let (schema, table) = TABLES[0];
    let name = format!("tre_postgresql_{schema}_{table}");
    let http = reqwest::Client::new();
    let reference_body = json!({
        "name": name, "project": PROJECT, "provider": "resourcer", "factory": "sql",
        "description": format!("Resource for table {table} in schema {schema}"),
        "parameters": json!({"host": "datashield-postgres.example", "port": "5432",
            "db": "opal-resource-db", "table": table, "schema": schema, "driver": "postgresql"}).to_string(),
        "credentials": json!({"username": "opal_reader", "password": READER_PASSWORD}).to_string(),
    });
    let overwritten = http
        .post(format!("{}/ws/project/{PROJECT}/resources", env.emu.url()))
        .basic_auth(crate::ADMIN, Some(crate::ADMIN_PASSWORD))
        .json(&reference_body)
        .send()
        .await
        .unwrap();
    assert_eq!(overwritten.status(), 201);
    let skip = env.emu.journal().len();
    client.publish(&request(&TABLES[..1])).await.unwrap();
    assert_eq!(
        writes(&env.calls_since(skip)),
        [("update_resource".to_owned(), 200)]
    );
    let state = env.emu.state();
    assert_eq!(
        state
            .resource(PROJECT, &name)
            .unwrap()
            .parameters_json()
            .unwrap()["port"],
        5432
    );
}

#[tokio::test]
async fn a_resource_of_the_same_name_for_another_table_is_a_conflict() {
    let env = Env::start().await;
    let client = env.client();
    // `a_b.c` and `a.b_c` share the name tre_postgresql_a_b_c.
    client.publish(&request(&[("a_b", "c")])).await.unwrap();
    let before = env.emu.state();
    let err = client.publish(&request(&[("a", "b_c")])).await.unwrap_err();
    assert!(matches!(err, OpalError::Conflict { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("it reads a_b.c, not a.b_c"), "{text}");
    assert!(
        text.contains("updating Opal resource `tre_postgresql_a_b_c` in project `Pr004`"),
        "{text}"
    );
    assert_eq!(env.emu.state(), before);
}

#[tokio::test]
async fn no_tables_no_calls() {
    let env = Env::start().await;
    let answer = env.client().publish(&request(&[])).await.unwrap();
    assert!(answer.is_empty());
    assert!(env.emu.journal().is_empty());
}

/// Another publisher creates the project and the user between this one's read and its write:
/// Opal refuses the second creation (400 "Project already exists", 409 for the user) and the
/// publish reads the winner's result and goes on. The rival acts once this publisher's write is
/// held (its delay fault taken from the queue), so the interleaving is fixed.
#[tokio::test]
async fn a_lost_race_to_create_converges() {
    use std::sync::Arc;
    use std::time::Duration;

    use opal_emulator::{Fault, Operation};

    let env = Arc::new(Env::start().await);
    let delay = Fault::Delay {
        delay: Duration::from_secs(2),
    };
    env.emu
        .faults()
        .push(Operation::CreateProject, delay.clone());
    env.emu
        .faults()
        .push(Operation::CreateSubjectCredential, delay);
    let rival_env = env.clone();
    let rival = tokio::spawn(async move {
        let env = rival_env;
        let held = |op| {
            let env = env.clone();
            async move {
                while env.emu.faults().pending(op) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let http = reqwest::Client::new();
        let url = env.emu.url();
        held(Operation::CreateProject).await;
        let project = http
            .post(format!("{url}/ws/projects"))
            .basic_auth(crate::ADMIN, Some(crate::ADMIN_PASSWORD))
            .json(&json!({"name": PROJECT, "title": "rival"}))
            .send()
            .await
            .unwrap();
        assert_eq!(project.status(), 201);
        held(Operation::CreateSubjectCredential).await;
        let user = http
            .post(format!("{url}/ws/system/subject-credentials"))
            .basic_auth(crate::ADMIN, Some(crate::ADMIN_PASSWORD))
            .json(
                &json!({"name": DEFAULT_USER, "authenticationType": "PASSWORD",
                          "password": "R1val!pass", "groups": ["Pr009_group"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(user.status(), 200);
    });
    let answer = env.client().publish(&request(TABLES)).await.unwrap();
    rival.await.unwrap();
    assert_eq!(answer, expected_answer());
    let state = env.emu.state();
    assert_eq!(state.project(PROJECT).unwrap().title, "rival");
    assert_eq!(
        state.subject(DEFAULT_USER).unwrap().groups,
        [GROUP, "Pr009_group"]
    );
    assert!(env.emu.password_ok(DEFAULT_USER, "R1val!pass"));
    let statuses: Vec<(String, u16)> = writes(&env.emu.journal())
        .into_iter()
        .filter(|(op, _)| op == "create_project" || op.contains("subject"))
        .collect();
    assert_eq!(
        statuses,
        [
            ("create_project".to_owned(), 201),
            ("create_project".to_owned(), 400),
            ("create_subject_credential".to_owned(), 200),
            ("create_subject_credential".to_owned(), 409),
            ("update_subject_credential".to_owned(), 200),
        ]
    );
}

/// Two statements of Opal's password rule, written apart (this crate's and the emulator's),
/// agree on edge cases, and every generated password passes the emulator's.
#[test]
fn generated_passwords_meet_the_emulators_rule() {
    use opal_emulator::rules::check_password;
    use publish_opal::password::{generate_password, meets_opal_password_rule};
    use secrecy::ExposeSecret as _;

    for case in [
        "Abcdef1!",
        "Abcde1!",
        "abcdef1!",
        "Abcdef1*()-_",
        "Abc def1!",
        "Abcdef1!\n",
        "Abcdef1!\u{a0}",
        "Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!",
        "Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!Ab1!x",
        "ÄÖÜäöü1!Aa",
    ] {
        assert_eq!(
            meets_opal_password_rule(case),
            check_password(case).is_ok(),
            "{case:?}"
        );
    }
    for _ in 0..10_000 {
        let password = generate_password();
        assert_eq!(check_password(password.expose_secret()), Ok(()));
    }
}
