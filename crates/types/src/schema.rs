//! Table schemas as Unity Catalog declares them: the types every sink must reproduce.

use crate::error::ParseError;
use std::fmt;

use crate::names::{Identifier, ObjectName};

/// A Unity Catalog column type, parsed from its `type_text` (Spark catalog string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UcType {
    /// `boolean`.
    Boolean,
    /// `tinyint` / `byte`.
    TinyInt,
    /// `smallint` / `short`.
    SmallInt,
    /// `int` / `integer`.
    Int,
    /// `bigint` / `long`.
    BigInt,
    /// `float` / `real`.
    Float,
    /// `double`.
    Double,
    /// `decimal(p,s)`; bare `decimal` is `decimal(10,0)`.
    Decimal {
        /// Precision, 1..=38.
        precision: u8,
        /// Scale, 0..=precision.
        scale: u8,
    },
    /// `string`.
    String,
    /// `char(n)`.
    Char(u32),
    /// `varchar(n)`.
    Varchar(u32),
    /// `binary`.
    Binary,
    /// `date`.
    Date,
    /// `timestamp`: an instant, stored in UTC.
    Timestamp,
    /// `timestamp_ntz`: a wall-clock time without zone.
    TimestampNtz,
    /// `array<T>`.
    Array(Box<UcType>),
    /// `map<K,V>`.
    Map(Box<UcType>, Box<UcType>),
    /// `struct<a:T,...>`.
    Struct(Vec<StructField>),
    /// `interval ...` (the qualifier, e.g. `day to second`).
    Interval(String),
    /// `variant`: semi-structured JSON.
    Variant,
    /// Anything else (geography, geometry, void, user-defined...): kept as text.
    Other(String),
}

/// A field of a `struct<...>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructField {
    /// Field name (case kept).
    pub name: String,
    /// Field type.
    pub data_type: UcType,
    /// False when declared `NOT NULL`.
    pub nullable: bool,
}

impl UcType {
    /// Parses a Unity Catalog / Spark `type_text`, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            text,
        };
        let t = p.ty().map_err(ParseError::TypeText)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(ParseError::TypeText(
                p.fail("unexpected text after the type"),
            ));
        }
        Ok(t)
    }

    /// True for array, map and struct.
    pub fn is_nested(&self) -> bool {
        matches!(self, Self::Array(_) | Self::Map(..) | Self::Struct(_))
    }
}

impl fmt::Display for UcType {
    /// The canonical lower-case `type_text`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean => f.write_str("boolean"),
            Self::TinyInt => f.write_str("tinyint"),
            Self::SmallInt => f.write_str("smallint"),
            Self::Int => f.write_str("int"),
            Self::BigInt => f.write_str("bigint"),
            Self::Float => f.write_str("float"),
            Self::Double => f.write_str("double"),
            Self::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Self::String => f.write_str("string"),
            Self::Char(n) => write!(f, "char({n})"),
            Self::Varchar(n) => write!(f, "varchar({n})"),
            Self::Binary => f.write_str("binary"),
            Self::Date => f.write_str("date"),
            Self::Timestamp => f.write_str("timestamp"),
            Self::TimestampNtz => f.write_str("timestamp_ntz"),
            Self::Array(t) => write!(f, "array<{t}>"),
            Self::Map(k, v) => write!(f, "map<{k},{v}>"),
            Self::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, fld) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    let simple = !fld.name.is_empty()
                        && fld
                            .name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if simple {
                        write!(f, "{}:{}", fld.name, fld.data_type)?;
                    } else {
                        write!(f, "`{}`:{}", fld.name.replace('`', "``"), fld.data_type)?;
                    }
                    if !fld.nullable {
                        f.write_str(" not null")?;
                    }
                }
                f.write_str(">")
            }
            Self::Interval(q) => write!(f, "interval {q}"),
            Self::Variant => f.write_str("variant"),
            Self::Other(t) => f.write_str(t),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> String {
        format!(
            "cannot read type {:?}: {what} at offset {}",
            self.text, self.i
        )
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.fail(&format!("expected '{}'", c as char)))
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        self.text[start..self.i].to_ascii_lowercase()
    }

    fn number(&mut self) -> Result<u32, String> {
        let w = self.word();
        w.parse::<u32>().map_err(|_| self.fail("expected a number"))
    }

    fn ty(&mut self) -> Result<UcType, String> {
        let w = self.word();
        Ok(match w.as_str() {
            "boolean" | "bool" => UcType::Boolean,
            "tinyint" | "byte" => UcType::TinyInt,
            "smallint" | "short" => UcType::SmallInt,
            "int" | "integer" => UcType::Int,
            "bigint" | "long" => UcType::BigInt,
            "float" | "real" => UcType::Float,
            "double" => UcType::Double,
            "decimal" | "dec" | "numeric" => {
                if self.eat(b'(') {
                    let p = self.number()?;
                    let s = if self.eat(b',') { self.number()? } else { 0 };
                    self.expect(b')')?;
                    if !(1..=38).contains(&p) || s > p {
                        return Err(self.fail(
                            "decimal precision must be 1..=38 and scale at most the precision",
                        ));
                    }
                    UcType::Decimal {
                        precision: p as u8,
                        scale: s as u8,
                    }
                } else {
                    UcType::Decimal {
                        precision: 10,
                        scale: 0,
                    }
                }
            }
            "string" => UcType::String,
            "char" | "character" => UcType::Char(self.length()?),
            "varchar" => UcType::Varchar(self.length()?),
            "binary" => UcType::Binary,
            "date" => UcType::Date,
            "timestamp" | "timestamp_ltz" => UcType::Timestamp,
            "timestamp_ntz" => UcType::TimestampNtz,
            "variant" => UcType::Variant,
            "array" => {
                self.expect(b'<')?;
                let t = self.ty()?;
                self.expect(b'>')?;
                UcType::Array(Box::new(t))
            }
            "map" => {
                self.expect(b'<')?;
                let k = self.ty()?;
                self.expect(b',')?;
                let v = self.ty()?;
                self.expect(b'>')?;
                UcType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields = Vec::new();
                if !self.eat(b'>') {
                    loop {
                        fields.push(self.field()?);
                        if self.eat(b'>') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                UcType::Struct(fields)
            }
            "interval" => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b'>') {
                    self.i += 1;
                }
                UcType::Interval(self.text[start..self.i].trim().to_ascii_lowercase())
            }
            "" => return Err(self.fail("expected a type name")),
            other => {
                // Keep unknown types (geography(4326), void, ...) verbatim, parenthesised
                // arguments included.
                let mut t = other.to_owned();
                if self.eat(b'(') {
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b')' {
                        self.i += 1;
                    }
                    t = format!("{t}({})", self.text[start..self.i].trim());
                    self.expect(b')')?;
                }
                UcType::Other(t)
            }
        })
    }

    fn length(&mut self) -> Result<u32, String> {
        self.expect(b'(')?;
        let n = self.number()?;
        self.expect(b')')?;
        Ok(n)
    }

    fn field(&mut self) -> Result<StructField, String> {
        self.ws();
        let name = if self.s.get(self.i) == Some(&b'`') {
            self.i += 1;
            let mut name = String::new();
            loop {
                match self.s.get(self.i) {
                    None => return Err(self.fail("unterminated `name`")),
                    Some(b'`') if self.s.get(self.i + 1) == Some(&b'`') => {
                        name.push('`');
                        self.i += 2;
                    }
                    Some(b'`') => {
                        self.i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch_start = self.i;
                        self.i += 1;
                        while !self.text.is_char_boundary(self.i) {
                            self.i += 1;
                        }
                        name.push_str(&self.text[ch_start..self.i]);
                    }
                }
            }
            name
        } else {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b':' | b' ' | b',' | b'>') {
                self.i += 1;
            }
            self.text[start..self.i].to_owned()
        };
        if name.is_empty() {
            return Err(self.fail("expected a struct field name"));
        }
        self.expect(b':')?;
        let data_type = self.ty()?;
        let mut nullable = true;
        // Optional "NOT NULL" and "COMMENT '...'" after a field type.
        loop {
            let save = self.i;
            match self.word().as_str() {
                "not" => {
                    if self.word() != "null" {
                        return Err(self.fail("expected NULL after NOT"));
                    }
                    nullable = false;
                }
                "comment" => {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'\'') {
                        return Err(self.fail("expected a quoted comment"));
                    }
                    self.i += 1;
                    while self.i < self.s.len() && self.s[self.i] != b'\'' {
                        if self.s[self.i] == b'\\' {
                            self.i += 1;
                        }
                        self.i += 1;
                    }
                    self.expect(b'\'')?;
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        Ok(StructField {
            name,
            data_type,
            nullable,
        })
    }
}

/// One column as Unity Catalog declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Column name, case as declared.
    pub name: Identifier,
    /// Declared type.
    pub data_type: UcType,
    /// False for NOT NULL columns.
    pub nullable: bool,
    /// Column comment, if any.
    pub comment: Option<String>,
}

/// The schema of one extracted table: the requested columns, in the requested order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Unity Catalog catalog.
    pub catalog: ObjectName,
    /// Unity Catalog schema (also the output schema/folder name).
    pub schema: ObjectName,
    /// Table name.
    pub table: ObjectName,
    /// The requested columns, in the requested order.
    pub columns: Vec<ColumnSchema>,
    /// Declared (informational) primary key columns that are among the requested columns,
    /// in key order; empty when there is none or a key column was not requested.
    pub primary_key: Vec<Identifier>,
    /// Table comment, if any.
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_texts() {
        let cases = [
            ("bigint", "bigint"),
            ("LONG", "bigint"),
            ("integer", "int"),
            ("short", "smallint"),
            ("byte", "tinyint"),
            ("decimal(12,2)", "decimal(12,2)"),
            ("DECIMAL(6, 2)", "decimal(6,2)"),
            ("decimal", "decimal(10,0)"),
            ("timestamp", "timestamp"),
            ("timestamp_ntz", "timestamp_ntz"),
            ("char(3)", "char(3)"),
            ("varchar(10)", "varchar(10)"),
            ("array<string>", "array<string>"),
            ("map<string,array<int>>", "map<string,array<int>>"),
            ("struct<a:int,b:string>", "struct<a:int,b:string>"),
            (
                "struct<`a b`:int NOT NULL COMMENT 'x, y',c:date>",
                "struct<`a b`:int not null,c:date>",
            ),
            ("interval day to second", "interval day to second"),
            ("geography(4326)", "geography(4326)"),
            ("variant", "variant"),
            // As Databricks' live type_text spells nested types (issue 11 item 6).
            ("MAP<STRING, STRING>", "map<string,string>"),
            (
                "STRUCT<a: INT, b: ARRAY<STRING>>",
                "struct<a:int,b:array<string>>",
            ),
            ("TIMESTAMP_NTZ", "timestamp_ntz"),
            ("VARIANT", "variant"),
        ];
        for (input, canonical) in cases {
            let t = UcType::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.to_string(), canonical, "{input}");
            assert_eq!(UcType::parse(canonical), Ok(t), "round trip of {canonical}");
        }
    }

    #[test]
    fn rejects_broken_type_texts() {
        for input in [
            "",
            "decimal(39,0)",
            "decimal(5,6)",
            "array<int",
            "map<int>",
            "struct<:int>",
            "int extra",
            "char",
        ] {
            assert!(UcType::parse(input).is_err(), "{input}");
        }
    }
}
