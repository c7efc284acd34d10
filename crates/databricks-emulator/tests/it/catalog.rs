//! Unity Catalog: get table, its errors, and the paginated list.

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
        databricks_emulator::fixtures::write_table(
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
