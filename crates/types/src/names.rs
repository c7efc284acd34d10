//! Validated names: every string that becomes a path segment, a file name or a SQL identifier.
//!
//! Each newtype can only be built through its `parse` function, so holding one is proof that the
//! rules of docs/CONTRACT.md §5 were checked. None of them can contain `/`, `\`, NUL or be `..`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Why a name was refused. The message names the rule; the caller adds the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

fn err(msg: impl Into<String>) -> NameError {
    NameError(msg.into())
}

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $name::parse(s)
            }
        }
    };
}

fn check_charset(
    value: &str,
    what: &str,
    allowed: &str,
    ok: impl Fn(char) -> bool,
) -> Result<(), NameError> {
    if let Some(bad) = value.chars().find(|c| !ok(*c)) {
        return Err(err(format!(
            "{what} {value:?} contains {bad:?}; only {allowed} are allowed"
        )));
    }
    Ok(())
}

string_newtype!(
    /// A project name: 1–64 of `[A-Za-z0-9_.-]`, not starting with `.`. It becomes a directory.
    ProjectName
);

impl ProjectName {
    /// Maximum length in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates a project name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        if value.chars().count() > Self::MAX_LEN {
            return Err(err(format!(
                "is {} characters long; at most {} are allowed",
                value.chars().count(),
                Self::MAX_LEN
            )));
        }
        check_charset(
            value,
            "project name",
            "letters, digits, '_', '.' and '-'",
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        )?;
        if value.starts_with('.') {
            return Err(err(format!(
                "project name {value:?} must not start with '.'"
            )));
        }
        Ok(Self(value.to_owned()))
    }
}

/// The project start time, exactly `YYYYMMDD_HHMMSS` and a real date and time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StartTime {
    text: String,
    at: chrono::NaiveDateTime,
}

impl StartTime {
    /// Validates a start time.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let shape_ok = value.len() == 15
            && value.bytes().enumerate().all(|(i, b)| {
                if i == 8 {
                    b == b'_'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !shape_ok {
            return Err(err(format!(
                "{value:?} is not of the form YYYYMMDD_HHMMSS (e.g. 20250205_010101)"
            )));
        }
        let at = chrono::NaiveDateTime::parse_from_str(value, "%Y%m%d_%H%M%S")
            .map_err(|_| err(format!("{value:?} is not a real date and time")))?;
        Ok(Self {
            text: value.to_owned(),
            at,
        })
    }

    /// The text as given (also the directory name).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The moment it stands for (no time zone is implied by the contract).
    pub fn naive(&self) -> chrono::NaiveDateTime {
        self.at
    }
}

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for StartTime {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for StartTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StartTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StartTime::parse(&s).map_err(de::Error::custom)
    }
}

string_newtype!(
    /// A destination name such as `LSC` or `NW`: `[A-Za-z0-9_]+`, stored upper-case because it is
    /// looked up in `TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH`.
    DestinationName
);

impl DestinationName {
    /// Validates a destination name and upper-cases it.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        if value.len() > 64 {
            return Err(err("is longer than 64 characters"));
        }
        check_charset(value, "destination", "letters, digits and '_'", |c| {
            c.is_ascii_alphanumeric() || c == '_'
        })?;
        Ok(Self(value.to_ascii_uppercase()))
    }
}

string_newtype!(
    /// The name of a secret file under `SECRETS_MNT_PATH`: `[A-Za-z0-9_-]+`, so it can never
    /// reach outside that folder.
    SecretName
);

impl SecretName {
    /// Validates a secret file name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        if value.len() > 255 {
            return Err(err("is longer than 255 characters"));
        }
        check_charset(value, "secret name", "letters, digits, '_' and '-'", |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
        })?;
        Ok(Self(value.to_owned()))
    }
}

string_newtype!(
    /// A schema, table or column name: non-empty, at most 255 characters, no control characters.
    /// It is only ever used quoted (see [`Identifier::quoted_backtick`]), never spliced into SQL.
    Identifier
);

impl Identifier {
    /// Maximum length in characters (Unity Catalog's limit).
    pub const MAX_LEN: usize = 255;

    /// Validates an identifier.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        if value.is_empty() {
            return Err(err("must not be empty"));
        }
        let len = value.chars().count();
        if len > Self::MAX_LEN {
            return Err(err(format!(
                "is {len} characters long; at most {} are allowed",
                Self::MAX_LEN
            )));
        }
        if let Some(bad) = value.chars().find(|c| c.is_control()) {
            return Err(err(format!("contains the control character {bad:?}")));
        }
        Ok(Self(value.to_owned()))
    }

    /// Databricks SQL quoting: wrapped in back-quotes, embedded back-quotes doubled.
    pub fn quoted_backtick(&self) -> String {
        quote(&self.0, '`')
    }

    /// Standard SQL (DuckDB) quoting: wrapped in double quotes, embedded double quotes doubled.
    pub fn quoted_double(&self) -> String {
        quote(&self.0, '"')
    }

    /// True when this is usable as a single path segment (for CSV/Parquet file names): not `.`
    /// or `..`, and free of `/`, `\` and NUL.
    pub fn is_path_safe(&self) -> bool {
        self.0 != "." && self.0 != ".." && !self.0.contains(['/', '\\', '\0'])
    }
}

string_newtype!(
    /// A catalog, schema or table name. Unity Catalog allows no `.`, space, `/` or control
    /// characters in these (and stores them lower-case), so none of those are accepted here;
    /// that also makes every object name a safe single path segment (e.g. `<schema>/<table>.csv`).
    /// Quotes and back-quotes are allowed and always quoted when used in SQL.
    ObjectName
);

/// A table by its schema and name (`schema.table`), as a dataset claims it in the output.
///
/// Two references name the same table when they are equal ignoring ASCII case
/// ([`TableRef::same_as`]): Unity Catalog and DuckDB compare names that way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    /// The schema (a DuckDB schema, or the folder of CSV/Parquet files).
    pub schema: ObjectName,
    /// The table.
    pub table: ObjectName,
}

impl TableRef {
    /// True when both name the same table, ignoring ASCII case.
    pub fn same_as(&self, other: &TableRef) -> bool {
        self.schema
            .as_str()
            .eq_ignore_ascii_case(other.schema.as_str())
            && self
                .table
                .as_str()
                .eq_ignore_ascii_case(other.table.as_str())
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl ObjectName {
    /// Validates a catalog, schema or table name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let id = Identifier::parse(value)?;
        if let Some(bad) = value.chars().find(|c| matches!(c, '.' | ' ' | '/' | '\\')) {
            return Err(err(format!(
                "{value:?} contains {bad:?}, which Unity Catalog names cannot contain"
            )));
        }
        Ok(Self(id.0))
    }

    /// Databricks SQL quoting (see [`Identifier::quoted_backtick`]).
    pub fn quoted_backtick(&self) -> String {
        quote(&self.0, '`')
    }

    /// Standard SQL (DuckDB) quoting (see [`Identifier::quoted_double`]).
    pub fn quoted_double(&self) -> String {
        quote(&self.0, '"')
    }

    /// The same name as a column-style identifier.
    pub fn as_identifier(&self) -> Identifier {
        Identifier(self.0.clone())
    }
}

/// Any name (a struct field, a file path) quoted as a SQL identifier with quote character `q`
/// (`"` for DuckDB, `` ` `` for Databricks), embedded `q`s doubled — what
/// [`Identifier::quoted_double`] and [`Identifier::quoted_backtick`] do for validated names.
pub fn quote(value: &str, q: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push(q);
    for c in value.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per rule: `(input, accepted)`.
    fn check<T>(parse: fn(&str) -> Result<T, NameError>, cases: &[(&str, bool)]) {
        for (input, ok) in cases {
            assert_eq!(parse(input).is_ok(), *ok, "input {input:?}");
        }
    }

    #[test]
    fn project_names() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        check(
            ProjectName::parse,
            &[
                ("Pr004", true),
                ("my.project-1_x", true),
                (&long, true),
                ("", false),
                (&too_long, false),
                ("../x", false),
                ("..", false),
                ("a/b", false),
                (".hidden", false),
                ("a b", false),
                ("a\\b", false),
                ("é", false),
                ("a\0b", false),
            ],
        );
    }

    #[test]
    fn start_times() {
        check(
            StartTime::parse,
            &[
                ("20250205_010101", true),
                ("20240229_235959", true),
                ("20251301_000000", false),
                ("20250230_000000", false),
                ("20230229_000000", false),
                ("20250205_240000", false),
                ("20250205_016001", false),
                ("2025020_0101010", false),
                ("20250205-010101", false),
                ("20250205_01010", false),
                ("", false),
                ("../20250205_01", false),
            ],
        );
    }

    #[test]
    fn destination_names() {
        check(
            DestinationName::parse,
            &[
                ("LSC", true),
                ("nw", true),
                ("A_1", true),
                ("", false),
                ("L-SC", false),
                ("../x", false),
                ("a b", false),
            ],
        );
        assert_eq!(
            DestinationName::parse("lsc").map(|d| d.0),
            Ok("LSC".to_owned())
        );
    }

    #[test]
    fn secret_names() {
        check(
            SecretName::parse,
            &[
                ("databricksspnclientid", true),
                ("spn-secret_1", true),
                ("", false),
                ("../etc/passwd", false),
                ("a/b", false),
                ("a.b", false),
                ("..", false),
            ],
        );
    }

    #[test]
    fn identifiers() {
        let max = "x".repeat(255);
        let too_long = "x".repeat(256);
        check(
            Identifier::parse,
            &[
                ("person", true),
                ("a`b", true),
                ("we\"ird", true),
                (&max, true),
                ("", false),
                (&too_long, false),
                ("a\nb", false),
            ],
        );
    }

    #[test]
    fn identifier_quoting_doubles_the_quote_character() {
        let id = Identifier::parse("a`b\"c").unwrap();
        assert_eq!(id.quoted_backtick(), "`a``b\"c`");
        assert_eq!(id.quoted_double(), "\"a`b\"\"c\"");
    }

    #[test]
    fn object_names() {
        check(
            ObjectName::parse,
            &[
                ("person", true),
                ("a`b", true),
                ("q\"uote", true),
                ("a.b", false),
                ("a b", false),
                ("../x", false),
                ("a/b", false),
                ("", false),
            ],
        );
    }

    #[test]
    fn identifier_path_safety() {
        for (s, safe) in [
            ("person", true),
            ("..", false),
            (".", false),
            ("a/b", false),
            ("a\\b", false),
            ("..a", true),
        ] {
            assert_eq!(
                Identifier::parse(s).map(|i| i.is_path_safe()),
                Ok(safe),
                "{s:?}"
            );
        }
    }
}
