//! Request contracts: both shapes normalise identically, and every rule of docs/CONTRACT.md §5 rejects
//! with an error naming the field. Cases go through one `check` helper.

use publish_types::{
    Destination, DestinationName, HostUrl, Identifier, ObjectName, OutputFormat, PackageRequest,
    PublishRequest, RequestError, SourceKind, ValidateRequest,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/requests/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

#[test]
fn brief_and_cr8tor_package_bodies_normalise_identically() {
    let a = PackageRequest::from_json(&fixture("package-shape-a.json")).unwrap();
    let mut b = PackageRequest::from_json(&fixture("package-shape-b.json")).unwrap();
    // Only shape B's dataset has a name, which identifies it among the project's datasets.
    assert_eq!(b.dataset.name.as_deref(), Some("Example dataset"));
    assert_eq!(b.dataset.id(), "Example dataset");
    assert_eq!(a.dataset.id(), "example_schema_name");
    b.dataset.name = None;
    assert_eq!(a, b);

    assert_eq!(a.project.project_name.as_str(), "Pr004");
    assert_eq!(a.project.project_start_time.as_str(), "20250205_010101");
    assert_eq!(
        a.project.destination,
        Destination::Filestore(DestinationName::parse("LSC").unwrap())
    );
    assert_eq!(a.format, OutputFormat::Duckdb);
    assert_eq!(
        a.source.host_url,
        HostUrl::parse("https://my-databricks-workspace.azuredatabricks.net", None).unwrap()
    );
    assert_eq!(a.source.http_path, "/sql/1.0/warehouses/bd1395d4652aa599");
    assert_eq!(a.source.catalog.as_str(), "catalog_name");
    assert_eq!(
        a.source.credentials.identity.as_str(),
        "databricksspnclientid"
    );
    assert_eq!(a.source.credentials.secret.as_str(), "databricksspnsecret");
    assert_eq!(a.dataset.schema_name.as_str(), "example_schema_name");
    let tables: Vec<(&str, Vec<&str>)> = a
        .dataset
        .tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.columns.iter().flatten().map(Identifier::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        vec![
            ("person", vec!["person_key", "person_id", "age"]),
            ("address", vec!["address_key", "address"]),
        ]
    );
}

#[test]
fn publish_and_validate_bodies_normalise_identically() {
    let a = PublishRequest::from_json(&fixture("publish-shape-a.json")).unwrap();
    let b = PublishRequest::from_json(&fixture("publish-shape-b.json")).unwrap();
    assert_eq!(a, b);
    let a = ValidateRequest::from_json(&fixture("validate-shape-a.json")).unwrap();
    let b = ValidateRequest::from_json(&fixture("validate-shape-b.json")).unwrap();
    assert_eq!(a, b);
    // A package body is also a valid validate body, and vice versa a publish body is a
    // package body's prefix.
    let p = PackageRequest::from_json(&fixture("package-shape-b.json")).unwrap();
    assert_eq!(
        ValidateRequest::from_json(&fixture("package-shape-b.json"))
            .unwrap()
            .source,
        p.source
    );
    assert_eq!(
        PublishRequest::from_json(&fixture("package-shape-a.json"))
            .unwrap()
            .project,
        p.project
    );
}

#[test]
fn leniencies() {
    // Case-insensitive enum-like strings, unknown fields, no `columns`, no format.
    let mut body = fixture_json("package-shape-b.json");
    body["destination"] =
        json!({"name": "lsc", "type": "FileStore", "format": "PARQUET", "extra": 1});
    body["source"]["type"] = json!("DatabricksSQL");
    body["something_new"] = json!({"x": [1, 2]});
    body["dataset"]["tables"][1]
        .as_object_mut()
        .unwrap()
        .remove("columns");
    let r = PackageRequest::from_json(body.to_string().as_bytes()).unwrap();
    assert_eq!(r.project.destination.to_string(), "LSC");
    assert_eq!(r.format, OutputFormat::Parquet);
    assert_eq!(r.dataset.tables[1].columns, None);

    let mut body = fixture_json("package-shape-a.json");
    body.as_object_mut().unwrap().remove("destination_format");
    assert_eq!(
        PackageRequest::from_json(body.to_string().as_bytes())
            .unwrap()
            .format,
        OutputFormat::Duckdb
    );
}

/// Applies `edit` to the shape-B package body and expects a rejection whose field and message
/// contain the given texts.
fn check(base: &str, edit: impl FnOnce(&mut Value), field: &str, message: &str) {
    let mut body = fixture_json(base);
    edit(&mut body);
    let bytes = body.to_string().into_bytes();
    let err: RequestError = if base.starts_with("publish") {
        PublishRequest::from_json(&bytes).map(|_| ()).unwrap_err()
    } else if base.starts_with("validate") {
        ValidateRequest::from_json(&bytes).map(|_| ()).unwrap_err()
    } else {
        PackageRequest::from_json(&bytes).map(|_| ()).unwrap_err()
    };
    assert_eq!(err.field, field, "{err}");
    assert!(
        err.message.contains(message),
        "{err} does not mention {message:?}"
    );
}

fn set(path: &str, v: Value) -> impl FnOnce(&mut Value) {
    let path = path.to_owned();
    move |body| *body.pointer_mut(&path).unwrap_or_else(|| panic!("{path}")) = v
}

fn remove(path: &str) -> impl FnOnce(&mut Value) {
    let (parent, key) = path.rsplit_once('/').unwrap();
    let (parent, key) = (parent.to_owned(), key.to_owned());
    move |body| {
        body.pointer_mut(&parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(&key);
    }
}

const B: &str = "package-shape-b.json";
const A: &str = "package-shape-a.json";

#[test]
fn project_name_rules() {
    let long = "p".repeat(65);
    for (name, msg) in [
        ("../x", "contains '/'"),
        ("a/b", "contains '/'"),
        (".hidden", "must not start with '.'"),
        ("..", "must not start with '.'"),
        ("", "must not be empty"),
        (long.as_str(), "at most 64"),
        ("a b", "contains ' '"),
    ] {
        check(B, set("/project_name", json!(name)), "project_name", msg);
        check(
            "publish-shape-a.json",
            set("/project_name", json!(name)),
            "project_name",
            msg,
        );
    }
    check(
        B,
        set("/project_name", json!(5)),
        "project_name",
        "invalid type: integer",
    );
    check(
        B,
        remove("/project_name"),
        "",
        "missing field `project_name`",
    );
}

#[test]
fn start_time_rules() {
    for (t, msg) in [
        ("20251301_000000", "not a real date"),
        ("20250230_120000", "not a real date"),
        ("20250205_250000", "not a real date"),
        ("20250205010101", "YYYYMMDD_HHMMSS"),
        ("2025-02-05T01:01:01", "YYYYMMDD_HHMMSS"),
        ("../../../etc", "YYYYMMDD_HHMMSS"),
    ] {
        check(
            B,
            set("/project_start_time", json!(t)),
            "project_start_time",
            msg,
        );
    }
}

#[test]
fn destination_rules() {
    check(
        B,
        set("/destination/name", json!("../x")),
        "destination.name",
        "contains '.'",
    );
    check(
        B,
        set("/destination/name", json!("")),
        "destination.name",
        "must not be empty",
    );
    check(
        B,
        set("/destination/type", json!("s3")),
        "destination.type",
        "the destination types are filestore and postgresql",
    );
    check(
        B,
        set("/destination/format", json!("xlsx")),
        "destination.format",
        "use one of duckdb, csv, parquet",
    );
    check(
        A,
        set("/destination_type", json!("L SC")),
        "destination_type",
        "contains ' '",
    );
    check(
        A,
        set("/destination_format", json!("json")),
        "destination_format",
        "duckdb, csv, parquet",
    );
    check(B, remove("/destination"), "destination", "missing");
    check(
        B,
        |b| b["destination_type"] = json!("LSC"),
        "destination",
        "not both",
    );
    check(
        "publish-shape-b.json",
        set("/destination/name", json!("a/b")),
        "destination.name",
        "contains '/'",
    );
}

#[test]
fn secret_name_rules() {
    for bad in ["../publishserviceapikey", "a/b", "", "x.y", "/etc/passwd"] {
        check(
            B,
            set("/source/credentials/spn_secret", json!(bad)),
            "source.credentials.spn_secret",
            "",
        );
        check(
            A,
            set("/credentials/spn_clientid", json!(bad)),
            "credentials.spn_clientid",
            "",
        );
    }
    check(
        B,
        remove("/source/credentials"),
        "source.credentials",
        "missing",
    );
    check(
        B,
        |b| {
            b["credentials"] = json!({"spn_clientid": "other", "spn_secret": "databricksspnsecret"})
        },
        "credentials",
        "disagree",
    );
}

#[test]
fn source_rules() {
    check(
        B,
        set("/source/type", json!("sqlserver")),
        "source.type",
        "not supported by this service yet; supported source types: DatabricksSQL, postgresql, mysql",
    );
    check(
        B,
        set("/source/host_url", json!("http//x")),
        "source.host_url",
        "must start with https://",
    );
    check(
        B,
        set(
            "/source/host_url",
            json!("https://u:p@x.azuredatabricks.net"),
        ),
        "source.host_url",
        "just the workspace address",
    );
    check(
        B,
        set("/source/http_path", json!("")),
        "source.http_path",
        "must not be empty",
    );
    check(
        B,
        set("/source/port", json!("443")),
        "source.port",
        "invalid type: string",
    );
    check(
        B,
        set("/source/port", json!(70000)),
        "source.port",
        "invalid value",
    );
    check(
        B,
        set("/source/catalog", json!("a.b")),
        "source.catalog",
        "contains '.'",
    );
    check(B, remove("/source"), "source", "missing");
    check(
        "validate-shape-b.json",
        set("/source/catalog", json!("")),
        "source.catalog",
        "must not be empty",
    );
}

#[test]
fn dataset_rules() {
    let long = "c".repeat(256);
    check(
        B,
        set("/dataset/schema_name", json!("")),
        "dataset.schema_name",
        "must not be empty",
    );
    check(
        B,
        set("/dataset/schema_name", json!("../x")),
        "dataset.schema_name",
        "contains '.'",
    );
    check(
        B,
        set("/dataset/tables", json!([])),
        "dataset.tables",
        "at least one table",
    );
    check(
        B,
        set("/dataset/tables/0/name", json!("a/b")),
        "dataset.tables[0].name",
        "contains '/'",
    );
    check(
        B,
        set("/dataset/tables/1/name", json!("PERSON")),
        "dataset.tables[1].name",
        "requested twice",
    );
    check(
        B,
        set("/dataset/tables/0/columns/1/name", json!("")),
        "dataset.tables[0].columns[1].name",
        "must not be empty",
    );
    check(
        B,
        set("/dataset/tables/0/columns/1/name", json!(long)),
        "dataset.tables[0].columns[1].name",
        "at most 255",
    );
    check(
        B,
        set("/dataset/tables/0/columns/2/name", json!("Person_Key")),
        "dataset.tables[0].columns[2].name",
        "requested twice",
    );
    check(
        B,
        set("/dataset/tables/0/columns", json!([])),
        "dataset.tables[0].columns",
        "omit `columns`",
    );
    check(
        B,
        set("/dataset/tables/0/columns/0", json!("person_key")),
        "dataset.tables[0].columns[0]",
        "invalid type",
    );
    check(
        A,
        set("/metadata/tables/1/columns/0/name", json!("a\u{0}b")),
        "metadata.tables[1].columns[0].name",
        "control character",
    );
    check(B, remove("/dataset"), "dataset", "missing");
    check(
        B,
        |b| b["metadata"] = b["dataset"].clone(),
        "metadata",
        "not both",
    );
    // Hostile but legal identifiers are accepted: they are always quoted, never spliced.
    let mut body = fixture_json(B);
    body["dataset"]["tables"][0]["columns"][0]["name"] = json!("x`; DROP TABLE t; --\"");
    let r = PackageRequest::from_json(body.to_string().as_bytes()).unwrap();
    let col = &r.dataset.tables[0].columns.as_ref().unwrap()[0];
    assert_eq!(col.quoted_backtick(), "`x``; DROP TABLE t; --\"`");
    assert_eq!(ObjectName::parse("t`x").unwrap().quoted_double(), "\"t`x\"");
}

#[test]
fn malformed_bodies() {
    for (body, msg) in [
        (&b"{"[..], "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\"text\"", "must be a JSON object"),
        (b"{\"project_name\": \"Pr004\",}", "not valid JSON"),
    ] {
        let err = PackageRequest::from_json(body).unwrap_err();
        assert!(err.to_string().contains(msg), "{err}");
        let err = PublishRequest::from_json(body).unwrap_err();
        assert!(err.to_string().contains(msg), "{err}");
    }
}

/// Every body the real CR8TOR client chain sends (`fixtures/requests/cr8tor/`, copied verbatim
/// from what it puts on the wire) normalises as its route expects.
#[test]
fn every_body_cr8tor_sends_parses() {
    let cr8tor = |name: &str| fixture(&format!("cr8tor/{name}"));
    for name in ["package.json", "package-csv.json", "package-rerun.json"] {
        let p = PackageRequest::from_json(&cr8tor(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            p.project.destination,
            Destination::Filestore(DestinationName::parse("LSC").unwrap())
        );
        assert_eq!(p.dataset.id(), "dataset_1", "{name}");
        let want = if name == "package-csv.json" {
            OutputFormat::Csv
        } else {
            OutputFormat::Duckdb
        };
        assert_eq!(p.format, want, "{name}");
        // A package body is also accepted by validate.
        ValidateRequest::from_json(&cr8tor(name)).unwrap();
    }
    let legacy = PackageRequest::from_json(&cr8tor("legacy-package-shape-a.json")).unwrap();
    assert_eq!(legacy.format, OutputFormat::Duckdb);
    assert_eq!(legacy.dataset.id(), "dataset_1");
    let v = ValidateRequest::from_json(&cr8tor("validate.json")).unwrap();
    assert_eq!(v.format, OutputFormat::Duckdb);
    // `"columns": null` means every column.
    let p = PackageRequest::from_json(&cr8tor("validate.json")).unwrap();
    assert_eq!(p.dataset.tables[1].columns, None);
    for name in ["publish.json", "legacy-publish-shape-a.json"] {
        PublishRequest::from_json(&cr8tor(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // A SQL-database source: the server's host name and port, the database as the catalog,
    // the secret files' names.
    let pg = PackageRequest::from_json(&cr8tor("package-postgresql-source.json")).unwrap();
    assert_eq!(pg.source.kind, SourceKind::Postgresql);
    assert_eq!(
        pg.source.host_url.origin(),
        "postgresql://db.internal.example"
    );
    assert_eq!(pg.source.catalog.as_str(), "cohort");
    assert_eq!(pg.source.http_path, "");
    assert_eq!(pg.source.credentials.identity.as_str(), "pgusername");
    assert_eq!(pg.source.credentials.secret.as_str(), "pgpassword");
    assert_eq!(pg.dataset.schema_name.as_str(), "public");
}

#[test]
fn sql_source_rules() {
    let pg = || fixture_json("cr8tor/package-postgresql-source.json");
    let check_pg = |edit: &dyn Fn(&mut Value), field: &str, want: &str| {
        let mut body = pg();
        edit(&mut body);
        let err = PackageRequest::from_json(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.message.contains(want), "{err}");
    };
    check_pg(
        &|b| b["source"]["type"] = json!("MSSQL"),
        "source.type",
        "(SQL Server) is not supported by this service yet",
    );
    check_pg(
        &|b| b["source"]["host_url"] = json!("https://db.internal.example"),
        "source.host_url",
        "must be the database server's host name",
    );
    check_pg(
        &|b| b["source"]["host_url"] = json!("u:p@db.internal.example"),
        "source.host_url",
        "must be just the database server's host name",
    );
    check_pg(
        &|b| b["source"]["database"] = json!("co/hort"),
        "source.database",
        "",
    );
    check_pg(
        &|b| b["source"]["credentials"]["password_key"] = json!("../x"),
        "source.credentials.password_key",
        "",
    );
    check_pg(&|b| b["source"]["port"] = json!("5432"), "source.port", "");
    let mut body = pg();
    body["source"]["type"] = json!("MariaDB");
    body["source"]["port"] = Value::Null;
    let my = PackageRequest::from_json(body.to_string().as_bytes()).unwrap();
    assert_eq!(my.source.kind, SourceKind::Mysql);
    assert_eq!(my.source.host_url.origin(), "mysql://db.internal.example");
    assert_eq!(my.source.host_url.port(), 3306);
}

#[test]
fn dataset_name_rules() {
    let id = |v: Value| {
        let mut body = fixture_json("package-shape-b.json");
        body["dataset"]["name"] = v;
        PackageRequest::from_json(body.to_string().as_bytes()).map(|p| p.dataset.id().to_owned())
    };
    assert_eq!(id(json!(null)).unwrap(), "example_schema_name");
    assert_eq!(id(json!("  ")).unwrap(), "example_schema_name");
    assert_eq!(id(json!(" cohort 1 ")).unwrap(), "cohort 1");
    let err = id(json!("a\nb")).unwrap_err();
    assert_eq!(err.field, "dataset.name");
    let err = id(json!("x".repeat(256))).unwrap_err();
    assert!(err.message.contains("at most 255"), "{err}");
    let err = id(json!(7)).unwrap_err();
    assert_eq!(err.field, "dataset.name", "{err}");
}

#[test]
fn source_fields_are_named_with_their_path() {
    check(
        B,
        remove("/source/http_path"),
        "source",
        "missing field `http_path`",
    );
    check(
        B,
        set("/source/credentials/spn_secret", json!("../x")),
        "source.credentials.spn_secret",
        "",
    );
    check(
        B,
        set("/source", json!("databricks")),
        "source",
        "invalid type",
    );
}

/// Issue 22: the PostgreSQL destination as CR8TOR sends it (`{"name": "", "format": "sql",
/// "type": "postgresql"}`), and the rules around it.
#[test]
fn the_postgresql_destination_parses_and_its_rules_name_the_field() {
    let cr8tor = |name: &str| fixture(&format!("cr8tor/{name}"));
    let p = PackageRequest::from_json(&cr8tor("package-postgresql-destination.json")).unwrap();
    assert_eq!(p.project.destination, Destination::Postgresql);
    assert_eq!(p.format, OutputFormat::Sql);
    assert_eq!(p.dataset.schema_name.as_str(), "example_schema_name");
    ValidateRequest::from_json(&cr8tor("package-postgresql-destination.json")).unwrap();
    let publish =
        PublishRequest::from_json(&cr8tor("publish-postgresql-destination.json")).unwrap();
    assert_eq!(publish.project.destination, Destination::Postgresql);

    let with = |destination: Value| {
        let mut body: Value = serde_json::from_slice(&cr8tor("package.json")).unwrap();
        body["destination"] = destination;
        PackageRequest::from_json(body.to_string().as_bytes())
    };
    /// The destination and format parsed, or the field named by the refusal.
    type Expected = Result<(Destination, OutputFormat), &'static str>;
    let cases: [(Value, Expected); 8] = [
        (
            json!({"type": "POSTGRESQL", "name": null}),
            Ok((Destination::Postgresql, OutputFormat::Sql)),
        ),
        (
            json!({"type": "postgresql", "name": "anything", "format": "SQL"}),
            Ok((Destination::Postgresql, OutputFormat::Sql)),
        ),
        (
            json!({"type": "postgresql", "name": "", "format": "duckdb"}),
            Err("destination.format"),
        ),
        (
            json!({"type": "filestore", "name": "lsc", "format": "sql"}),
            Err("destination.format"),
        ),
        (
            json!({"type": "filestore", "format": "csv"}),
            Err("destination.name"),
        ),
        (
            json!({"type": "mongodb", "name": "lsc"}),
            Err("destination.type"),
        ),
        (
            json!({"name": "lsc", "format": "parquet"}),
            Ok((
                Destination::Filestore(DestinationName::parse("LSC").unwrap()),
                OutputFormat::Parquet,
            )),
        ),
        (
            json!({"type": "filestore", "name": "", "format": "csv"}),
            Err("destination.name"),
        ),
    ];
    for (destination, want) in cases {
        let got = with(destination.clone());
        match (got, want) {
            (Ok(r), Ok((d, f))) => {
                assert_eq!((r.project.destination, r.format), (d, f), "{destination}");
            }
            (Err(e), Err(field)) => assert_eq!(e.field, field, "{destination}: {e}"),
            (got, want) => panic!("{destination}: got {got:?}, want {want:?}"),
        }
    }
}
