//! The synthetic dataset: a wide, clinical-like table and a narrow one, generated
//! deterministically from a seed, batch by batch (never the whole table in memory), into an
//! emulator data directory that is cached by row count and seed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int16Array, Int32Array,
    Int64Array, RecordBatch, StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use databricks_emulator::fixtures::{Sidecar, SidecarColumn, TableWriter};
use serde_json::json;

/// Unity Catalog catalog the tables live in.
pub(crate) const CATALOG: &str = "bench";
/// Unity Catalog schema the tables live in (and DuckDB schema they land in).
pub(crate) const SCHEMA: &str = "clinical";
/// The wide table (15 columns).
pub(crate) const WIDE: &str = "encounter";
/// The narrow table (3 columns).
pub(crate) const NARROW: &str = "observation";

/// Rows generated and written per batch; bounds the generator's memory.
const BATCH_ROWS: usize = 64 * 1024;
/// Bumped whenever the generated data changes, so old caches are not reused.
const GENERATOR_VERSION: u32 = 1;
/// Written last into a cached dataset directory; its absence means "incomplete, regenerate".
const COMPLETE_MARKER: &str = "dataset.json";

/// A generated (or cached) dataset.
#[derive(Debug, Clone)]
pub(crate) struct Dataset {
    /// The emulator's data directory.
    pub(crate) dir: PathBuf,
    /// Rows of each table.
    pub(crate) rows: u64,
    /// The tables, wide first.
    pub(crate) tables: Vec<TableFile>,
}

/// One generated table.
#[derive(Debug, Clone)]
pub(crate) struct TableFile {
    /// Table name.
    pub(crate) name: &'static str,
    /// Its Parquet file.
    pub(crate) parquet: PathBuf,
    /// Arrow bytes per row (buffers only), for sizing result chunks like Databricks does.
    pub(crate) arrow_bytes_per_row: f64,
}

impl Dataset {
    /// Total size of the Parquet files.
    pub(crate) fn parquet_bytes(&self) -> u64 {
        self.tables
            .iter()
            .map(|t| fs::metadata(&t.parquet).map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// The wide table.
    pub(crate) fn wide(&self) -> &TableFile {
        &self.tables[0]
    }
}

/// Returns the dataset of `rows` rows per table for `seed` under `cache_root`, generating it
/// unless a complete copy is already there.
pub(crate) fn prepare(cache_root: &Path, rows: u64, seed: u64) -> Result<Dataset> {
    let dir = cache_root.join(format!("v{GENERATOR_VERSION}-rows{rows}-seed{seed}"));
    let marker = dir.join(COMPLETE_MARKER);
    let table_file = |name: &'static str, bytes: f64| TableFile {
        name,
        parquet: dir
            .join(CATALOG)
            .join(SCHEMA)
            .join(format!("{name}.parquet")),
        arrow_bytes_per_row: bytes,
    };
    if let Ok(text) = fs::read(&marker) {
        let summary: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("reading {}", marker.display()))?;
        let per_row = |key: &str| summary[key].as_f64().unwrap_or(100.0);
        eprintln!("dataset: reusing {}", dir.display());
        return Ok(Dataset {
            rows,
            tables: vec![
                table_file(WIDE, per_row("wide_arrow_bytes_per_row")),
                table_file(NARROW, per_row("narrow_arrow_bytes_per_row")),
            ],
            dir,
        });
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "dataset: generating {rows} rows per table (seed {seed}) into {}",
        dir.display()
    );
    let started = Instant::now();
    // The two tables are independent: one thread each.
    let (wide, narrow) = std::thread::scope(|scope| {
        let wide = scope.spawn(|| write_table(&dir, WIDE, rows, seed, &Wide));
        let narrow = scope.spawn(|| write_table(&dir, NARROW, rows, seed, &Narrow));
        (join(wide), join(narrow))
    });
    let (wide, narrow) = (wide?, narrow?);
    let summary = json!({
        "rows": rows,
        "seed": seed,
        "wide_arrow_bytes_per_row": wide,
        "narrow_arrow_bytes_per_row": narrow,
    });
    fs::write(&marker, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("writing {}", marker.display()))?;
    eprintln!(
        "dataset: generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Dataset {
        rows,
        tables: vec![table_file(WIDE, wide), table_file(NARROW, narrow)],
        dir,
    })
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    match handle.join() {
        Ok(result) => result,
        Err(_) => bail!("the dataset generator thread panicked"),
    }
}

/// How one table's rows are made.
trait Generator: Sync {
    fn schema(&self) -> SchemaRef;
    fn sidecar(&self) -> Sidecar;
    /// Rows `first .. first + len` of a table of `total` rows.
    fn batch(&self, rng: &mut Rng, first: u64, len: usize, total: u64) -> Result<RecordBatch>;
}

/// Writes a table batch by batch; returns its Arrow bytes per row.
fn write_table(
    dir: &Path,
    name: &str,
    rows: u64,
    seed: u64,
    generator: &dyn Generator,
) -> Result<f64> {
    let mut writer = TableWriter::create(dir, CATALOG, SCHEMA, name, generator.schema())
        .with_context(|| format!("creating table {name}"))?;
    // A fixed stream per table, so the two tables differ and each is reproducible.
    let mut rng = Rng::new(seed ^ fnv(name));
    let mut bytes = 0u64;
    let mut first = 0u64;
    while first < rows {
        let len = BATCH_ROWS.min((rows - first) as usize);
        let batch = generator.batch(&mut rng, first, len, rows)?;
        bytes += batch
            .columns()
            .iter()
            .map(|c| c.get_buffer_memory_size() as u64)
            .sum::<u64>();
        writer
            .write(&batch)
            .with_context(|| format!("writing table {name}"))?;
        first += len as u64;
    }
    writer
        .finish(Some(&generator.sidecar()))
        .with_context(|| format!("finishing table {name}"))?;
    Ok(bytes as f64 / rows.max(1) as f64)
}

/// The wide, clinical-like table: an encounter per row.
struct Wide;

/// Days from 1970-01-01 to 2010-01-01.
const EPOCH_2010: i32 = 14_610;
const MICROS_PER_DAY: i64 = 86_400_000_000;
const WARDS: [&str; 12] = [
    "cardiology",
    "oncology",
    "emergency",
    "paediatrics",
    "maternity",
    "orthopaedics",
    "neurology",
    "respiratory",
    "renal",
    "geriatrics",
    "intensive care",
    "general surgery",
];
const WORDS: [&str; 24] = [
    "patient",
    "reports",
    "mild",
    "severe",
    "pain",
    "since",
    "yesterday",
    "no",
    "history",
    "of",
    "fever",
    "chest",
    "referred",
    "for",
    "review",
    "stable",
    "observations",
    "discharged",
    "with",
    "follow-up",
    "in",
    "clinic",
    "bloods",
    "normal",
];

impl Generator for Wide {
    fn schema(&self) -> SchemaRef {
        let utc = Some("UTC".into());
        Arc::new(Schema::new(vec![
            Field::new("encounter_key", DataType::Int64, false),
            Field::new("person_key", DataType::Int64, false),
            Field::new("provider_id", DataType::Int32, true),
            Field::new("age_years", DataType::Int16, true),
            Field::new("total_cost", DataType::Decimal128(10, 2), true),
            Field::new("bmi", DataType::Float64, true),
            Field::new("is_emergency", DataType::Boolean, true),
            Field::new("admission_date", DataType::Date32, true),
            Field::new(
                "admitted_at",
                DataType::Timestamp(TimeUnit::Microsecond, utc),
                true,
            ),
            Field::new(
                "recorded_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("diagnosis_code", DataType::Utf8, true),
            Field::new("ward", DataType::Utf8, true),
            Field::new("length_of_stay", DataType::Int32, true),
            Field::new("discharge_date", DataType::Date32, true),
            Field::new("clinical_note", DataType::Utf8, true),
        ]))
    }

    fn sidecar(&self) -> Sidecar {
        let mut sidecar = Sidecar {
            comment: Some("Synthetic hospital encounters (publish-bench)".into()),
            primary_key: Some(vec!["encounter_key".into()]),
            ..Sidecar::default()
        };
        sidecar.columns.insert(
            "diagnosis_code".into(),
            SidecarColumn {
                type_text: Some("char(5)".into()),
                comment: Some("ICD-10-like code".into()),
            },
        );
        sidecar
    }

    fn batch(&self, rng: &mut Rng, first: u64, len: usize, total: u64) -> Result<RecordBatch> {
        let people = (total / 4).max(1);
        let mut encounter = Vec::with_capacity(len);
        let mut person = Vec::with_capacity(len);
        let mut provider = Vec::with_capacity(len);
        let mut age = Vec::with_capacity(len);
        let mut cost = Vec::with_capacity(len);
        let mut bmi = Vec::with_capacity(len);
        let mut emergency = Vec::with_capacity(len);
        let mut admission = Vec::with_capacity(len);
        let mut admitted = Vec::with_capacity(len);
        let mut recorded = Vec::with_capacity(len);
        let mut code = StringBuilder::with_capacity(len, len * 5);
        let mut ward = StringBuilder::with_capacity(len, len * 10);
        let mut stay = Vec::with_capacity(len);
        let mut discharge = Vec::with_capacity(len);
        let mut note = StringBuilder::with_capacity(len, len * 48);
        let mut text = String::with_capacity(256);
        for i in 0..len as u64 {
            encounter.push((first + i + 1) as i64);
            person.push(1 + rng.below(people) as i64);
            provider.push((rng.below(20) != 0).then(|| rng.below(5_000) as i32));
            age.push(Some(rng.below(100) as i16));
            cost.push((rng.below(10) != 0).then(|| rng.below(10_000_000) as i128));
            bmi.push(Some(15.0 + rng.unit() * 30.0));
            emergency.push(Some(rng.below(5) == 0));
            let day = EPOCH_2010 + rng.below(5_000) as i32;
            admission.push(Some(day));
            let at = i64::from(day) * MICROS_PER_DAY + rng.below(MICROS_PER_DAY as u64) as i64;
            admitted.push(Some(at));
            recorded.push(Some(at + rng.below(3 * MICROS_PER_DAY as u64) as i64));
            text.clear();
            text.push(char::from(b'A' + rng.below(26) as u8));
            for _ in 0..4 {
                text.push(char::from(b'0' + rng.below(10) as u8));
            }
            code.append_value(&text);
            ward.append_value(WARDS[rng.below(WARDS.len() as u64) as usize]);
            let los = rng.below(60) as i32;
            stay.push(Some(los));
            discharge.push((rng.below(10) != 0).then_some(day + los));
            if rng.below(5) == 0 {
                note.append_null();
            } else {
                // 0 to ~200 characters, most of them short, as free text tends to be.
                let target = (rng.unit() * rng.unit() * 200.0) as usize;
                text.clear();
                while text.len() < target {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
                }
                note.append_value(&text);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(encounter)),
            Arc::new(Int64Array::from(person)),
            Arc::new(Int32Array::from(provider)),
            Arc::new(Int16Array::from(age)),
            Arc::new(Decimal128Array::from(cost).with_precision_and_scale(10, 2)?),
            Arc::new(Float64Array::from(bmi)),
            Arc::new(BooleanArray::from(emergency)),
            Arc::new(Date32Array::from(admission)),
            Arc::new(TimestampMicrosecondArray::from(admitted).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(recorded)),
            Arc::new(code.finish()),
            Arc::new(ward.finish()),
            Arc::new(Int32Array::from(stay)),
            Arc::new(Date32Array::from(discharge)),
            Arc::new(note.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

/// The narrow table: one measurement per row.
struct Narrow;

impl Generator for Narrow {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("observation_key", DataType::Int64, false),
            Field::new("encounter_key", DataType::Int64, false),
            Field::new("value", DataType::Float64, true),
        ]))
    }

    fn sidecar(&self) -> Sidecar {
        Sidecar {
            primary_key: Some(vec!["observation_key".into()]),
            ..Sidecar::default()
        }
    }

    fn batch(&self, rng: &mut Rng, first: u64, len: usize, total: u64) -> Result<RecordBatch> {
        let mut key = Vec::with_capacity(len);
        let mut encounter = Vec::with_capacity(len);
        let mut value = Vec::with_capacity(len);
        for i in 0..len as u64 {
            key.push((first + i + 1) as i64);
            encounter.push(1 + rng.below(total.max(1)) as i64);
            value.push((rng.below(20) != 0).then(|| rng.unit() * 1_000.0));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(key)),
            Arc::new(Int64Array::from(encounter)),
            Arc::new(Float64Array::from(value)),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

/// SplitMix64: tiny, fast, and the same sequence on every platform and version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a of a name, to derive one seed per table.
fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
