//! Resolving requested columns against a table's catalog columns, shared by every source so that
//! all of them match names the same way Unity Catalog does.

use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema};

use crate::SourceError;

/// A table as its catalog declares it: every column, in catalog order.
#[derive(Debug, Clone)]
pub struct CatalogTable {
    /// The catalog.
    pub catalog: ObjectName,
    /// The schema.
    pub schema: ObjectName,
    /// The table.
    pub table: ObjectName,
    /// Every column, in catalog order.
    pub columns: Vec<ColumnSchema>,
    /// Declared primary key, in key order, as the catalog spells it.
    pub primary_key: Vec<String>,
    /// The table comment.
    pub comment: Option<String>,
}

/// Case-insensitive equality as Unity Catalog applies it to column names.
pub fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

impl CatalogTable {
    fn full_name(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.table)
    }

    /// The catalog column a requested name denotes: an exact match first, else the one whose
    /// name is equal ignoring case.
    fn find(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns
            .iter()
            .find(|c| c.name.as_str() == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .find(|c| same_name(c.name.as_str(), name))
            })
    }

    /// The schema of `requested` (all columns when `None`), in the requested order, spelled as
    /// the catalog spells them; the primary key kept only if every key column is included.
    pub fn select(self, requested: Option<&[Identifier]>) -> Result<TableSchema, SourceError> {
        let columns = match requested {
            None => self.columns.clone(),
            Some([]) => {
                return Err(SourceError::NoColumns {
                    table: self.full_name(),
                });
            }
            Some(names) => {
                let mut out: Vec<ColumnSchema> = Vec::with_capacity(names.len());
                for name in names {
                    let column =
                        self.find(name.as_str())
                            .ok_or_else(|| SourceError::UnknownColumn {
                                table: self.full_name(),
                                column: name.to_string(),
                                available: self
                                    .columns
                                    .iter()
                                    .map(|c| c.name.to_string())
                                    .collect(),
                            })?;
                    if out.iter().any(|c| c.name == column.name) {
                        return Err(SourceError::DuplicateColumn {
                            table: self.full_name(),
                            column: column.name.to_string(),
                        });
                    }
                    out.push(column.clone());
                }
                out
            }
        };
        let mut primary_key = Vec::with_capacity(self.primary_key.len());
        for key in &self.primary_key {
            match columns.iter().find(|c| same_name(c.name.as_str(), key)) {
                Some(c) => primary_key.push(c.name.clone()),
                None => {
                    primary_key.clear();
                    break;
                }
            }
        }
        Ok(TableSchema {
            catalog: self.catalog,
            schema: self.schema,
            table: self.table,
            columns,
            primary_key,
            comment: self.comment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use publish_types::UcType;

    fn id(s: &str) -> Identifier {
        Identifier::parse(s).unwrap()
    }

    fn table() -> CatalogTable {
        let col = |n: &str| ColumnSchema {
            name: id(n),
            data_type: UcType::Int,
            nullable: true,
            comment: None,
        };
        CatalogTable {
            catalog: ObjectName::parse("c").unwrap(),
            schema: ObjectName::parse("s").unwrap(),
            table: ObjectName::parse("t").unwrap(),
            columns: vec![col("Id"), col("Age"), col("name")],
            primary_key: vec!["Id".into(), "name".into()],
            comment: None,
        }
    }

    fn names(s: &TableSchema) -> Vec<&str> {
        s.columns.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn selects_in_requested_order_with_catalog_spelling() {
        let s = table().select(Some(&[id("NAME"), id("id")])).unwrap();
        assert_eq!(names(&s), ["name", "Id"]);
        assert_eq!(s.primary_key, [id("Id"), id("name")]);
        let s = table().select(Some(&[id("age"), id("id")])).unwrap();
        assert!(s.primary_key.is_empty(), "a key column was not requested");
        assert_eq!(names(&table().select(None).unwrap()), ["Id", "Age", "name"]);
    }

    #[test]
    fn unknown_and_duplicate_columns() {
        let e = table().select(Some(&[id("agee")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "table `c.s.t` has no column `agee`; available: Id, Age, name"
        );
        let e = table().select(Some(&[id("age"), id("AGE")])).unwrap_err();
        assert!(matches!(e, SourceError::DuplicateColumn { column, .. } if column == "Age"));
    }
}
