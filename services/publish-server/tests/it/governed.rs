//! Issue 21 through the server: a dataset of every kind of object a TRE governs — a table with
//! per-table row filters and column masks (its history refused, or only its time travel), an
//! ABAC-governed table (time travel refused, and allowed), a view, a materialized view and a
//! foreign table — packages with every value right, and the package record says how each
//! table was read.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use databricks_emulator::fixtures::{Governance, Sidecar, write_table};
use serde_json::{Value, json};

use crate::package::setup_with;
use crate::support::{Server, post_ok};

const CATALOG: &str = "tre";
const SCHEMA: &str = "governed";

/// Rows of table number `seed`: 1 500 rows, a few null postcodes.
fn rows(seed: i64) -> RecordBatch {
    let ids: Vec<i64> = (0..1_500).map(|i| i * 10 + seed).collect();
    let postcodes: Vec<Option<String>> = ids
        .iter()
        .map(|i| (i % 13 != 0).then(|| format!("PR{} ***", i % 97)))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("postcode", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(postcodes)),
        ],
    )
    .unwrap()
}

fn kinds() -> Vec<(&'static str, Governance)> {
    let masks: BTreeMap<String, String> = [(
        "postcode".to_owned(),
        "tre.policies.mask_postcode".to_owned(),
    )]
    .into();
    let filter = Some((
        "tre.policies.cohort_rows".to_owned(),
        vec!["person_id".to_owned()],
    ));
    vec![
        (
            "masked",
            Governance::RowFilterColumnMask {
                row_filter: filter.clone(),
                column_masks: masks.clone(),
                history_readable: false,
                time_travel_refusal: None,
            },
        ),
        (
            "masked_history",
            Governance::RowFilterColumnMask {
                row_filter: filter,
                column_masks: masks,
                history_readable: true,
                time_travel_refusal: Some("FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM".into()),
            },
        ),
        (
            "abac",
            Governance::Abac {
                time_travel_refused: Some("NOT_CATALOG_OWNED".into()),
            },
        ),
        (
            "abac_pinned",
            Governance::Abac {
                time_travel_refused: None,
            },
        ),
        (
            "person_view",
            Governance::View {
                definition: "SELECT * FROM tre.cohort.person".into(),
            },
        ),
        (
            "person_mv",
            Governance::MaterializedView {
                definition: "SELECT * FROM tre.cohort.person".into(),
            },
        ),
        (
            "person_foreign",
            Governance::Foreign {
                data_source_format: "POSTGRESQL_FORMAT".into(),
            },
        ),
    ]
}

#[tokio::test]
async fn every_kind_of_governed_object_packages_with_every_value_and_the_record_says_how() {
    let data = tempfile::tempdir().unwrap();
    for (seed, (name, governance)) in kinds().into_iter().enumerate() {
        let sidecar = Sidecar {
            governance: Some(governance),
            ..Sidecar::default()
        };
        write_table(
            data.path(),
            CATALOG,
            SCHEMA,
            name,
            &[rows(seed as i64)],
            Some(&sidecar),
        )
        .unwrap();
    }
    let (d, emulator) = setup_with(data.path().to_path_buf()).await;
    let server = Server::start(&d);
    let mut body = crate::support::fixture("package-shape-b.json");
    body["source"]["host_url"] = json!(emulator.url());
    body["source"]["catalog"] = json!(CATALOG);
    body["dataset"] = json!({
        "name": "governed",
        "schema_name": SCHEMA,
        "tables": kinds().iter().map(|(name, _)| json!({"name": name})).collect::<Vec<_>>(),
    });
    post_ok(&server.url, "/data-publish/package", &body).await;

    let staged = d.mount("lsc").join("staging/Pr004/20250205_010101");
    let db = staged.join("data/outputs/database.duckdb");
    let conn = duckdb::Connection::open_with_flags(
        &db,
        duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .unwrap(),
    )
    .unwrap();
    for (seed, (name, _)) in kinds().into_iter().enumerate() {
        let want = rows(seed as i64);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT person_id, postcode FROM \"{SCHEMA}\".\"{name}\" ORDER BY person_id"
            ))
            .unwrap();
        let got: Vec<(i64, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let ids = want
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let postcodes = want
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let want: Vec<(i64, Option<String>)> = (0..want.num_rows())
            .map(|i| {
                (
                    ids.value(i),
                    (!arrow::array::Array::is_null(postcodes, i))
                        .then(|| postcodes.value(i).to_owned()),
                )
            })
            .collect();
        assert_eq!(got, want, "{name}: every value");
    }
    drop(conn);

    let record: Value =
        serde_json::from_slice(&std::fs::read(staged.join("package-record.json")).unwrap())
            .unwrap();
    let tables = record["datasets"][0]["tables"].as_array().unwrap();
    let read = |name: &str| -> (Option<String>, Option<String>) {
        let t = tables.iter().find(|t| t["table"] == name).unwrap();
        (
            t["snapshot"].as_str().map(str::to_owned),
            t["unpinned"].as_str().map(str::to_owned),
        )
    };
    for (name, class) in [
        (
            "masked",
            "ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.DESCRIBE_HISTORY",
        ),
        (
            "masked_history",
            "FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM",
        ),
        ("abac", "FGAC_TIME_TRAVEL_NOT_SUPPORTED.NOT_CATALOG_OWNED"),
        ("person_view", "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE"),
        ("person_mv", "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE"),
        ("person_foreign", "DELTA_ONLY_OPERATION"),
    ] {
        let (snapshot, unpinned) = read(name);
        assert_eq!(snapshot, None, "{name}");
        let unpinned = unpinned.unwrap_or_else(|| panic!("{name}: the record says why"));
        assert!(
            unpinned.contains(&format!("[{class}]")),
            "{name}: {unpinned}"
        );
    }
    assert_eq!(
        read("abac_pinned"),
        (Some("delta version 0".to_owned()), None)
    );

    let publish = json!({"project_name": body["project_name"], "project_start_time": body["project_start_time"],
                         "destination": body["destination"]});
    post_ok(&server.url, "/data-publish/publish", &publish).await;
}
