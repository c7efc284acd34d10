//! Failures: each is the right `OpalError`, names its step, and leaves a state that the next
//! publish completes.

use std::time::{Duration, Instant};

use opal_emulator::{Fault, Operation};
use publish_opal::{DEFAULT_USER, OpalClient, OpalError, OpalSettings};
use secrecy::SecretString;

use crate::{ADMIN, ADMIN_PASSWORD, Env, GROUP, PROJECT, TABLES, request};

#[tokio::test]
async fn wrong_admin_password_is_unauthorized() {
    let env = Env::start().await;
    let mut settings = env.settings();
    settings.password = SecretString::from("not-it");
    let client = OpalClient::new(settings).unwrap();
    let err = client.check().await.unwrap_err();
    assert!(
        matches!(&err, OpalError::Unauthorized { username, step } if username == ADMIN && step == "signing in to Opal as `administrator`"),
        "{err:?}"
    );
    let err = client.publish(&request(TABLES)).await.unwrap_err();
    assert!(matches!(err, OpalError::Unauthorized { .. }), "{err:?}");
    // One call each: a 401 is never retried (three failures would ban the name).
    assert_eq!(env.emu.journal().len(), 2);
    assert!(env.emu.state().projects.is_empty());
}

#[tokio::test]
async fn a_non_administrator_is_forbidden() {
    let env = Env::start().await;
    env.emu.add_user("researcher", "Res3archer!", &[]).unwrap();
    let mut settings = env.settings();
    settings.username = "researcher".into();
    settings.password = SecretString::from("Res3archer!");
    let client = OpalClient::new(settings).unwrap();
    client.check().await.unwrap();
    let err = client.publish(&request(TABLES)).await.unwrap_err();
    assert!(
        matches!(&err, OpalError::Forbidden { username, step } if username == "researcher" && step == "reading Opal project `Pr004`"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("needs an Opal administrator"),
        "{err}"
    );
}

/// Opal answering 500 at each step: `Refused` naming the step, with Opal's message; publishing
/// again afterwards completes.
#[tokio::test]
async fn a_500_at_each_step_is_refused_naming_the_step() {
    let cases: &[(Operation, &str, Setup)] = &[
        (
            Operation::GetProject,
            "reading Opal project `Pr004`",
            Setup::Empty,
        ),
        (
            Operation::CreateProject,
            "creating Opal project `Pr004`",
            Setup::Empty,
        ),
        (
            Operation::GetGroup,
            "reading Opal group `Pr004_group`",
            Setup::Empty,
        ),
        (
            Operation::GetSubjectCredential,
            "reading Opal user `dsuser_default`",
            Setup::Empty,
        ),
        (
            Operation::CreateSubjectCredential,
            "creating Opal user `dsuser_default` with group `Pr004_group`",
            Setup::Empty,
        ),
        (
            Operation::UpdateSubjectCredential,
            "adding group `Pr004_group` to user `dsuser_default`",
            Setup::UserWithoutGroup,
        ),
        (
            Operation::ListDataShieldPermissions,
            "reading Opal's DataSHIELD permissions",
            Setup::Empty,
        ),
        (
            Operation::AddDataShieldPermission,
            "granting DataSHIELD use to group `Pr004_group`",
            Setup::Empty,
        ),
        (
            Operation::ListResources,
            "listing the resources of Opal project `Pr004`",
            Setup::Empty,
        ),
        (
            Operation::CreateResource,
            "creating Opal resource `tre_postgresql_pr004_20250601_cohort_person` in project `Pr004`",
            Setup::Empty,
        ),
        (
            Operation::UpdateResource,
            "updating Opal resource `tre_postgresql_pr004_20250601_cohort_person` in project `Pr004`",
            Setup::PublishedWithOtherPassword,
        ),
        (
            Operation::ListResourcePermissions,
            "reading the resource permissions of Opal project `Pr004`",
            Setup::Empty,
        ),
        (
            Operation::AddResourcePermission,
            "granting group `Pr004_group` view of the resources of Opal project `Pr004`",
            Setup::Empty,
        ),
    ];
    for (operation, step, setup) in cases {
        let env = Env::start().await;
        setup.apply(&env).await;
        env.emu.faults().push(
            *operation,
            Fault::Error {
                status: 500,
                error_status: "UnhandledException".into(),
                arguments: vec!["ODatabaseException".into(), "database is closed".into()],
            },
        );
        let err = env.client().publish(&request(TABLES)).await.unwrap_err();
        match &err {
            OpalError::Refused {
                step: got,
                status,
                message,
            } => {
                assert_eq!((got.as_str(), *status), (*step, 500), "{operation:?}");
                assert_eq!(
                    message,
                    "UnhandledException: ODatabaseException; database is closed"
                );
            }
            other => panic!("{operation:?}: {other:?}"),
        }
        assert!(err.is_transient());
        assert!(
            err.to_string()
                .starts_with(&format!("Opal refused {step} (HTTP 500)")),
            "{err}"
        );
        assert_eq!(
            env.emu.faults().pending(*operation),
            0,
            "{operation:?} was reached"
        );
        // The next publish finishes the work.
        let answer = env.client().publish(&request(TABLES)).await.unwrap();
        assert_eq!(answer.len(), 2);
        let state = env.emu.state();
        assert_eq!(state.resources.len(), 2, "{operation:?}");
        assert_eq!(
            state.resource_group_actions(PROJECT, GROUP),
            ["RESOURCES_VIEW"]
        );
        assert!(
            state
                .subject(DEFAULT_USER)
                .unwrap()
                .groups
                .contains(&GROUP.to_owned())
        );
    }
}

enum Setup {
    Empty,
    UserWithoutGroup,
    PublishedWithOtherPassword,
}

impl Setup {
    async fn apply(&self, env: &Env) {
        match self {
            Setup::Empty => {}
            Setup::UserWithoutGroup => env
                .emu
                .add_user(DEFAULT_USER, "Pr3vious!pw", &["other"])
                .unwrap(),
            Setup::PublishedWithOtherPassword => {
                env.client()
                    .publish(&crate::request_with_password(TABLES, "0ld-reader!pw"))
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_hung_opal_times_out_within_the_request_timeout() {
    let env = Env::start().await;
    env.emu.faults().push(Operation::ListResources, Fault::Hang);
    let mut settings = env.settings();
    settings.request_timeout = Duration::from_millis(400);
    let client = OpalClient::new(settings).unwrap();
    let started = Instant::now();
    let err = client.publish(&request(TABLES)).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, OpalError::Timeout { step, after } if step == "listing the resources of Opal project `Pr004`" && *after == Duration::from_millis(400)),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        err.to_string().contains("did not answer within 0.4s"),
        "{err}"
    );
}

#[tokio::test]
async fn gets_are_retried_on_503_and_dropped_connections_writes_are_not() {
    let env = Env::start().await;
    env.emu
        .faults()
        .push(Operation::GetProject, Fault::Status { status: 503 });
    env.emu
        .faults()
        .push(Operation::GetProject, Fault::DropConnection);
    env.emu
        .faults()
        .push(Operation::CreateProject, Fault::Status { status: 503 });
    let err = env.client().publish(&request(TABLES)).await.unwrap_err();
    assert!(
        matches!(&err, OpalError::Refused { step, status: 503, message } if step == "creating Opal project `Pr004`" && message == "no details given"),
        "{err:?}"
    );
    let ops: Vec<(Option<Operation>, u16)> = env
        .emu
        .journal()
        .iter()
        .map(|e| (e.operation, e.status))
        .collect();
    assert_eq!(
        ops,
        [
            (Some(Operation::GetProject), 503),
            (Some(Operation::GetProject), 0),
            (Some(Operation::GetProject), 404),
            (Some(Operation::CreateProject), 503),
        ]
    );
    // A write whose connection drops is not retried either: publishing again is the retry.
    env.emu
        .faults()
        .push(Operation::CreateProject, Fault::DropConnection);
    let err = env.client().publish(&request(TABLES)).await.unwrap_err();
    assert!(
        matches!(&err, OpalError::Unreachable { step, .. } if step == "creating Opal project `Pr004`"),
        "{err:?}"
    );
    assert_eq!(
        env.client().publish(&request(TABLES)).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn three_failed_gets_give_up() {
    let env = Env::start().await;
    for _ in 0..3 {
        env.emu
            .faults()
            .push(Operation::GetGroup, Fault::Status { status: 503 });
    }
    let err = env.client().publish(&request(TABLES)).await.unwrap_err();
    assert!(
        matches!(&err, OpalError::Refused { status: 503, step, .. } if step == "reading Opal group `Pr004_group`"),
        "{err:?}"
    );
    assert_eq!(
        env.emu
            .journal()
            .iter()
            .filter(|e| e.operation == Some(Operation::GetGroup))
            .count(),
        3
    );
}

#[tokio::test]
async fn nobody_listening_is_unreachable() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = OpalSettings::new(
        format!("http://127.0.0.1:{port}"),
        ADMIN,
        SecretString::from(ADMIN_PASSWORD),
    );
    let err = OpalClient::new(settings)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpalError::Unreachable { step, .. } if step == "signing in to Opal as `administrator`"),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn invalid_settings_and_requests() {
    let cases: &[(&str, &str, &str)] = &[
        ("opal.example.org", ADMIN, "is not a URL"),
        ("http://opal.example.org", ADMIN, "must use https://"),
        ("ftp://opal.example.org", ADMIN, "must use https://"),
        (
            "https://user:pw@opal.example.org",
            ADMIN,
            "must not carry a user or password",
        ),
        ("https://opal.example.org/?x=1", ADMIN, "query or fragment"),
        ("https://opal.example.org", "", "username must be set"),
        ("https://opal.example.org", "a:b", "cannot contain `:`"),
    ];
    for (url, user, want) in cases {
        let err =
            OpalClient::new(OpalSettings::new(*url, *user, SecretString::from("pw"))).unwrap_err();
        assert!(matches!(err, OpalError::InvalidSettings { .. }), "{url}");
        assert!(err.to_string().contains(want), "{url}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
    for ok in [
        "https://opal.example.org/opal/",
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:1",
    ] {
        assert!(
            OpalClient::new(OpalSettings::new(ok, ADMIN, SecretString::from("pw"))).is_ok(),
            "{ok}"
        );
    }
    let mut settings =
        OpalSettings::new("https://opal.example.org", ADMIN, SecretString::from("pw"));
    settings.ca_file = Some("/nonexistent/ca.pem".into());
    let err = OpalClient::new(settings).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read the Opal CA file /nonexistent/ca.pem"),
        "{err}"
    );

    let env = Env::start().await;
    let mut bad = request(TABLES);
    bad.project = "Pr.004".into();
    let err = env.client().publish(&bad).await.unwrap_err();
    assert!(matches!(err, OpalError::InvalidRequest { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("Opal refuses the project name `Pr.004`"),
        "{err}"
    );
    assert!(env.emu.journal().is_empty(), "nothing sent");
    assert!(publish_opal::opal_project_name_allowed(PROJECT));
    assert!(!publish_opal::opal_project_name_allowed("Pr.004"));
}
