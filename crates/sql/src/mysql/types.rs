//! MySQL / MariaDB column types → Unity Catalog types, and the cast the generated `SELECT`
//! applies where a type has no mapping of its own (the table in the crate documentation).

use publish_types::UcType;

/// A column's type as `information_schema.COLUMNS` declares it.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredType {
    /// `DATA_TYPE`, lower-case (`int`, `decimal`, `varchar`…).
    pub(crate) data_type: String,
    /// `COLUMN_TYPE`, lower-case (`int(10) unsigned`, `bit(1)`…).
    pub(crate) column_type: String,
    /// `NUMERIC_PRECISION`, `NUMERIC_SCALE`.
    pub(crate) precision: Option<u64>,
    pub(crate) scale: Option<u64>,
    /// `CHARACTER_MAXIMUM_LENGTH`.
    pub(crate) length: Option<u64>,
}

/// How a column is read: its Unity Catalog type, and whether the `SELECT` casts it to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) uc: UcType,
    pub(crate) as_text: bool,
}

/// The mapping of a column of type `c`.
pub(crate) fn map(c: &DeclaredType) -> Mapping {
    let native = |uc| Mapping { uc, as_text: false };
    let unsigned = c.column_type.contains("unsigned");
    let bounded = |n: Option<u64>| n.and_then(|n| u32::try_from(n).ok());
    match c.data_type.as_str() {
        "tinyint" if unsigned => native(UcType::SmallInt),
        "tinyint" => native(UcType::TinyInt),
        "smallint" if unsigned => native(UcType::Int),
        "smallint" => native(UcType::SmallInt),
        "mediumint" => native(UcType::Int),
        "int" | "integer" if unsigned => native(UcType::BigInt),
        "int" | "integer" => native(UcType::Int),
        "bigint" if unsigned => native(UcType::Decimal {
            precision: 20,
            scale: 0,
        }),
        "bigint" => native(UcType::BigInt),
        "year" => native(UcType::SmallInt),
        "float" => native(UcType::Float),
        "double" | "real" => native(UcType::Double),
        "decimal" | "numeric" => match (c.precision, c.scale) {
            (Some(p @ 1..=38), Some(s)) if s <= p => native(UcType::Decimal {
                precision: p as u8,
                scale: s as u8,
            }),
            _ => Mapping {
                uc: UcType::String,
                as_text: true,
            },
        },
        // BIT(1) holds exactly 0 or 1; TINYINT(1) (MySQL's BOOLEAN) holds −128…127 and stays
        // TINYINT, so that no value changes.
        "bit" if c.column_type == "bit(1)" => native(UcType::Boolean),
        "bit" => native(UcType::Binary),
        "char" => match bounded(c.length) {
            Some(n) => native(UcType::Char(n)),
            None => native(UcType::String),
        },
        "varchar" => match bounded(c.length) {
            Some(n) => native(UcType::Varchar(n)),
            None => native(UcType::String),
        },
        "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "json" => {
            native(UcType::String)
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            native(UcType::Binary)
        }
        "date" => native(UcType::Date),
        "datetime" => native(UcType::TimestampNtz),
        // Stored as UTC; read with the session's time zone at +00:00.
        "timestamp" => native(UcType::Timestamp),
        // time, geometry, inet6, uuid (MariaDB), vector…: their text.
        _ => Mapping {
            uc: UcType::String,
            as_text: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(data_type: &str, column_type: &str, p: Option<u64>, s: Option<u64>) -> DeclaredType {
        DeclaredType {
            data_type: data_type.into(),
            column_type: column_type.into(),
            precision: p,
            scale: s,
            length: if data_type.contains("char") { p } else { None },
        }
    }

    #[test]
    fn types_and_casts() {
        let cases = [
            (
                column("tinyint", "tinyint(1)", None, None),
                "tinyint",
                false,
            ),
            (
                column("tinyint", "tinyint unsigned", None, None),
                "smallint",
                false,
            ),
            (
                column("smallint", "smallint unsigned", None, None),
                "int",
                false,
            ),
            (column("mediumint", "mediumint", None, None), "int", false),
            (
                column("int", "int(10) unsigned", None, None),
                "bigint",
                false,
            ),
            (
                column("bigint", "bigint unsigned", None, None),
                "decimal(20,0)",
                false,
            ),
            (column("bigint", "bigint", None, None), "bigint", false),
            (
                column("decimal", "decimal(6,2)", Some(6), Some(2)),
                "decimal(6,2)",
                false,
            ),
            (
                column("decimal", "decimal(65,2)", Some(65), Some(2)),
                "string",
                true,
            ),
            (column("bit", "bit(1)", None, None), "boolean", false),
            (column("bit", "bit(9)", None, None), "binary", false),
            (column("char", "char(3)", Some(3), None), "char(3)", false),
            (
                column("varchar", "varchar(10)", Some(10), None),
                "varchar(10)",
                false,
            ),
            (column("longtext", "longtext", None, None), "string", false),
            (column("json", "json", None, None), "string", false),
            (column("blob", "blob", None, None), "binary", false),
            (
                column("datetime", "datetime(6)", None, None),
                "timestamp_ntz",
                false,
            ),
            (
                column("timestamp", "timestamp(6)", None, None),
                "timestamp",
                false,
            ),
            (column("time", "time(3)", None, None), "string", true),
            (column("geometry", "geometry", None, None), "string", true),
        ];
        for (c, uc, as_text) in cases {
            let got = map(&c);
            assert_eq!(got.uc.to_string(), uc, "{}", c.column_type);
            assert_eq!(got.as_text, as_text, "{}", c.column_type);
        }
    }
}
