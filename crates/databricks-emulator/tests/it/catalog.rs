//! Unity Catalog: get table, its errors, and the paginated list with its flags.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use databricks_emulator::fixtures::{Sidecar, SidecarColumn, write_table};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{ADMISSIONS, Env, admissions_batch};

fn column<'a>(table: &'a Value, name: &str) -> &'a Value {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[tokio::test]
async fn get_table_describes_every_column() {
    let env = Env::start().await;
    let (status, table) = env
        .get(&format!("/api/2.1/unity-catalog/tables/{ADMISSIONS}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{table}");
    assert_eq!(table["name"], "admissions");
    assert_eq!(table["catalog_name"], "tre");
    assert_eq!(table["schema_name"], "cohort_a");
    assert_eq!(table["full_name"], ADMISSIONS);
    assert_eq!(table["table_type"], "MANAGED");
    assert_eq!(table["data_source_format"], "DELTA");
    assert_eq!(table["comment"], "one row per hospital admission");
    assert_eq!(
        table["table_constraints"],
        json!([{"primary_key_constraint": {"name": "admissions_pk", "child_columns": ["AdmissionId"]}}])
    );
    let expected = [
        ("AdmissionId", "LONG", "bigint", false),
        ("cost_gbp", "DECIMAL", "decimal(12,2)", true),
        ("admitted", "TIMESTAMP", "timestamp", true),
        ("discharged_local", "TIMESTAMP_NTZ", "timestamp_ntz", true),
        ("admit_date", "DATE", "date", true),
        ("ward", "STRING", "string", true),
        ("ward_codes", "ARRAY", "array<string>", true),
        ("tiny", "BYTE", "tinyint", true),
        ("small", "SHORT", "smallint", true),
        ("num", "INT", "int", true),
        ("ratio32", "FLOAT", "float", true),
        ("ratio", "DOUBLE", "double", true),
        ("flag", "BOOLEAN", "boolean", true),
        ("blob", "BINARY", "binary", true),
        ("code", "CHAR", "char(3)", true),
        ("we`ird col", "INT", "int", true),
    ];
    let columns = table["columns"].as_array().unwrap();
    assert_eq!(columns.len(), expected.len());
    for (position, (c, (name, type_name, type_text, nullable))) in
        columns.iter().zip(expected).enumerate()
    {
        assert_eq!(c["name"], name);
        assert_eq!(c["type_name"], type_name, "{name}");
        assert_eq!(c["type_text"], type_text, "{name}");
        assert_eq!(c["position"], position);
        assert_eq!(c["nullable"], nullable, "{name}");
        let type_json: Value = serde_json::from_str(c["type_json"].as_str().unwrap()).unwrap();
        assert_eq!(type_json["name"], name);
        assert_eq!(type_json["nullable"], nullable);
    }
    let id = column(&table, "AdmissionId");
    assert_eq!(
        id["type_json"],
        r#"{"name":"AdmissionId","type":"long","nullable":false,"metadata":{}}"#
    );
    let cost = column(&table, "cost_gbp");
    assert_eq!(cost["type_precision"], 12);
    assert_eq!(cost["type_scale"], 2);
    assert_eq!(cost["comment"], "tariff cost");
    assert_eq!(
        cost["type_json"],
        r#"{"name":"cost_gbp","type":"decimal(12,2)","nullable":true,"metadata":{"comment":"tariff cost"}}"#
    );
    assert_eq!(
        column(&table, "ward_codes")["type_json"],
        r#"{"name":"ward_codes","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}}"#
    );
    assert_eq!(
        column(&table, "code")["type_json"],
        r#"{"name":"code","type":"string","nullable":true,"metadata":{"comment":"ward code","__CHAR_VARCHAR_TYPE_STRING":"char(3)"}}"#
    );
    assert_eq!(
        column(&table, "num")["type_json"],
        r#"{"name":"num","type":"integer","nullable":true,"metadata":{}}"#
    );
}

#[tokio::test]
async fn get_table_is_case_insensitive_and_percent_decoded() {
    let env = Env::start().await;
    let (status, table) = env
        .get("/api/2.1/unity-catalog/tables/TRE.Cohort_A.%41dmissions")
        .await;
    assert_eq!(status, StatusCode::OK, "{table}");
    assert_eq!(table["full_name"], ADMISSIONS);
}

#[tokio::test]
async fn get_table_not_found_levels() {
    let env = Env::start().await;
    let cases = [
        (
            "tre.cohort_a.nope",
            "TABLE_DOES_NOT_EXIST",
            "Table 'tre.cohort_a.nope' does not exist.",
        ),
        (
            "tre.nope.t",
            "SCHEMA_DOES_NOT_EXIST",
            "Schema 'tre.nope' does not exist.",
        ),
        (
            "nope.s.t",
            "CATALOG_DOES_NOT_EXIST",
            "Catalog 'nope' does not exist.",
        ),
    ];
    for (name, code, message) in cases {
        let (status, body) = env
            .get(&format!("/api/2.1/unity-catalog/tables/{name}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
        assert_eq!(body, json!({"error_code": code, "message": message}));
    }
    let (status, body) = env.get("/api/2.1/unity-catalog/tables/only.two").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn list_tables_paginates_without_constraints() {
    let env = Env::start().await;
    for name in ["t1", "t2", "t3"] {
        write_table(
            env.dir.path(),
            "tre",
            "cohort_a",
            name,
            &[admissions_batch(0, 3)],
            None,
        )
        .unwrap();
    }
    // Tables written after start are visible: the data directory is read at request time.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path =
            "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&max_results=2"
                .to_owned();
        if let Some(token) = &token {
            path.push_str(&format!("&page_token={token}"));
        }
        let (status, page) = env.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for table in page["tables"].as_array().into_iter().flatten() {
            assert!(table.get("table_constraints").is_none());
            assert!(table["columns"].is_array());
            names.push(table["name"].as_str().unwrap().to_owned());
        }
        match page["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    assert_eq!(names, ["admissions", "empty", "t1", "t2", "t3"]);
    assert_eq!(pages, 3);

    let (status, all) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["tables"].as_array().unwrap().len(), 5);
    assert!(all.get("next_page_token").is_none());

    let (status, body) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&max_results=-1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let (status, body) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=nope&max_results=0")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "SCHEMA_DOES_NOT_EXIST");
}

/// One column of a generated table: what the Parquet file holds, what the sidecar adds, and what
/// the list must report.
struct ColumnSpec {
    name: String,
    data_type: DataType,
    sidecar_type: Option<&'static str>,
    comment: Option<String>,
    type_name: &'static str,
    type_text: String,
}

/// Table `t{i}` of the walk: its columns vary with `i`, so a mixed-up page would show.
fn walk_table(i: usize) -> Vec<ColumnSpec> {
    let mut columns = vec![
        ColumnSpec {
            name: "id".into(),
            data_type: DataType::Int64,
            sidecar_type: None,
            comment: Some(format!("key of t{i}")),
            type_name: "LONG",
            type_text: "bigint".into(),
        },
        ColumnSpec {
            name: "Label".into(),
            data_type: DataType::Utf8,
            sidecar_type: Some("varchar(40)"),
            comment: i.is_multiple_of(2).then(|| format!("label {i}")),
            type_name: "STRING",
            type_text: "varchar(40)".into(),
        },
        ColumnSpec {
            name: format!("amount_{i}"),
            data_type: DataType::Decimal128(10 + i as u8, 2),
            sidecar_type: None,
            comment: None,
            type_name: "DECIMAL",
            type_text: format!("decimal({},2)", 10 + i),
        },
    ];
    if i.is_multiple_of(3) {
        columns.push(ColumnSpec {
            name: "code".into(),
            data_type: DataType::Utf8,
            sidecar_type: Some("char(2)"),
            comment: Some("two letters".into()),
            type_name: "CHAR",
            type_text: "char(2)".into(),
        });
    }
    columns.push(ColumnSpec {
        name: "seen".into(),
        data_type: DataType::Date32,
        sidecar_type: None,
        comment: None,
        type_name: "DATE",
        type_text: "date".into(),
    });
    columns
}

fn write_walk_table(dir: &Path, schema: &str, name: &str, columns: &[ColumnSpec]) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.data_type.clone(), true))
        .collect();
    let batch = RecordBatch::new_empty(Arc::new(Schema::new(fields)));
    let mut sidecar = Sidecar {
        comment: Some(format!("table {name}")),
        ..Sidecar::default()
    };
    for c in columns {
        if c.sidecar_type.is_some() || c.comment.is_some() {
            sidecar.columns.insert(
                c.name.clone(),
                SidecarColumn {
                    type_text: c.sidecar_type.map(str::to_owned),
                    comment: c.comment.clone(),
                },
            );
        }
    }
    write_table(dir, "tre", schema, name, &[batch], Some(&sidecar)).unwrap();
}

/// Walks `tre.{schema}` with `max_results`, returning each page's tables and whether a token
/// followed.
async fn walk(env: &Env, schema: &str, max_results: i64) -> Vec<(Vec<Value>, bool)> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name={schema}&max_results={max_results}"
        );
        if let Some(token) = &token {
            path.push_str(&format!("&page_token={token}"));
        }
        let (status, page) = env.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let tables = page["tables"].as_array().cloned().unwrap_or_default();
        token = page["next_page_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        pages.push((tables, token.is_some()));
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "the walk does not end");
    }
}

#[tokio::test]
async fn list_tables_walk_sees_every_table_once_with_its_columns() {
    let env = Env::start().await;
    const TABLES: usize = 7;
    for i in 0..TABLES {
        write_walk_table(env.dir.path(), "walk", &format!("t{i}"), &walk_table(i));
    }
    let pages = walk(&env, "walk", 3).await;
    let sizes: Vec<usize> = pages.iter().map(|(tables, _)| tables.len()).collect();
    assert_eq!(
        sizes,
        [3, 3, 1],
        "pages of min(3, cap); the last one is not empty"
    );
    assert!(!pages.last().unwrap().1, "no token on the last page");

    let mut seen: HashMap<String, usize> = HashMap::new();
    for table in pages.iter().flat_map(|(tables, _)| tables) {
        let name = table["name"].as_str().unwrap().to_owned();
        *seen.entry(name.clone()).or_default() += 1;
        assert_eq!(table["full_name"], format!("tre.walk.{name}"));
        assert_eq!(table["comment"], format!("table {name}"));
        assert!(table.get("table_constraints").is_none());
        let i: usize = name.strip_prefix('t').unwrap().parse().unwrap();
        let expected = walk_table(i);
        let columns = table["columns"].as_array().unwrap();
        assert_eq!(columns.len(), expected.len(), "{name}");
        for (position, (c, e)) in columns.iter().zip(&expected).enumerate() {
            let at = format!("{name}.{}", e.name);
            assert_eq!(c["name"], e.name, "{at}");
            assert_eq!(c["type_name"], e.type_name, "{at}");
            assert_eq!(c["type_text"], e.type_text, "{at}");
            assert_eq!(
                c.get("comment").and_then(Value::as_str),
                e.comment.as_deref(),
                "{at}"
            );
            assert_eq!(c["position"], position, "{at}");
            assert_eq!(c["nullable"], true, "{at}");
            let type_json: Value = serde_json::from_str(c["type_json"].as_str().unwrap()).unwrap();
            assert_eq!(type_json["name"], e.name, "{at}");
            assert_eq!(
                type_json["metadata"].get("comment").and_then(Value::as_str),
                e.comment.as_deref(),
                "{at}"
            );
        }
    }
    let expected: HashMap<String, usize> = (0..TABLES).map(|i| (format!("t{i}"), 1)).collect();
    assert_eq!(seen, expected, "every table exactly once");
}

#[tokio::test]
async fn list_tables_last_full_page_has_no_token() {
    let env = Env::start().await;
    // tre.cohort_a holds exactly two tables.
    let pages = walk(&env, "cohort_a", 2).await;
    assert_eq!(pages.len(), 1);
    let names: Vec<&str> = pages[0]
        .0
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admissions", "empty"]);
}

#[tokio::test]
async fn list_tables_caps_the_page_size() {
    let env = Env::start().await;
    const TABLES: usize = 53;
    let one = [ColumnSpec {
        name: "id".into(),
        data_type: DataType::Int64,
        sidecar_type: None,
        comment: None,
        type_name: "LONG",
        type_text: "bigint".into(),
    }];
    for i in 0..TABLES {
        write_walk_table(env.dir.path(), "many", &format!("t{i:02}"), &one);
    }
    for max_results in [0, 51, 1_000_000] {
        let pages = walk(&env, "many", max_results).await;
        let sizes: Vec<usize> = pages.iter().map(|(tables, _)| tables.len()).collect();
        assert_eq!(sizes, [50, 3], "max_results={max_results}");
    }
    let (status, all) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=many")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        all["tables"].as_array().unwrap().len(),
        TABLES,
        "unpaginated"
    );
    assert!(all.get("next_page_token").is_none());
}

#[tokio::test]
async fn list_tables_flags_and_errors() {
    let env = Env::start().await;
    let list = "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&max_results=0";
    let (status, page) = env.get(list).await;
    assert_eq!(status, StatusCode::OK);
    let full = &page["tables"][0];
    for key in ["columns", "properties", "owner", "created_by", "updated_by"] {
        assert!(full.get(key).is_some(), "{key}: {full}");
    }

    let (status, page) = env
        .get(&format!(
            "{list}&omit_columns=true&omit_properties=true&omit_username=true&include_browse=true"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let tables = page["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    for table in tables {
        for key in ["columns", "properties", "owner", "created_by", "updated_by"] {
            assert!(table.get(key).is_none(), "{key}: {table}");
        }
        assert!(table["full_name"].is_string());
        assert!(table["created_at"].is_i64());
    }
    let (_, page) = env.get(&format!("{list}&omit_columns=false")).await;
    assert!(page["tables"][0]["columns"].is_array());

    let bad_requests = [
        "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&max_results=-5",
        "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&max_results=ten",
        "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&page_token=bogus",
        "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&include_browse=yes",
        "/api/2.1/unity-catalog/tables?catalog_name=tre&schema_name=cohort_a&omit_columns=1",
        "/api/2.1/unity-catalog/tables?catalog_name=tre",
        "/api/2.1/unity-catalog/tables?schema_name=cohort_a",
    ];
    for path in bad_requests {
        let (status, body) = env.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{path}");
    }
    let (status, body) = env
        .get("/api/2.1/unity-catalog/tables?catalog_name=nope&schema_name=cohort_a&max_results=0")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error_code": "CATALOG_DOES_NOT_EXIST", "message": "Catalog 'nope' does not exist."})
    );
}
