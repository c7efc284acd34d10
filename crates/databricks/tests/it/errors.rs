//! Errors a caller can act on: names that do not exist, refused hosts, bad configuration and
//! failed statements.

use databricks_emulator::{Fault, Operation};
use publish_databricks::DatabricksSource;
use publish_source::{Source, SourceError};
use publish_types::HostAllowList;

use crate::common::{Env, request};

#[tokio::test]
async fn unknown_table_and_column_are_named() {
    let env = Env::start().await;
    let source = env.source();
    let err = source.describe(&request("nope", None)).await.unwrap_err();
    assert_eq!(
        err,
        SourceError::UnknownTable {
            table: "tre.cohort_a.nope".into()
        }
    );
    let err = source
        .describe(&request("people", Some(&["Id", "agee"])))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "table `tre.cohort_a.people` has no column `agee`; available: Id, Name, Age"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_before_any_request() {
    let env = Env::start().await;
    // A source's host is an `AllowedHost`: the default list does not admit the emulator's.
    let refused = HostAllowList::default().admit(&env.host()).unwrap_err();
    assert_eq!(refused.host, env.emulator.url());
    assert!(
        refused.allowed.contains("*.azuredatabricks.net"),
        "{refused}"
    );
    assert!(
        env.journal().is_empty(),
        "nothing was contacted: {:?}",
        env.journal()
    );
}

#[tokio::test]
async fn an_http_path_without_a_warehouse_is_refused() {
    let env = Env::start().await;
    let mut config = env.config();
    config.http_path = "/sql/1.0/".into();
    let err = DatabricksSource::new(config).unwrap_err();
    assert!(matches!(err, SourceError::InvalidConfig { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/sql/1.0/warehouses/<warehouse id>"),
        "{err}"
    );
    assert!(env.journal().is_empty());
}

#[tokio::test]
async fn a_failed_statement_reports_its_code_and_message() {
    let env = Env::start().await;
    let source = env.source();
    let schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    env.emulator.faults().push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "INTERNAL_ERROR".into(),
            message: "[INTERNAL_ERROR] The warehouse fell over. SQLSTATE: XX000".into(),
        },
    );
    let err = source.read(&schema).await.map(|_| ()).unwrap_err();
    match &err {
        SourceError::Statement {
            error_code,
            message,
            ..
        } => {
            assert_eq!(error_code, "INTERNAL_ERROR");
            assert!(message.contains("The warehouse fell over"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        env.count(Operation::Cancel),
        0,
        "a failed statement needs no cancel"
    );
}

#[tokio::test]
async fn a_query_the_warehouse_rejects_is_a_statement_error_with_sql_state() {
    let env = Env::start().await;
    let source = env.source();
    // Described, then removed from under the read: the warehouse fails the SELECT.
    let mut schema = source
        .describe(&request("people", Some(&["Id"])))
        .await
        .expect("describe");
    schema.columns[0].name = publish_types::Identifier::parse("gone").expect("id");
    let err = source.read(&schema).await.map(|_| ()).unwrap_err();
    match err {
        SourceError::Statement {
            error_code,
            message,
            sql_state,
        } => {
            assert_eq!(error_code, "BAD_REQUEST");
            assert!(message.contains("UNRESOLVED_COLUMN"), "{message}");
            assert_eq!(sql_state.as_deref(), Some("42703"));
        }
        other => panic!("{other:?}"),
    }
}
