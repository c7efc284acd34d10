//! No secret in an error: Opal is made to answer every write with a body that repeats the
//! request (its body and `Authorization` header), or a message quoting the passwords, and the
//! error's `Display` and `Debug` are searched for every secret in every spelling.

use base64::Engine as _;
use opal_emulator::{Fault, Operation};
use publish_opal::{DEFAULT_USER, OpalError};
use serde_json::json;

use crate::{ADMIN, ADMIN_PASSWORD, Env, READER_PASSWORD, TABLES, request, request_with_password};

fn forbidden_strings() -> Vec<String> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN}:{ADMIN_PASSWORD}"));
    let json_escaped = |s: &str| {
        let q = serde_json::to_string(s).unwrap();
        q[1..q.len() - 1].to_owned()
    };
    vec![
        ADMIN_PASSWORD.to_owned(),
        READER_PASSWORD.to_owned(),
        json_escaped(READER_PASSWORD),
        "0ld-reader!pw".to_owned(),
        basic,
        "Basic ".to_owned(),
        "\"password\"".to_owned(),
        "credentials".to_owned(),
        "authenticationType".to_owned(),
        json!({"username": "opal_reader", "password": READER_PASSWORD}).to_string(),
    ]
}

#[track_caller]
fn assert_clean(err: &OpalError) {
    let shown = format!("{err}\n{err:?}");
    for secret in forbidden_strings() {
        assert!(!shown.contains(&secret), "{secret:?} in {shown}");
    }
}

#[tokio::test]
async fn echoed_requests_never_reach_the_error() {
    // (operation, setup: publish first with another reader password so an update is needed)
    let cases = [
        (Operation::CreateProject, false),
        (Operation::CreateSubjectCredential, false),
        (Operation::AddDataShieldPermission, false),
        (Operation::CreateResource, false),
        (Operation::UpdateResource, true),
        (Operation::AddResourcePermission, false),
        (Operation::GetProject, false),
    ];
    for (operation, published) in cases {
        let env = Env::start().await;
        if published {
            env.client()
                .publish(&request_with_password(TABLES, "0ld-reader!pw"))
                .await
                .unwrap();
        }
        env.emu
            .faults()
            .push(operation, Fault::EchoRequest { status: 500 });
        let err = env.client().publish(&request(TABLES)).await.unwrap_err();
        assert!(
            matches!(err, OpalError::Refused { status: 500, .. }),
            "{operation:?}: {err:?}"
        );
        assert_clean(&err);
        // The echo did happen: the body Opal sent back held what the error leaves out.
        assert_eq!(env.emu.faults().pending(operation), 0, "{operation:?}");
        // The Authorization header came back, and was dropped whole.
        assert!(
            err.to_string()
                .contains("UnhandledException: ParseException; ")
                && err.to_string().ends_with("[removed: may hold a secret]"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_message_quoting_the_passwords_is_cut() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::CreateResource,
        Fault::Error {
            status: 500,
            error_status: "UnhandledException".into(),
            arguments: vec![
                format!(
                    "PSQLException: FATAL: role opal_reader failed, used {READER_PASSWORD} on db"
                ),
                format!("login {ADMIN}/{ADMIN_PASSWORD}"),
            ],
        },
    );
    let err = env.client().publish(&request(TABLES)).await.unwrap_err();
    assert_clean(&err);
    let text = err.to_string();
    assert!(text.contains("used [redacted] on db"), "{text}");
    assert!(text.contains("login administrator/[redacted]"), "{text}");
}

#[tokio::test]
async fn the_generated_password_is_never_shown() {
    let env = Env::start().await;
    env.emu.faults().push(
        Operation::CreateSubjectCredential,
        Fault::EchoRequest { status: 400 },
    );
    let err = env.client().publish(&request(TABLES)).await.unwrap_err();
    assert_clean(&err);
    // The generated password is 32 characters of letters, digits and @#$%^&+=!; no such run
    // appears in the error.
    let shown = format!("{err}\n{err:?}");
    let run = shown
        .split(|c: char| !(c.is_ascii_alphanumeric() || "@#$%^&+=!".contains(c)))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(run < 32, "{shown}");
    assert!(env.emu.state().subject(DEFAULT_USER).is_none());
}

#[tokio::test]
async fn settings_and_requests_do_not_print_passwords() {
    let env = Env::start().await;
    let settings = env.settings();
    let client = env.client();
    let request = request(TABLES);
    let shown = format!("{settings:?} {client:?} {request:?}");
    assert!(
        !shown.contains(ADMIN_PASSWORD) && !shown.contains(READER_PASSWORD),
        "{shown}"
    );
}
