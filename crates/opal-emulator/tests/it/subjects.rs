//! Users and groups: `GET`/`PUT /system/subject-credential/{n}`, `POST
//! /system/subject-credentials`, `GET /system/group/{g}` (OPAL-WIRE §6, §7).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Env;

const USER: &str = "/system/subject-credential/dsuser_default";
const USERS: &str = "/system/subject-credentials";

fn user(password: Option<&str>, groups: &[&str]) -> Value {
    let mut body =
        json!({"name": "dsuser_default", "authenticationType": "PASSWORD", "groups": groups});
    if let Some(p) = password {
        body["password"] = Value::from(p);
    }
    body
}

#[tokio::test]
async fn create_get_and_group_through_the_user() {
    let env = Env::start().await;
    let missing = env.get(USER).await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (StatusCode::NOT_FOUND, "")
    );
    let missing = env.get("/system/group/Pr004_group").await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (StatusCode::NOT_FOUND, "")
    );

    let reply = env
        .post(USERS, user(Some("Gener4ted!pw"), &["Pr004_group"]))
        .await;
    // 200, not 201, and no body.
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, ""));
    let got = env.get(USER).await;
    assert_eq!(
        got.json,
        json!({"name": "dsuser_default", "authenticationType": "PASSWORD", "groups": ["Pr004_group"], "enabled": true})
    );
    let group = env.get("/system/group/Pr004_group").await;
    assert_eq!(
        group.json,
        json!({"name": "Pr004_group", "subjectCredentials": ["dsuser_default"]})
    );
    assert!(env.emu.password_ok("dsuser_default", "Gener4ted!pw"));
    assert!(!env.emu.password_ok("dsuser_default", "other"));
    let state = env.emu.state();
    let stored = state.subject("dsuser_default").unwrap();
    assert!(stored.has_password && stored.enabled);

    env.post(USERS, user(Some("Gener4ted!pw"), &[]))
        .await
        .assert_error(409, "Conflict", &["Subject name must be unique"]);
}

#[tokio::test]
async fn password_rule() {
    let env = Env::start().await;
    let weak = "Password is too weak: must contain at least one digit, one upper case alphabet, \
                one lower case alphabet, one special character (which includes @#$%^&+=!) and no \
                white space";
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("Abcdef1!", None),
        (
            "Abcde1!",
            Some((
                "PasswordLengthMin",
                "Password is shorter than the required 8 characters",
            )),
        ),
        (
            &"Ab1!".repeat(17),
            Some(("PasswordLengthMax", "Password is longer than 64 characters")),
        ),
        ("abcdefg1!", Some(("PasswordTooWeak", weak))),
        ("ABCDEFG1!", Some(("PasswordTooWeak", weak))),
        ("Abcdefgh!", Some(("PasswordTooWeak", weak))),
        ("Abcdefg12", Some(("PasswordTooWeak", weak))),
        ("Abcdef1*()-_", Some(("PasswordTooWeak", weak))),
        ("Abc def1!", Some(("PasswordTooWeak", weak))),
    ];
    for (i, (password, problem)) in cases.iter().enumerate() {
        let name = format!("user{i}");
        let reply = env
            .post(
                USERS,
                json!({"name": name, "authenticationType": "PASSWORD", "password": password}),
            )
            .await;
        match problem {
            None => assert_eq!(reply.status, StatusCode::OK, "{password}: {}", reply.text),
            Some((status, message)) => reply.assert_error(400, status, &[message]),
        }
    }
    // The rule applies to a changed password too; an absent or empty one keeps the old.
    env.post(USERS, user(Some("Firs7!pass"), &[])).await;
    env.put(USER, user(Some("weakweak"), &[]))
        .await
        .assert_error(400, "PasswordTooWeak", &[weak]);
    assert_eq!(
        env.put(USER, user(None, &["g"])).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.put(USER, user(Some(""), &["g"])).await.status,
        StatusCode::OK
    );
    assert!(env.emu.password_ok("dsuser_default", "Firs7!pass"));
    assert_eq!(
        env.put(USER, user(Some("Secon4!pass"), &["g"]))
            .await
            .status,
        StatusCode::OK
    );
    assert!(env.emu.password_ok("dsuser_default", "Secon4!pass"));
}

#[tokio::test]
async fn names_refused() {
    let env = Env::start().await;
    let cases = [
        (
            json!({"name": " ", "authenticationType": "PASSWORD"}),
            "Subject name cannot be empty",
        ),
        (
            json!({"name": "*", "authenticationType": "PASSWORD"}),
            "Subject name not allowed",
        ),
        (
            json!({"name": "u", "authenticationType": "PASSWORD", "groups": ["*"]}),
            "Group name not allowed",
        ),
        (
            json!({"name": "c", "authenticationType": "CERTIFICATE"}),
            "Subject certificate must be unique",
        ),
    ];
    for (body, message) in cases {
        env.post(USERS, body)
            .await
            .assert_error(400, "IllegalArgument", &[message]);
    }
    env.post(USERS, json!({"name": "u"})).await.assert_error(
        500,
        "UnhandledException",
        &[
            "UninitializedMessageException",
            "Message missing required fields: authenticationType (SubjectCredentialsDto)",
        ],
    );
    env.post(USERS, json!({"name": "administrator", "authenticationType": "PASSWORD", "password": "Adm1n-other!"}))
        .await
        .assert_error(
            400,
            "DuplicateSubjectProfile",
            &["A subject with name 'administrator' already exists in a different realm: opal-ini-realm"],
        );
    assert!(env.emu.state().subject_credentials.is_empty());
}

#[tokio::test]
async fn update_replaces_groups_and_groups_outlive_their_members() {
    let env = Env::start().await;
    env.post(USERS, user(Some("Gener4ted!pw"), &["other", "Pr004_group"]))
        .await;
    // `enabled` absent in a PUT means true (the proto default); groups are replaced.
    let reply = env
        .put(
            USER,
            json!({"name": "dsuser_default", "authenticationType": "PASSWORD", "groups": ["other", "Pr005_group"], "enabled": false}),
        )
        .await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, ""));
    let got = env.get(USER).await.json;
    assert_eq!(got["groups"], json!(["Pr005_group", "other"]));
    assert_eq!(got["enabled"], false);
    // The group the user left still exists, without members (an empty list is not printed).
    let left = env.get("/system/group/Pr004_group").await;
    assert_eq!(
        (left.status, left.json.clone()),
        (StatusCode::OK, json!({"name": "Pr004_group"}))
    );
    let reply = env.put(USER, user(None, &["other"])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(env.get(USER).await.json["enabled"], true);
    let state = env.emu.state();
    assert_eq!(
        state.group("other").unwrap().subject_credentials,
        vec!["dsuser_default"]
    );
    assert!(
        state
            .group("Pr005_group")
            .unwrap()
            .subject_credentials
            .is_empty()
    );
    assert!(env.emu.password_ok("dsuser_default", "Gener4ted!pw"));
}

#[tokio::test]
async fn update_errors() {
    let env = Env::start().await;
    let missing = env.put(USER, user(None, &[])).await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (StatusCode::NOT_FOUND, "")
    );
    env.post(USERS, user(Some("Gener4ted!pw"), &[])).await;
    let mismatch = env
        .put("/system/subject-credential/someone", user(None, &[]))
        .await;
    assert_eq!(
        (mismatch.status, mismatch.text.as_str()),
        (StatusCode::BAD_REQUEST, "")
    );
    let star = env.put(USER, user(None, &["*"])).await;
    assert_eq!(
        (star.status, star.text.as_str()),
        (StatusCode::BAD_REQUEST, "")
    );
    env.put(
        USER,
        json!({"name": "dsuser_default", "authenticationType": "CERTIFICATE"}),
    )
    .await
    .assert_error(
        400,
        "IllegalArgument",
        &["Authentication type cannot be changed"],
    );
    // A single value is accepted for a repeated field, and enums by number.
    let reply = env
        .put(
            USER,
            json!({"name": "dsuser_default", "authenticationType": 1, "groups": "solo"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        env.emu.state().subject("dsuser_default").unwrap().groups,
        vec!["solo"]
    );
}
