//! The synthetic dataset: a wide table of hospital encounters and a narrow one of
//! observations, generated deterministically from a seed, batch by batch (never the whole table
//! in memory), into an emulator data directory that is cached by shape, row count and seed.
//!
//! Two shapes of the same columns ([`Shape`]): `clinical` (the default) is shaped like a
//! clinical warehouse — codes drawn from a vocabulary with skewed frequencies, a handful of
//! wards and providers, dates and times within ranges and in admission order, nulls where real
//! records have them, notes from templates — so that result chunks compress as real ones do;
//! `random` is the earlier near-random variant, which LZ4 shrinks by about a third only.

use std::fmt::Write as _;
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
/// Bumped whenever the generated random data changes, so old caches are not reused.
const GENERATOR_VERSION: u32 = 1;
/// The same for the clinical shape.
const CLINICAL_VERSION: u32 = 1;
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

/// How the values of the tables are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shape {
    /// Shaped like a clinical warehouse (vocabularies, skew, ranges, templates).
    Clinical,
    /// Close to random values (the datasets of issues 4 to 11).
    Random,
}

/// Returns the dataset of `rows` rows per table of `shape` for `seed` under `cache_root`,
/// generating it unless a complete copy is already there.
pub(crate) fn prepare(cache_root: &Path, shape: Shape, rows: u64, seed: u64) -> Result<Dataset> {
    let name = match shape {
        Shape::Random => format!("v{GENERATOR_VERSION}-rows{rows}-seed{seed}"),
        Shape::Clinical => format!("clinical-v{CLINICAL_VERSION}-rows{rows}-seed{seed}"),
    };
    let dir = cache_root.join(name);
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
    let (wide, narrow): (&dyn Generator, &dyn Generator) = match shape {
        Shape::Clinical => (&ClinicalWide, &ClinicalNarrow),
        Shape::Random => (&Wide, &Narrow),
    };
    let (wide, narrow) = std::thread::scope(|scope| {
        let wide = scope.spawn(|| write_table(&dir, WIDE, rows, seed, wide));
        let narrow = scope.spawn(|| write_table(&dir, NARROW, rows, seed, narrow));
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
        let mut rows = WideRows::with_capacity(len, len * 48);
        let mut text = String::with_capacity(256);
        for i in 0..len as u64 {
            rows.encounter.push((first + i + 1) as i64);
            rows.person.push(1 + rng.below(people) as i64);
            rows.provider
                .push((rng.below(20) != 0).then(|| rng.below(5_000) as i32));
            rows.age.push(Some(rng.below(100) as i16));
            rows.cost
                .push((rng.below(10) != 0).then(|| rng.below(10_000_000) as i128));
            rows.bmi.push(Some(15.0 + rng.unit() * 30.0));
            rows.emergency.push(Some(rng.below(5) == 0));
            let day = EPOCH_2010 + rng.below(5_000) as i32;
            rows.admission.push(Some(day));
            let at = i64::from(day) * MICROS_PER_DAY + rng.below(MICROS_PER_DAY as u64) as i64;
            rows.admitted.push(Some(at));
            rows.recorded
                .push(Some(at + rng.below(3 * MICROS_PER_DAY as u64) as i64));
            text.clear();
            text.push(char::from(b'A' + rng.below(26) as u8));
            for _ in 0..4 {
                text.push(char::from(b'0' + rng.below(10) as u8));
            }
            rows.code.append_value(&text);
            rows.ward
                .append_value(WARDS[rng.below(WARDS.len() as u64) as usize]);
            let los = rng.below(60) as i32;
            rows.stay.push(Some(los));
            rows.discharge
                .push((rng.below(10) != 0).then_some(day + los));
            if rng.below(5) == 0 {
                rows.note.append_null();
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
                rows.note.append_value(&text);
            }
        }
        rows.finish(self.schema())
    }
}

/// The wide table's columns of one batch, as they are drawn.
struct WideRows {
    encounter: Vec<i64>,
    person: Vec<i64>,
    provider: Vec<Option<i32>>,
    age: Vec<Option<i16>>,
    cost: Vec<Option<i128>>,
    bmi: Vec<Option<f64>>,
    emergency: Vec<Option<bool>>,
    admission: Vec<Option<i32>>,
    admitted: Vec<Option<i64>>,
    recorded: Vec<Option<i64>>,
    code: StringBuilder,
    ward: StringBuilder,
    stay: Vec<Option<i32>>,
    discharge: Vec<Option<i32>>,
    note: StringBuilder,
}

impl WideRows {
    fn with_capacity(len: usize, note_bytes: usize) -> WideRows {
        WideRows {
            encounter: Vec::with_capacity(len),
            person: Vec::with_capacity(len),
            provider: Vec::with_capacity(len),
            age: Vec::with_capacity(len),
            cost: Vec::with_capacity(len),
            bmi: Vec::with_capacity(len),
            emergency: Vec::with_capacity(len),
            admission: Vec::with_capacity(len),
            admitted: Vec::with_capacity(len),
            recorded: Vec::with_capacity(len),
            code: StringBuilder::with_capacity(len, len * 5),
            ward: StringBuilder::with_capacity(len, len * 10),
            stay: Vec::with_capacity(len),
            discharge: Vec::with_capacity(len),
            note: StringBuilder::with_capacity(len, note_bytes),
        }
    }

    fn finish(mut self, schema: SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.encounter)),
            Arc::new(Int64Array::from(self.person)),
            Arc::new(Int32Array::from(self.provider)),
            Arc::new(Int16Array::from(self.age)),
            Arc::new(Decimal128Array::from(self.cost).with_precision_and_scale(10, 2)?),
            Arc::new(Float64Array::from(self.bmi)),
            Arc::new(BooleanArray::from(self.emergency)),
            Arc::new(Date32Array::from(self.admission)),
            Arc::new(TimestampMicrosecondArray::from(self.admitted).with_timezone("UTC")),
            Arc::new(TimestampMicrosecondArray::from(self.recorded)),
            Arc::new(self.code.finish()),
            Arc::new(self.ward.finish()),
            Arc::new(Int32Array::from(self.stay)),
            Arc::new(Date32Array::from(self.discharge)),
            Arc::new(self.note.finish()),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// The narrow table's columns of one batch.
struct NarrowRows {
    key: Vec<i64>,
    encounter: Vec<i64>,
    value: Vec<Option<f64>>,
}

impl NarrowRows {
    fn with_capacity(len: usize) -> NarrowRows {
        NarrowRows {
            key: Vec::with_capacity(len),
            encounter: Vec::with_capacity(len),
            value: Vec::with_capacity(len),
        }
    }

    fn finish(self, schema: SchemaRef) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(self.key)),
            Arc::new(Int64Array::from(self.encounter)),
            Arc::new(Float64Array::from(self.value)),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
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
        let mut rows = NarrowRows::with_capacity(len);
        for i in 0..len as u64 {
            rows.key.push((first + i + 1) as i64);
            rows.encounter.push(1 + rng.below(total.max(1)) as i64);
            rows.value
                .push((rng.below(20) != 0).then(|| rng.unit() * 1_000.0));
        }
        rows.finish(self.schema())
    }
}

/// The wide table shaped like a clinical warehouse's encounters (same columns as [`Wide`]).
struct ClinicalWide;

/// Days from 1970-01-01 to 2015-01-01; admissions span ten years from there.
const EPOCH_2015: i32 = 16_436;
const SPAN_DAYS: u64 = 3_652;
const MICROS_PER_MINUTE: i64 = 60_000_000;
/// Wards with how often each admits (relative weights).
const WARD_WEIGHTS: [u32; 12] = [14, 9, 30, 8, 7, 6, 4, 8, 3, 6, 2, 3];
/// Letters of ICD-10 chapters, the common ones first.
const CHAPTERS: &[u8; 20] = b"JIRKMSNCEFGZOLHDAQTB";
/// Phrases the notes are made of: an opening, a finding and a plan, each from a short list.
const OPENINGS: [&str; 6] = [
    "Patient admitted via ED with",
    "Elective admission for",
    "Referred by GP with",
    "Transferred from another trust with",
    "Self-presented with",
    "Admitted overnight with",
];
const FINDINGS: [&str; 8] = [
    "Obs stable on arrival.",
    "Bloods taken, results pending.",
    "NEWS2 score 3, escalated to medical team.",
    "Pain controlled with regular analgesia.",
    "Chest x-ray clear.",
    "Reviewed on ward round, improving.",
    "Mobilising with assistance.",
    "No known drug allergies.",
];
const PLANS: [&str; 6] = [
    "Plan: continue current treatment, review in 24h.",
    "Plan: discharge home with follow-up in clinic.",
    "Plan: refer to physiotherapy.",
    "Plan: repeat bloods in the morning.",
    "Plan: discuss at MDT.",
    "",
];

impl Generator for ClinicalWide {
    fn schema(&self) -> SchemaRef {
        Wide.schema()
    }

    fn sidecar(&self) -> Sidecar {
        Wide.sidecar()
    }

    fn batch(&self, rng: &mut Rng, first: u64, len: usize, total: u64) -> Result<RecordBatch> {
        let people = (total / 3).max(1);
        let ward_total: u32 = WARD_WEIGHTS.iter().sum();
        let mut rows = WideRows::with_capacity(len, len * 96);
        let mut text = String::with_capacity(256);
        for i in 0..len as u64 {
            let key = first + i;
            rows.encounter.push((key + 1) as i64);
            // Some people come back often: a skewed draw over the population.
            rows.person
                .push(1 + (people as f64 * rng.unit().powi(3)) as i64);
            // 60 consultants, a few of them with most of the admissions; 3 % unrecorded.
            rows.provider
                .push((rng.below(33) != 0).then(|| 1000 + (60.0 * rng.unit().powi(2)) as i32));
            // Ages cluster in later life.
            let years = (rng.unit() + rng.unit() + rng.unit()) / 3.0 * 100.0;
            rows.age.push((rng.below(200) != 0).then_some(years as i16));
            // Costs come from a tariff of ~150 prices; 8 % not yet costed.
            rows.cost.push(
                (rng.below(12) != 0).then(|| i128::from(250 + 37 * (rng.below(150) as i64).pow(2))),
            );
            // BMI to one decimal place, often not measured.
            rows.bmi.push((rng.below(3) != 0).then(|| {
                let raw = 18.0 + (rng.unit() + rng.unit()) * 10.0;
                (raw * 10.0).round() / 10.0
            }));
            let emergency_ward = rng.below(10) < 3;
            rows.emergency.push(Some(emergency_ward));
            // Admissions in key order over ten years, a day or two of jitter.
            let day = EPOCH_2015 + (key * SPAN_DAYS / total.max(1)) as i32 + rng.below(2) as i32;
            rows.admission.push(Some(day));
            // Mostly in the day, to the minute.
            let minute = (8 * 60 + (rng.unit() * rng.unit() * 14.0 * 60.0) as i64) % (24 * 60);
            let at = i64::from(day) * MICROS_PER_DAY + minute * MICROS_PER_MINUTE;
            rows.admitted.push(Some(at));
            // Recorded within hours, to the second.
            rows.recorded
                .push(Some(at + (rng.below(6 * 3600) as i64) * 1_000_000));
            // A vocabulary of 2 000 codes, a few very common.
            let index = (2_000.0 * rng.unit().powi(4)) as usize;
            text.clear();
            text.push(char::from(CHAPTERS[index % CHAPTERS.len()]));
            let number = index / CHAPTERS.len() * 7 % 1_000;
            let _ = write!(text, "{number:03}");
            text.push(char::from(b'0' + (index % 10) as u8));
            rows.code.append_value(&text);
            let mut pick = rng.below(u64::from(ward_total)) as u32;
            let mut w = 0;
            while pick >= WARD_WEIGHTS[w] {
                pick -= WARD_WEIGHTS[w];
                w += 1;
            }
            rows.ward.append_value(WARDS[w]);
            // Most stays are short: 0 to a few days, a long tail.
            let los = (-(1.0 - rng.unit()).ln() * 3.0) as i32;
            rows.stay.push(Some(los));
            rows.discharge
                .push((rng.below(12) != 0).then_some(day + los));
            if rng.below(5) == 0 {
                rows.note.append_null();
            } else {
                text.clear();
                text.push_str(OPENINGS[rng.below(OPENINGS.len() as u64) as usize]);
                text.push(' ');
                text.push_str(WARDS[w]);
                text.push_str(" symptoms. ");
                for _ in 0..1 + rng.below(2) {
                    text.push_str(FINDINGS[rng.below(FINDINGS.len() as u64) as usize]);
                    text.push(' ');
                }
                text.push_str(PLANS[rng.below(PLANS.len() as u64) as usize]);
                rows.note.append_value(text.trim_end());
            }
        }
        rows.finish(self.schema())
    }
}

/// The narrow table shaped like a clinical warehouse's observations: a few per encounter, in
/// encounter order, values of a handful of measurement kinds to their recorded precision.
struct ClinicalNarrow;

impl Generator for ClinicalNarrow {
    fn schema(&self) -> SchemaRef {
        Narrow.schema()
    }

    fn sidecar(&self) -> Sidecar {
        Narrow.sidecar()
    }

    fn batch(&self, rng: &mut Rng, first: u64, len: usize, total: u64) -> Result<RecordBatch> {
        let mut rows = NarrowRows::with_capacity(len);
        for i in 0..len as u64 {
            let k = first + i;
            rows.key.push((k + 1) as i64);
            // Four observations per encounter on average, in order.
            rows.encounter
                .push(1 + (k / 4).min(total.max(1) - 1) as i64);
            // Heart rate, temperature, saturation or a lab value, as charted.
            rows.value.push((rng.below(20) != 0).then(|| match k % 4 {
                0 => (55 + rng.below(60)) as f64,
                1 => (360 + rng.below(25)) as f64 / 10.0,
                2 => (90 + rng.below(11)) as f64,
                _ => (rng.below(2_000) as f64) / 10.0,
            }));
        }
        rows.finish(self.schema())
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
