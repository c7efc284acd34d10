//! Writes the demo/test tables under `fixtures/databricks/` deterministically:
//! `catalog_name.example_schema_name.person` and `.address`, the brief's example tables, with
//! realistic types and nulls. Run: `cargo run -p databricks-emulator --example make_fixtures`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use databricks_emulator::fixtures::{Sidecar, SidecarColumn, write_table};

/// A small deterministic generator (xorshift64*), so the fixtures never change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const PERSONS: usize = 200;
const ADDRESSES: usize = 300;
/// 2024-01-01T00:00:00Z in microseconds.
const EPOCH_2024_US: i64 = 1_704_067_200_000_000;

fn column(type_text: &str, comment: &str) -> SidecarColumn {
    SidecarColumn {
        type_text: Some(type_text.to_owned()),
        comment: Some(comment.to_owned()),
    }
}

fn person(rng: &mut Rng) -> (RecordBatch, Sidecar) {
    let conditions = [
        "asthma",
        "diabetes type 2",
        "hypertension",
        "copd",
        "\"unspecified\"",
    ];
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let mut ages = Vec::new();
    let mut sex = Vec::new();
    let mut dob = Vec::new();
    let mut height = Vec::new();
    let mut weight = Vec::new();
    let mut registered = Vec::new();
    let mut seen = Vec::new();
    let mut deceased = Vec::new();
    let mut conds = ListBuilder::new(StringBuilder::new());
    for i in 0..PERSONS {
        keys.push(1000 + i as i64);
        ids.push(format!("P{:06}", 17 * i + 3));
        let age = rng.below(100) as i32;
        ages.push((!rng.chance(10)).then_some(age));
        sex.push(match rng.below(10) {
            0..=4 => Some("F"),
            5..=8 => Some("M"),
            _ => None,
        });
        // Days since 1970-01-01 for a birth date consistent with the age.
        dob.push((!rng.chance(5)).then_some(19_723 - age * 365 - rng.below(365) as i32));
        height.push((!rng.chance(15)).then_some(140.0 + rng.below(600) as f64 / 10.0));
        weight.push((!rng.chance(15)).then_some(4000 + rng.below(8000) as i128)); // 40.00..120.00
        registered.push(EPOCH_2024_US + rng.below(365 * 86_400) as i64 * 1_000_000);
        seen.push(
            (!rng.chance(20))
                .then_some(EPOCH_2024_US + rng.below(700 * 86_400) as i64 * 1_000_000 + 123_456),
        );
        deceased.push(rng.chance(3));
        if rng.chance(10) {
            conds.append(false);
        } else {
            for _ in 0..rng.below(3) {
                conds
                    .values()
                    .append_value(conditions[rng.below(conditions.len() as u64) as usize]);
            }
            conds.append(true);
        }
    }
    let fields = vec![
        Field::new("person_key", DataType::Int64, false),
        Field::new("person_id", DataType::Utf8, false),
        Field::new("age", DataType::Int32, true),
        Field::new("sex", DataType::Utf8, true),
        Field::new("date_of_birth", DataType::Date32, true),
        Field::new("height_cm", DataType::Float64, true),
        Field::new("weight_kg", DataType::Decimal128(6, 2), true),
        Field::new(
            "registered_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "last_seen_local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("is_deceased", DataType::Boolean, false),
        Field::new(
            "conditions",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(keys)),
        Arc::new(StringArray::from(ids)),
        Arc::new(Int32Array::from(ages)),
        Arc::new(StringArray::from(sex)),
        Arc::new(Date32Array::from(dob)),
        Arc::new(Float64Array::from(height)),
        Arc::new(
            Decimal128Array::from(weight)
                .with_precision_and_scale(6, 2)
                .expect("decimal(6,2)"),
        ),
        Arc::new(TimestampMicrosecondArray::from(registered).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(seen)),
        Arc::new(BooleanArray::from(deceased)),
        Arc::new(conds.finish()),
    ];
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("person batch");
    let sidecar = Sidecar {
        comment: Some("One row per person in the cohort (synthetic).".to_owned()),
        primary_key: Some(vec!["person_key".to_owned()]),
        columns: BTreeMap::from([
            ("person_key".to_owned(), column("bigint", "surrogate key")),
            (
                "person_id".to_owned(),
                column("string", "pseudonymised identifier"),
            ),
            ("sex".to_owned(), column("char(1)", "F, M or unknown")),
            (
                "weight_kg".to_owned(),
                column("decimal(6,2)", "last recorded weight"),
            ),
        ]),
        governance: None,
    };
    (batch, sidecar)
}

fn address(rng: &mut Rng) -> (RecordBatch, Sidecar) {
    let streets = [
        "High Street",
        "Station Road",
        "Church Lane",
        "O'Connell Way",
        "Mill \"Old\" Row",
    ];
    let towns = ["Lancaster", "Preston", "Manchester", "Carlisle, Cumbria"];
    let mut keys = Vec::new();
    let mut persons = Vec::new();
    let mut lines = Vec::new();
    let mut postcodes = Vec::new();
    let mut from = Vec::new();
    let mut lat = Vec::new();
    for i in 0..ADDRESSES {
        keys.push(5000 + i as i64);
        persons.push((!rng.chance(2)).then_some(1000 + rng.below(PERSONS as u64) as i64));
        let street = streets[rng.below(streets.len() as u64) as usize];
        let town = towns[rng.below(towns.len() as u64) as usize];
        lines.push(if rng.chance(5) {
            None
        } else if rng.chance(10) {
            Some(format!(
                "Flat {}\n{} {street}, {town}",
                rng.below(20) + 1,
                rng.below(200) + 1
            ))
        } else {
            Some(format!("{} {street}, {town}", rng.below(200) + 1))
        });
        postcodes.push(
            (!rng.chance(8)).then(|| format!("LA{} {}AB", rng.below(9) + 1, rng.below(9) + 1)),
        );
        from.push(19_000 + rng.below(1500) as i32);
        lat.push((!rng.chance(10)).then_some(53_000_000 + rng.below(2_000_000) as i128));
    }
    let fields = vec![
        Field::new("address_key", DataType::Int64, false),
        Field::new("person_key", DataType::Int64, true),
        Field::new("address", DataType::Utf8, true),
        Field::new("postcode", DataType::Utf8, true),
        Field::new("valid_from", DataType::Date32, false),
        Field::new("latitude", DataType::Decimal128(9, 6), true),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(keys)),
        Arc::new(Int64Array::from(persons)),
        Arc::new(StringArray::from(lines)),
        Arc::new(StringArray::from(postcodes)),
        Arc::new(Date32Array::from(from)),
        Arc::new(
            Decimal128Array::from(lat)
                .with_precision_and_scale(9, 6)
                .expect("decimal(9,6)"),
        ),
    ];
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("address batch");
    let sidecar = Sidecar {
        comment: Some("Addresses of cohort members over time (synthetic).".to_owned()),
        primary_key: Some(vec!["address_key".to_owned()]),
        columns: BTreeMap::from([
            ("postcode".to_owned(), column("varchar(8)", "UK postcode")),
            (
                "address".to_owned(),
                column("string", "free-text address; may span lines"),
            ),
        ]),
        governance: None,
    };
    (batch, sidecar)
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/databricks")
        });
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let (p, ps) = person(&mut rng);
    let (a, asc) = address(&mut rng);
    write_table(
        &dir,
        "catalog_name",
        "example_schema_name",
        "person",
        &[p],
        Some(&ps),
    )?;
    write_table(
        &dir,
        "catalog_name",
        "example_schema_name",
        "address",
        &[a],
        Some(&asc),
    )?;
    println!(
        "wrote person ({PERSONS} rows) and address ({ADDRESSES} rows) under {}",
        dir.display()
    );
    Ok(())
}
