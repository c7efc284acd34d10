//! OAuth M2M: refused credentials, a refused token refreshed once, tokens renewed before they
//! expire, and `check`.

use std::time::Duration;

use databricks_emulator::{Fault, Operation};
use publish_source::{Source, SourceError};

use crate::common::{Env, WAREHOUSE, request};

#[tokio::test]
async fn bad_credentials_are_an_authentication_error_without_the_secret() {
    let env = Env::start().await;
    let source = env.source_with(|c| c.client_secret = "wrong-secret-value".into());
    let err = source.describe(&request("people", None)).await.unwrap_err();
    assert!(matches!(err, SourceError::Authentication { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_client"), "{text}");
    // The usual cause, named: an Entra ID client secret where a Databricks OAuth secret belongs.
    assert!(
        err.to_string().contains(
            "the secret must be a Databricks OAuth secret of the service principal (created in \
             the Databricks account or workspace for it), not its Microsoft Entra ID client secret"
        ),
        "{err}"
    );
    assert!(
        !text.contains("wrong-secret-value"),
        "the secret leaked: {text}"
    );
    assert!(!err.is_transient());
    // Refused credentials are not retried.
    assert_eq!(env.count(Operation::Token), 1);
    assert_eq!(env.count(Operation::GetTable), 0);

    let err = source.check().await.unwrap_err();
    assert!(matches!(err, SourceError::Authentication { .. }), "{err:?}");
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let env = Env::start().await;
    let source = env.source();
    source
        .describe(&request("people", None))
        .await
        .expect("first describe");
    env.emulator.faults().push(
        Operation::GetTable,
        Fault::Error {
            status: 401,
            error_code: "UNAUTHENTICATED".into(),
            message: "Token expired.".into(),
        },
    );
    source
        .describe(&request("people", None))
        .await
        .expect("describe after a refreshed token");
    assert_eq!(env.count(Operation::Token), 2, "one refresh");
    assert_eq!(env.count(Operation::GetTable), 3);
}

#[tokio::test]
async fn a_second_401_is_an_authentication_error() {
    let env = Env::start().await;
    let source = env.source();
    for _ in 0..2 {
        env.emulator.faults().push(
            Operation::GetTable,
            Fault::Error {
                status: 401,
                error_code: "UNAUTHENTICATED".into(),
                message: "Token revoked.".into(),
            },
        );
    }
    let err = source.describe(&request("people", None)).await.unwrap_err();
    assert!(matches!(err, SourceError::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains("Token revoked."), "{err}");
    assert_eq!(
        env.count(Operation::GetTable),
        2,
        "refresh once, retry once"
    );
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    // A 2 s token is refreshed once half of it is gone (the margin is 5 min or half the life).
    let env = Env::start_with(|c| c.token_ttl = Duration::from_secs(2)).await;
    let source = env.source();
    source
        .describe(&request("people", None))
        .await
        .expect("describe");
    source
        .describe(&request("people", None))
        .await
        .expect("describe");
    assert_eq!(env.count(Operation::Token), 1, "cached");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    source
        .describe(&request("people", None))
        .await
        .expect("describe");
    assert_eq!(env.count(Operation::Token), 2, "renewed ahead of expiry");
    assert!(
        env.journal().iter().all(|e| e.status != 401),
        "no call was made with an expired token"
    );
}

#[tokio::test]
async fn check_accepts_good_credentials_and_an_existing_warehouse() {
    let env = Env::start().await;
    env.source().check().await.expect("check");
    assert_eq!(env.count(Operation::GetWarehouse), 1);

    // The same when the emulator lists its warehouses and this one is among them.
    let env = Env::start_with(|c| c.warehouses = Some(vec![WAREHOUSE.into()])).await;
    env.source().check().await.expect("check");
}

#[tokio::test]
async fn an_unknown_warehouse_fails_check_and_read() {
    let env = Env::start_with(|c| c.warehouses = Some(vec!["0123456789abcdef".into()])).await;
    let source = env.source();
    let err = source.check().await.unwrap_err();
    match &err {
        SourceError::UnknownWarehouse { warehouse, message } => {
            assert_eq!(warehouse, WAREHOUSE);
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected UnknownWarehouse, got {other:?}"),
    }
    assert!(err.is_not_found() && !err.is_transient());

    // Unity Catalog needs no warehouse; the query does, and fails the same way, unretried.
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe");
    let Err(err) = source.read(&schema).await else {
        panic!("the read of an unknown warehouse succeeded");
    };
    assert!(
        matches!(&err, SourceError::UnknownWarehouse { warehouse, .. } if warehouse == WAREHOUSE),
        "{err:?}"
    );
    assert_eq!(env.count(Operation::ExecuteStatement), 1);
}

/// With `TokenSource::EntraId`, tokens come from the tenant's Entra ID endpoint (the emulator's
/// stand-in for login.microsoftonline.com) with the Entra ID client secret and the Azure
/// Databricks scope, and the workspace accepts them; the Databricks endpoint is never asked.
#[tokio::test]
async fn entra_id_tokens_for_an_azure_service_principal() {
    let env = Env::start().await;
    let tenant = "11111111-2222-3333-4444-555555555555";
    let entra = |secret: &str, tenant: &str| {
        let authority = env.emulator.url();
        let secret = secret.to_owned();
        let tenant = tenant.to_owned();
        env.source_with(move |c| {
            c.client_secret = secret.into();
            c.options.token_source =
                publish_databricks::TokenSource::entra_id_at(&authority, &tenant).unwrap();
        })
    };
    let source = entra("emulator-entra-secret", tenant);
    let schema = source
        .describe(&request("people", None))
        .await
        .expect("describe with an Entra ID token");
    assert_eq!(schema, env.suite.people().definition);
    let token_calls: Vec<String> = env
        .journal()
        .iter()
        .filter(|e| e.operation == Some(Operation::Token))
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(token_calls, [format!("/{tenant}/oauth2/v2.0/token")]);

    // The Databricks OAuth secret is not an Entra ID secret: said so, without the secret.
    let err = entra("emulator-client-secret", tenant)
        .describe(&request("people", None))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Authentication { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("AADSTS7000215")
            && text.contains("must be the Entra ID client secret's value (not its id)"),
        "{text}"
    );
    assert!(!text.contains("emulator-client-secret"), "{text}");
    // A wrong tenant is named by Entra ID and the hint points at the tenant setting.
    let err = entra(
        "emulator-entra-secret",
        "22222222-0000-0000-0000-000000000000",
    )
    .describe(&request("people", None))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("AADSTS90002") && text.contains("PUBLISH_ENTRA_TENANT_ID"),
        "{text}"
    );
}

#[test]
fn entra_id_settings_are_checked() {
    use publish_databricks::TokenSource;
    assert!(TokenSource::entra_id("contoso.onmicrosoft.com").is_ok());
    assert_eq!(
        TokenSource::entra_id("11111111-2222-3333-4444-555555555555").unwrap(),
        TokenSource::EntraId {
            authority: "https://login.microsoftonline.com".into(),
            tenant: "11111111-2222-3333-4444-555555555555".into()
        }
    );
    for tenant in ["", "a/b", "x?y=1", "a b"] {
        assert!(TokenSource::entra_id(tenant).is_err(), "{tenant:?}");
    }
    for authority in [
        "login.microsoftonline.com",
        "https://",
        "https://x/path",
        "ftp://x",
    ] {
        assert!(
            TokenSource::entra_id_at(authority, "t").is_err(),
            "{authority:?}"
        );
    }
}
