//! The data directory as a Unity Catalog: `DIR/<catalog>/<schema>/<table>.parquet` plus an optional
//! `<table>.json` sidecar, and an optional `DIR/<catalog>/<schema>.json` schema sidecar, looked up
//! case-insensitively and re-read when a file changes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::governance::Governance;
use crate::types::{SqlType, json_string, struct_field_json};

/// What Parquet cannot say about a table, read from `<table>.json` beside `<table>.parquet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sidecar {
    /// Table comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Primary key column names, in key order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<String>>,
    /// Per-column extras, keyed by column name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, SidecarColumn>,
    /// What kind of governed object the table stands for (a view, a table with row filters…);
    /// `None`: a plain managed Delta table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub governance: Option<Governance>,
}

/// Per-column extras of a [`Sidecar`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SidecarColumn {
    /// Declared type text; only `char(n)` and `varchar(n)` on a string column change anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_text: Option<String>,
    /// Column comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// What a folder cannot say about a schema, read from `<schema>.json` beside the `<schema>/`
/// folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchemaSidecar {
    /// Schema comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Schema properties (`SchemaInfo.properties`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// A schema: its folder and sidecar.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) catalog: String,
    pub(crate) name: String,
    pub(crate) comment: Option<String>,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) modified_ms: i64,
}

impl Schema {
    /// `SchemaInfo` JSON.
    pub(crate) fn info(&self) -> Value {
        let full_name = format!("{}.{}", self.catalog, self.name);
        let mut info = Map::new();
        info.insert("name".into(), json!(self.name));
        info.insert("catalog_name".into(), json!(self.catalog));
        info.insert("full_name".into(), json!(full_name));
        info.insert("catalog_type".into(), json!("MANAGED_CATALOG"));
        if let Some(comment) = &self.comment {
            info.insert("comment".into(), json!(comment));
        }
        if !self.properties.is_empty() {
            info.insert("properties".into(), json!(self.properties));
        }
        info.insert("owner".into(), json!(OWNER));
        info.insert("created_at".into(), json!(self.modified_ms));
        info.insert("created_by".into(), json!(OWNER));
        info.insert("updated_at".into(), json!(self.modified_ms));
        info.insert("updated_by".into(), json!(OWNER));
        info.insert("schema_id".into(), json!(fake_uuid(&full_name)));
        info.insert("metastore_id".into(), json!(fake_uuid("metastore")));
        info.insert("browse_only".into(), json!(false));
        Value::Object(info)
    }
}

/// Which optional parts of a `TableInfo` to send (the list's `omit_*` flags).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InfoParts {
    /// `table_constraints`: GET sends them, the list never does.
    pub(crate) constraints: bool,
    pub(crate) columns: bool,
    pub(crate) properties: bool,
    /// `owner`, `created_by`, `updated_by`.
    pub(crate) usernames: bool,
}

impl InfoParts {
    /// Everything, as `GET /tables/{full_name}` answers.
    pub(crate) const DETAIL: InfoParts = InfoParts {
        constraints: true,
        columns: true,
        properties: true,
        usernames: true,
    };
}

/// Owner and author of every securable.
const OWNER: &str = "emulator-owner@example.com";

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    Catalog(String),
    Schema(String),
    Table(String),
    /// The table exists but its files could not be read.
    Unreadable(String),
}

/// One column as Unity Catalog describes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: SqlType,
    pub(crate) nullable: bool,
    pub(crate) comment: Option<String>,
    /// Index of the root field in the Parquet file's Arrow schema.
    pub(crate) file_index: usize,
}

/// A table's metadata, as read from its footer and sidecar.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) catalog: String,
    pub(crate) schema: String,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) columns: Vec<Column>,
    pub(crate) comment: Option<String>,
    pub(crate) primary_key: Option<Vec<String>>,
    pub(crate) modified_ms: i64,
    pub(crate) reader: ArrowReaderMetadata,
    /// The kind of governed object it is, if any.
    pub(crate) governance: Option<Governance>,
}

/// The folder of a table's earlier versions, beside `<table>.parquet`: `<table>.versions/`,
/// holding `<n>.parquet` for every version `n` before the current one.
pub(crate) fn versions_dir(table: &Path) -> PathBuf {
    table.with_extension("versions")
}

impl Table {
    /// The table's current Delta version: how many earlier versions its versions folder holds.
    pub(crate) fn version(&self) -> u64 {
        let Ok(read) = std::fs::read_dir(versions_dir(&self.path)) else {
            return 0;
        };
        read.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.strip_suffix(".parquet").is_some_and(|stem| {
                    !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .count() as u64
    }

    pub(crate) fn full_name(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.name)
    }

    /// `TableInfo` JSON with the `parts` asked for.
    pub(crate) fn info(&self, parts: InfoParts) -> Value {
        let full_name = self.full_name();
        let mut info = Map::new();
        info.insert("name".into(), json!(self.name));
        info.insert("catalog_name".into(), json!(self.catalog));
        info.insert("schema_name".into(), json!(self.schema));
        info.insert("full_name".into(), json!(full_name));
        info.insert("table_type".into(), json!("MANAGED"));
        info.insert("data_source_format".into(), json!("DELTA"));
        if parts.columns {
            let columns: Vec<Value> = self
                .columns
                .iter()
                .enumerate()
                .map(|(position, c)| column_info(c, position))
                .collect();
            info.insert("columns".into(), Value::Array(columns));
        }
        if let Some(comment) = &self.comment {
            info.insert("comment".into(), json!(comment));
        }
        if parts.usernames {
            info.insert("owner".into(), json!(OWNER));
        }
        info.insert("created_at".into(), json!(self.modified_ms));
        if parts.usernames {
            info.insert("created_by".into(), json!(OWNER));
        }
        info.insert("updated_at".into(), json!(self.modified_ms));
        if parts.usernames {
            info.insert("updated_by".into(), json!(OWNER));
        }
        info.insert("table_id".into(), json!(fake_uuid(&full_name)));
        info.insert("metastore_id".into(), json!(fake_uuid("metastore")));
        if parts.properties {
            info.insert("properties".into(), json!({}));
        }
        if parts.constraints
            && let Some(pk) = &self.primary_key
        {
            info.insert(
                "table_constraints".into(),
                json!([{"primary_key_constraint": {"name": format!("{}_pk", self.name), "child_columns": pk}}]),
            );
        }
        if let Some(governance) = &self.governance {
            governance.describe(&mut info);
        }
        Value::Object(info)
    }
}

fn column_info(c: &Column, position: usize) -> Value {
    let mut metadata = Vec::new();
    if let Some(comment) = &c.comment {
        metadata.push(("comment", json_string(comment)));
    }
    if matches!(c.ty, SqlType::Char(_) | SqlType::Varchar(_)) {
        metadata.push((
            "__CHAR_VARCHAR_TYPE_STRING",
            json_string(&c.ty.catalog_string()),
        ));
    }
    let mut info = Map::new();
    info.insert("name".into(), json!(c.name));
    info.insert("type_name".into(), json!(c.ty.type_name()));
    info.insert("type_text".into(), json!(c.ty.catalog_string()));
    info.insert(
        "type_json".into(),
        json!(struct_field_json(&c.name, &c.ty, c.nullable, &metadata)),
    );
    if let Some((p, s)) = c.ty.precision_scale() {
        info.insert("type_precision".into(), json!(p));
        info.insert("type_scale".into(), json!(s));
    }
    if let Some(interval) = c.ty.interval_type() {
        info.insert("type_interval_type".into(), json!(interval));
    }
    info.insert("position".into(), json!(position));
    info.insert("nullable".into(), json!(c.nullable));
    if let Some(comment) = &c.comment {
        info.insert("comment".into(), json!(comment));
    }
    Value::Object(info)
}

/// Where Delta would keep row group `group` of `table` at `version`: a data file under the
/// table's managed storage, named as Delta names them
/// (`part-<n>-<uuid>.c000.snappy.parquet`), stable for a version.
pub(crate) fn data_file(table: &Table, version: u64, group: usize) -> String {
    let full_name = table.full_name();
    format!(
        "abfss://metastore@emulator.dfs.core.windows.net/__unitystorage/tables/{}/part-{group:05}-{}.c000.snappy.parquet",
        fake_uuid(&full_name),
        fake_uuid(&format!("{full_name}@{version}#{group}"))
    )
}

/// A stable uuid-shaped id derived from a name.
fn fake_uuid(name: &str) -> String {
    let mut a = DefaultHasher::new();
    name.hash(&mut a);
    let mut b = DefaultHasher::new();
    (name, 1u8).hash(&mut b);
    let hex = format!("{:016x}{:016x}", a.finish(), b.finish());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    parquet: (Option<SystemTime>, u64),
    sidecar: Option<(Option<SystemTime>, u64)>,
}

fn stamp_of(path: &Path) -> Option<(Option<SystemTime>, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// The data directory, with table metadata cached until a file's mtime or length changes.
#[derive(Debug)]
pub(crate) struct Catalog {
    root: PathBuf,
    cache: Mutex<HashMap<PathBuf, (Stamp, Arc<Table>)>>,
    /// Where derived tables (histories, data file lists) are written: a folder of the
    /// emulator's own, removed with it, so the data directory is only ever read.
    derived: tempfile::TempDir,
}

impl Catalog {
    pub(crate) fn new(root: PathBuf) -> std::io::Result<Catalog> {
        Ok(Catalog {
            root,
            cache: Mutex::new(HashMap::new()),
            derived: tempfile::Builder::new()
                .prefix("databricks-emulator-")
                .tempdir()?,
        })
    }

    /// Resolves a three-part name case-insensitively (UC names are lower-case, SQL lookups are not
    /// case-sensitive), reporting the first missing level.
    pub(crate) fn table(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Arc<Table>, LookupError> {
        let schema_dir = self.schema_dir(catalog, schema)?;
        let file = entries(&schema_dir)
            .into_iter()
            .find(|(stem, ext, path)| {
                ext == "parquet" && stem.eq_ignore_ascii_case(table) && path.is_file()
            })
            .ok_or_else(|| {
                LookupError::Table(format!(
                    "{}.{}.{}",
                    catalog.to_lowercase(),
                    schema.to_lowercase(),
                    table.to_lowercase()
                ))
            })?;
        self.load(
            catalog.to_lowercase(),
            schema.to_lowercase(),
            file.0.to_lowercase(),
            file.2,
        )
    }

    /// The tables of a schema sorted by name, from the `offset`-th, at most `limit` of them, and
    /// whether more follow: one listing of the schema folder for the whole page.
    pub(crate) fn tables(
        &self,
        catalog: &str,
        schema: &str,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<(Vec<Arc<Table>>, bool), LookupError> {
        let schema_dir = self.schema_dir(catalog, schema)?;
        let mut files: Vec<(String, PathBuf)> = entries(&schema_dir)
            .into_iter()
            .filter(|(_, ext, path)| ext == "parquet" && path.is_file())
            .map(|(stem, _, path)| (stem.to_lowercase(), path))
            .collect();
        files.sort();
        files.dedup_by(|a, b| a.0 == b.0);
        let end = offset.saturating_add(limit.unwrap_or(usize::MAX));
        let more = files.len() > end;
        let tables = files
            .into_iter()
            .skip(offset)
            .take(end - offset)
            .map(|(name, path)| {
                self.load(catalog.to_lowercase(), schema.to_lowercase(), name, path)
            })
            .collect::<Result<_, _>>()?;
        Ok((tables, more))
    }

    /// Resolves a two-part schema name case-insensitively, reporting the first missing level, and
    /// reads its sidecar (small, so not cached).
    pub(crate) fn schema(&self, catalog: &str, schema: &str) -> Result<Schema, LookupError> {
        let dir = self.schema_dir(catalog, schema)?;
        let modified_ms = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .map_or(0, epoch_ms);
        let sidecar_path = dir.with_file_name(format!(
            "{}.json",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or_default()
        ));
        let sidecar: SchemaSidecar = match std::fs::read(&sidecar_path) {
            Ok(text) => serde_json::from_slice(&text).map_err(|e| {
                LookupError::Unreadable(format!("schema sidecar {}: {e}", sidecar_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SchemaSidecar::default(),
            Err(e) => {
                return Err(LookupError::Unreadable(format!(
                    "schema sidecar {}: {e}",
                    sidecar_path.display()
                )));
            }
        };
        Ok(Schema {
            catalog: catalog.to_lowercase(),
            name: schema.to_lowercase(),
            comment: sidecar.comment,
            properties: sidecar.properties,
            modified_ms,
        })
    }

    fn schema_dir(&self, catalog: &str, schema: &str) -> Result<PathBuf, LookupError> {
        let catalog_dir = find_dir(&self.root, catalog)
            .ok_or_else(|| LookupError::Catalog(catalog.to_lowercase()))?;
        find_dir(&catalog_dir, schema).ok_or_else(|| {
            LookupError::Schema(format!(
                "{}.{}",
                catalog.to_lowercase(),
                schema.to_lowercase()
            ))
        })
    }

    fn load(
        &self,
        catalog: String,
        schema: String,
        name: String,
        path: PathBuf,
    ) -> Result<Arc<Table>, LookupError> {
        let sidecar_path = path.with_extension("json");
        self.load_with(catalog, schema, name, path, sidecar_path)
    }

    /// The table `current` as it was at Delta `version`: itself at its current version, an
    /// earlier one from `<table>.versions/<n>.parquet` (with the current sidecar), `None` for a
    /// version that does not exist.
    pub(crate) fn table_at(
        &self,
        current: &Arc<Table>,
        version: u64,
    ) -> Result<Option<Arc<Table>>, LookupError> {
        let latest = current.version();
        if version == latest {
            return Ok(Some(current.clone()));
        }
        if version > latest {
            return Ok(None);
        }
        let path = versions_dir(&current.path).join(format!("{version}.parquet"));
        if !path.is_file() {
            return Ok(None);
        }
        self.load_with(
            current.catalog.clone(),
            current.schema.clone(),
            current.name.clone(),
            path,
            current.path.with_extension("json"),
        )
        .map(Some)
    }

    /// `DESCRIBE HISTORY` of `current` as a table of its own: `version`, `timestamp` and
    /// `operation`, newest first (written to the scratch folder, then read like any table).
    pub(crate) fn history(&self, current: &Arc<Table>) -> Result<Arc<Table>, LookupError> {
        use arrow::array::{Int64Array, StringArray, TimestampMicrosecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let unreadable = |e: String| LookupError::Unreadable(format!("history: {e}"));
        let latest = current.version();
        let dir = versions_dir(&current.path);
        let versions: Vec<i64> = (0..=latest).rev().map(|v| v as i64).collect();
        let stamp = |v: i64| {
            let path = if v as u64 == latest {
                current.path.clone()
            } else {
                dir.join(format!("{v}.parquet"))
            };
            std::fs::metadata(path)
                .ok()
                .and_then(|m| m.modified().ok())
                .map_or(0, epoch_ms)
                * 1000
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("version", DataType::Int64, true),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("Etc/UTC".into())),
                true,
            ),
            Field::new("operation", DataType::Utf8, true),
        ]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(versions.clone())),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        versions.iter().map(|v| stamp(*v)).collect::<Vec<_>>(),
                    )
                    .with_timezone("Etc/UTC"),
                ),
                Arc::new(StringArray::from(
                    versions
                        .iter()
                        .map(|v| if *v == 0 { "CREATE TABLE" } else { "WRITE" })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .map_err(|e| unreadable(e.to_string()))?;
        self.derived(current, &format!(".history-{latest}"), &batch)
    }

    /// The data files of `at` (the table `current` at Delta `version`) as a table of its own:
    /// `file_path` and `num_rows`, one per Parquet row group, which stands for one Delta data
    /// file ([`data_file`]).
    pub(crate) fn files(
        &self,
        current: &Arc<Table>,
        at: &Table,
        version: u64,
    ) -> Result<Arc<Table>, LookupError> {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        let groups = at.reader.metadata().row_groups();
        let schema = Arc::new(Schema::new(vec![
            Field::new("file_path", DataType::Utf8, true),
            Field::new("num_rows", DataType::Int64, false),
        ]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(
                    (0..groups.len())
                        .map(|g| data_file(at, version, g))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    groups.iter().map(|g| g.num_rows()).collect::<Vec<_>>(),
                )),
            ],
        )
        .map_err(|e| LookupError::Unreadable(format!("files: {e}")))?;
        self.derived(current, &format!(".files-{version}"), &batch)
    }

    /// A small table derived from `current` (its history, its files), written once as
    /// `<stem>.parquet` in the emulator's scratch folder and then read like any table.
    fn derived(
        &self,
        current: &Arc<Table>,
        stem: &str,
        batch: &arrow::record_batch::RecordBatch,
    ) -> Result<Arc<Table>, LookupError> {
        let unreadable = |e: String| LookupError::Unreadable(format!("{stem}: {e}"));
        let dir = self
            .derived
            .path()
            .join(fake_uuid(&current.path.to_string_lossy()));
        std::fs::create_dir_all(&dir).map_err(|e| unreadable(e.to_string()))?;
        let path = dir.join(format!("{stem}.parquet"));
        if !path.is_file() {
            // A name of its own per writer: concurrent reads each write the table, and the
            // first rename wins with a complete file.
            let partial = dir.join(format!("{stem}.{}.partial", uuid::Uuid::new_v4().simple()));
            let file = File::create(&partial).map_err(|e| unreadable(e.to_string()))?;
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                .map_err(|e| unreadable(e.to_string()))?;
            writer.write(batch).map_err(|e| unreadable(e.to_string()))?;
            writer.close().map_err(|e| unreadable(e.to_string()))?;
            std::fs::rename(&partial, &path).map_err(|e| unreadable(e.to_string()))?;
        }
        self.load_with(
            current.catalog.clone(),
            current.schema.clone(),
            current.name.clone(),
            path,
            dir.join(".no-sidecar.json"),
        )
    }

    fn load_with(
        &self,
        catalog: String,
        schema: String,
        name: String,
        path: PathBuf,
        sidecar_path: PathBuf,
    ) -> Result<Arc<Table>, LookupError> {
        let stamp = Stamp {
            parquet: stamp_of(&path).ok_or_else(|| LookupError::Table(name.clone()))?,
            sidecar: stamp_of(&sidecar_path),
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached, table)) = cache.get(&path)
            && *cached == stamp
            && table.catalog == catalog
            && table.schema == schema
        {
            return Ok(table.clone());
        }
        let unreadable =
            |what: String| LookupError::Unreadable(format!("{}: {what}", path.display()));
        let file = File::open(&path).map_err(|e| unreadable(e.to_string()))?;
        let reader = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| unreadable(e.to_string()))?;
        let sidecar: Sidecar = match stamp.sidecar {
            None => Sidecar::default(),
            Some(_) => {
                let text = std::fs::read(&sidecar_path).map_err(|e| unreadable(e.to_string()))?;
                serde_json::from_slice(&text)
                    .map_err(|e| unreadable(format!("sidecar {}: {e}", sidecar_path.display())))?
            }
        };
        let columns = reader
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(file_index, field)| {
                let extra = sidecar.columns.get(field.name()).or_else(|| {
                    sidecar
                        .columns
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(field.name()))
                        .map(|(_, v)| v)
                });
                Column {
                    name: field.name().clone(),
                    ty: SqlType::from_arrow(field.data_type())
                        .refine(extra.and_then(|e| e.type_text.as_deref())),
                    nullable: field.is_nullable(),
                    comment: extra.and_then(|e| e.comment.clone()),
                    file_index,
                }
            })
            .collect();
        let modified_ms = stamp.parquet.0.map_or(0, epoch_ms);
        let table = Arc::new(Table {
            catalog,
            schema,
            name,
            path: path.clone(),
            columns,
            comment: sidecar.comment,
            primary_key: sidecar.primary_key,
            modified_ms,
            reader,
            governance: sidecar.governance,
        });
        cache.insert(path, (stamp, table.clone()));
        Ok(table)
    }
}

fn epoch_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Directory entries as `(stem, lower-case extension, path)`, skipping hidden files.
fn entries(dir: &Path) -> Vec<(String, String, PathBuf)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let file_name = path.file_name()?.to_str()?.to_owned();
            if file_name.starts_with('.') {
                return None;
            }
            let stem = path.file_stem()?.to_str()?.to_owned();
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            Some((stem, ext, path))
        })
        .collect()
}

fn find_dir(parent: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return None;
    }
    let exact = parent.join(name);
    if exact.is_dir() {
        return Some(exact);
    }
    std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                && e.path().is_dir()
        })
        .map(|e| e.path())
}
