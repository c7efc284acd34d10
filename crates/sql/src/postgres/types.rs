//! PostgreSQL column types → Unity Catalog types, and the cast the generated `SELECT` applies
//! so that what `COPY` sends is what the decoder reads (the table in the crate documentation).

use publish_types::UcType;

/// A column's type as `pg_catalog` declares it, domains resolved to their base type.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredType {
    /// The base type's `typname` (e.g. `int4`, `_int4` for an array).
    pub(crate) type_name: String,
    /// The type modifier (`atttypmod`, or the domain's `typtypmod`); −1 when none.
    pub(crate) typmod: i32,
    /// For an array type, its element's `typname`.
    pub(crate) element: Option<String>,
}

/// How a column is read: its Unity Catalog type, and the cast applied in the `SELECT`
/// (`None` when the column's own send format is what the decoder reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) uc: UcType,
    pub(crate) cast: Option<&'static str>,
}

/// The variable-length header PostgreSQL counts in a type modifier.
const VARHDRSZ: i32 = 4;

fn scalar(type_name: &str, typmod: i32) -> Mapping {
    let native = |uc| Mapping { uc, cast: None };
    let text = Mapping {
        uc: UcType::String,
        cast: Some("text"),
    };
    match type_name {
        "bool" => native(UcType::Boolean),
        "int2" => native(UcType::SmallInt),
        "int4" => native(UcType::Int),
        "int8" => native(UcType::BigInt),
        "float4" => native(UcType::Float),
        "float8" => native(UcType::Double),
        "numeric" => match numeric_typmod(typmod) {
            Some((precision, scale)) => native(UcType::Decimal { precision, scale }),
            // Unconstrained, or beyond DECIMAL(38): the exact text.
            None => text,
        },
        // `name`, `varchar` and `bpchar` share text's send format.
        "text" | "name" => native(UcType::String),
        "varchar" if typmod >= VARHDRSZ => native(UcType::Varchar((typmod - VARHDRSZ) as u32)),
        "varchar" => native(UcType::String),
        "bpchar" if typmod >= VARHDRSZ => native(UcType::Char((typmod - VARHDRSZ) as u32)),
        "bpchar" => native(UcType::String),
        "bytea" => native(UcType::Binary),
        "date" => native(UcType::Date),
        "timestamp" => native(UcType::TimestampNtz),
        "timestamptz" => native(UcType::Timestamp),
        // uuid, json, jsonb, time, timetz, interval, enums, money, inet, ranges, geometry…
        _ => text,
    }
}

/// `numeric(p,s)`'s precision and scale when DECIMAL(p,s) can hold it: 1 ≤ p ≤ 38 and
/// 0 ≤ s ≤ p (PostgreSQL 15 also allows a negative scale, and a scale above the precision).
fn numeric_typmod(typmod: i32) -> Option<(u8, u8)> {
    if typmod < VARHDRSZ {
        return None;
    }
    let t = typmod - VARHDRSZ;
    let precision = (t >> 16) & 0xffff;
    // The scale is an 11-bit signed number since PostgreSQL 15 (always ≥ 0 before).
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    ((1..=38).contains(&precision) && (0..=precision).contains(&scale))
        .then_some((precision as u8, scale as u8))
}

/// The mapping of a column of type `column`.
pub(crate) fn map(column: &DeclaredType) -> Mapping {
    match &column.element {
        Some(element) => {
            let inner = scalar(element, column.typmod);
            Mapping {
                uc: UcType::Array(Box::new(inner.uc)),
                cast: inner.cast.map(|_| "text[]"),
            }
        }
        None => scalar(&column.type_name, column.typmod),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(type_name: &str, typmod: i32, element: Option<&str>) -> DeclaredType {
        DeclaredType {
            type_name: type_name.into(),
            typmod,
            element: element.map(str::to_owned),
        }
    }

    /// typmods as PostgreSQL stores them (`SELECT atttypmod`): numeric(p,s) is
    /// ((p << 16) | s) + 4, varchar(n) and char(n) are n + 4.
    #[test]
    fn types_and_casts() {
        // typname, typmod, element, Unity Catalog type, cast
        type Case<'a> = (&'a str, i32, Option<&'a str>, &'a str, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            ("int2", -1, None, "smallint", None),
            ("int4", -1, None, "int", None),
            ("int8", -1, None, "bigint", None),
            ("float4", -1, None, "float", None),
            ("float8", -1, None, "double", None),
            ("bool", -1, None, "boolean", None),
            ("numeric", (6 << 16 | 2) + 4, None, "decimal(6,2)", None),
            ("numeric", (38 << 16) + 4, None, "decimal(38,0)", None),
            ("numeric", (39 << 16 | 2) + 4, None, "string", Some("text")),
            ("numeric", -1, None, "string", Some("text")),
            // numeric(3,-1) (PostgreSQL 15): scale −1 is 0x7ff.
            (
                "numeric",
                (3 << 16 | 0x7ff) + 4,
                None,
                "string",
                Some("text"),
            ),
            ("numeric", (2 << 16 | 4) + 4, None, "string", Some("text")),
            ("text", -1, None, "string", None),
            ("name", -1, None, "string", None),
            ("varchar", 14, None, "varchar(10)", None),
            ("varchar", -1, None, "string", None),
            ("bpchar", 7, None, "char(3)", None),
            ("bytea", -1, None, "binary", None),
            ("date", -1, None, "date", None),
            ("timestamp", -1, None, "timestamp_ntz", None),
            ("timestamptz", 3, None, "timestamp", None),
            ("uuid", -1, None, "string", Some("text")),
            ("jsonb", -1, None, "string", Some("text")),
            ("interval", -1, None, "string", Some("text")),
            ("mood", -1, None, "string", Some("text")),
            ("_int4", -1, Some("int4"), "array<int>", None),
            (
                "_numeric",
                (6 << 16 | 2) + 4,
                Some("numeric"),
                "array<decimal(6,2)>",
                None,
            ),
            ("_uuid", -1, Some("uuid"), "array<string>", Some("text[]")),
            ("_text", -1, Some("text"), "array<string>", None),
        ];
        for (name, typmod, element, uc, cast) in cases {
            let got = map(&column(name, *typmod, *element));
            assert_eq!(got.uc.to_string(), *uc, "{name} {typmod}");
            assert_eq!(got.cast, *cast, "{name} {typmod}");
        }
    }
}
