//! Issue 21: objects a TRE governs — per-table row filters and column masks, ABAC policies,
//! views, materialized views, foreign tables — are read as Databricks allows (unpinned where it
//! refuses to pin them, saying why), every value intact; every other failure stays a failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use databricks_emulator::fixtures::{Governance, Sidecar, TableWriter};
use databricks_emulator::{Fault, Operation};
use publish_source::conformance::{assert_batches_eq, collect};
use publish_source::{Source, SourceError};

use crate::common::{CATALOG, Env, SCHEMA, request};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("person_id", DataType::Int64, false),
        Field::new("postcode", DataType::Utf8, true),
    ]))
}

/// 300 rows (five chunks of 64), a masked-looking column among them.
fn rows() -> RecordBatch {
    let ids: Vec<i64> = (0..300).collect();
    let postcodes: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 7 != 0).then(|| format!("PR{} ***", i % 10)))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(postcodes)),
        ],
    )
    .expect("batch")
}

fn write(env: &Env, name: &str, governance: Governance) {
    let mut writer =
        TableWriter::create(env.dir.path(), CATALOG, SCHEMA, name, schema()).expect("create");
    writer.write(&rows()).expect("write");
    let sidecar = Sidecar {
        governance: Some(governance),
        ..Sidecar::default()
    };
    writer.finish(Some(&sidecar)).expect("finish");
}

fn statements(env: &Env) -> Vec<String> {
    env.emulator
        .submitted_statements()
        .iter()
        .map(|s| s["statement"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Reads table `name` whole; returns its snapshot and unpinned reason, checking every value.
async fn read(env: &Env, name: &str) -> (Option<String>, Option<String>) {
    let source = env.source();
    let schema = source
        .describe(&request(name, None))
        .await
        .expect("describe");
    let stream = source.read(&schema).await.expect("read");
    let pinned = (stream.snapshot.clone(), stream.unpinned.clone());
    let got = collect(stream).await;
    assert_batches_eq(&got, &rows(), name);
    pinned
}

fn masks() -> BTreeMap<String, String> {
    [(
        "postcode".to_owned(),
        "tre.policies.mask_postcode".to_owned(),
    )]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_row_filters_and_masks_whose_history_is_refused_is_read_unpinned() {
    let env = Env::start().await;
    write(
        &env,
        "masked",
        Governance::RowFilterColumnMask {
            row_filter: Some(("tre.policies.cohort_rows".into(), vec!["person_id".into()])),
            column_masks: masks(),
            history_readable: false,
            time_travel_refusal: None,
        },
    );
    let (snapshot, unpinned) = read(&env, "masked").await;
    assert_eq!(snapshot, None);
    let reason = unpinned.expect("the record says why");
    assert!(
        reason.contains("DESCRIBE HISTORY")
            && reason.contains("row filters or column masks")
            && reason.contains(
                "[ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.DESCRIBE_HISTORY]"
            ),
        "{reason}"
    );
    let sent = statements(&env);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent[1].contains("VERSION AS OF"), "{sent:?}");
}

/// The finding of issue 21: the history is readable, time travel is refused — the read falls
/// back to an unpinned SELECT instead of failing with 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_time_travel_is_refused_is_read_again_unpinned() {
    for (refusal, why) in [
        (
            None,
            "it has row filters or column masks [ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.TIME_TRAVEL]",
        ),
        (
            Some("FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM"),
            "per-table row filters or column masks [FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM]",
        ),
    ] {
        let env = Env::start().await;
        write(
            &env,
            "masked",
            Governance::RowFilterColumnMask {
                row_filter: Some(("tre.policies.cohort_rows".into(), vec!["person_id".into()])),
                column_masks: masks(),
                history_readable: true,
                time_travel_refusal: refusal.map(str::to_owned),
            },
        );
        let (snapshot, unpinned) = read(&env, "masked").await;
        assert_eq!(snapshot, None);
        let reason = unpinned.expect("unpinned");
        assert!(
            reason.contains("time travel") && reason.contains(why),
            "{reason}"
        );
        let sent = statements(&env);
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent[0].starts_with("DESCRIBE HISTORY"), "{sent:?}");
        assert!(sent[1].ends_with("VERSION AS OF 0"), "{sent:?}");
        assert!(!sent[2].contains("VERSION AS OF"), "{sent:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abac_governed_table_is_pinned_where_time_travel_works_and_unpinned_where_refused() {
    let env = Env::start().await;
    write(
        &env,
        "abac_ok",
        Governance::Abac {
            time_travel_refused: None,
        },
    );
    let (snapshot, unpinned) = read(&env, "abac_ok").await;
    assert_eq!(snapshot.as_deref(), Some("delta version 0"));
    assert_eq!(unpinned, None);
    for sub in [
        "NOT_CATALOG_OWNED",
        "NOT_UC_MANAGED_TABLE",
        "DEDICATED_COMPUTE",
    ] {
        let name = format!("abac_{}", sub.to_ascii_lowercase());
        write(
            &env,
            &name,
            Governance::Abac {
                time_travel_refused: Some(sub.into()),
            },
        );
        let (snapshot, unpinned) = read(&env, &name).await;
        assert_eq!(snapshot, None, "{sub}");
        let reason = unpinned.expect("unpinned");
        assert!(
            reason.contains(&format!("[FGAC_TIME_TRAVEL_NOT_SUPPORTED.{sub}]")),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_materialized_views_and_foreign_tables_are_read_unpinned() {
    let env = Env::start().await;
    let kinds = [
        (
            "person_view",
            Governance::View {
                definition: "SELECT person_id, postcode FROM tre.cohort_a.person".into(),
            },
            "it is a view [EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE]",
        ),
        (
            "person_mv",
            Governance::MaterializedView {
                definition: "SELECT person_id, postcode FROM tre.cohort_a.person".into(),
            },
            "it is a view [EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE]",
        ),
        (
            "person_foreign",
            Governance::Foreign {
                data_source_format: "POSTGRESQL_FORMAT".into(),
            },
            "it is not a Delta table [DELTA_ONLY_OPERATION]",
        ),
    ];
    for (name, governance, why) in kinds {
        write(&env, name, governance);
        let (snapshot, unpinned) = read(&env, name).await;
        assert_eq!(snapshot, None, "{name}");
        let reason = unpinned.expect("unpinned");
        assert!(reason.contains(why), "{name}: {reason}");
    }
}

/// Only the documented refusals unpin a read: a genuine failure of the pinned SELECT (also
/// `BAD_REQUEST`) fails it, and is not retried unpinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_other_failure_of_a_pinned_read_stays_a_failure() {
    let env = Env::start().await;
    write(
        &env,
        "abac_ok",
        Governance::Abac {
            time_travel_refused: None,
        },
    );
    let source = env.source();
    let schema = source
        .describe(&request("abac_ok", None))
        .await
        .expect("describe");
    let faults = env.emulator.faults();
    faults.push(
        Operation::ExecuteStatement,
        Fault::Slow {
            delay: std::time::Duration::ZERO,
        },
    );
    faults.push(
        Operation::ExecuteStatement,
        Fault::FailStatement {
            error_code: "BAD_REQUEST".into(),
            message: "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have \
                      SELECT on Table 'tre.cohort_a.abac_ok'. SQLSTATE: 42501"
                .into(),
        },
    );
    let err = match source.read(&schema).await {
        Ok(_) => panic!("the read must fail"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, SourceError::Statement { message, .. } if message.contains("INSUFFICIENT_PERMISSIONS")),
        "{err:?}"
    );
    assert_eq!(statements(&env).len(), 2, "not read again unpinned");
}

/// Unity Catalog describes each kind as Databricks does (`table_type`, `data_source_format`,
/// `view_definition`, `row_filter`, a column's `mask`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unity_catalog_describes_each_kind() {
    let env = Env::start().await;
    write(
        &env,
        "masked",
        Governance::RowFilterColumnMask {
            row_filter: Some(("tre.policies.cohort_rows".into(), vec!["person_id".into()])),
            column_masks: masks(),
            history_readable: false,
            time_travel_refusal: None,
        },
    );
    write(
        &env,
        "person_view",
        Governance::View {
            definition: "SELECT 1".into(),
        },
    );
    write(
        &env,
        "person_foreign",
        Governance::Foreign {
            data_source_format: "POSTGRESQL_FORMAT".into(),
        },
    );
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oidc/v1/token", env.emulator.url()))
        .basic_auth("emulator-client-id", Some("emulator-client-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"].as_str().expect("access token");
    let get = |name: &str| {
        let request = http
            .get(format!(
                "{}/api/2.1/unity-catalog/tables/{CATALOG}.{SCHEMA}.{name}",
                env.emulator.url()
            ))
            .bearer_auth(token);
        async move {
            request
                .send()
                .await
                .expect("get table")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let masked = get("masked").await;
    assert_eq!(masked["table_type"], "MANAGED");
    assert_eq!(
        masked["row_filter"]["function_name"],
        "tre.policies.cohort_rows"
    );
    assert_eq!(
        masked["columns"][1]["mask"]["function_name"],
        "tre.policies.mask_postcode"
    );
    let view = get("person_view").await;
    assert_eq!(view["table_type"], "VIEW");
    assert_eq!(view["view_definition"], "SELECT 1");
    assert!(view.get("data_source_format").is_none());
    let foreign = get("person_foreign").await;
    assert_eq!(foreign["table_type"], "FOREIGN");
    assert_eq!(foreign["data_source_format"], "POSTGRESQL_FORMAT");
}
