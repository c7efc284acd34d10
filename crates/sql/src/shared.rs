//! What both SQL sources do the same way: pick a catalog name as Unity Catalog matches names,
//! find a described table's columns again (in the same snapshot) and check they still map to
//! the described types, and bound a query in time.

use std::time::Duration;

use publish_source::columns::{CatalogTable, same_name};
use publish_source::{SourceError, TableRequest};
use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema, UcType};

use crate::error::protocol;

/// The name equal to `wanted`, else the only one equal to it ignoring case.
pub(crate) fn pick(names: &[String], wanted: &str) -> Option<String> {
    if let Some(exact) = names.iter().find(|n| n.as_str() == wanted) {
        return Some(exact.clone());
    }
    let mut similar = names.iter().filter(|n| same_name(n, wanted));
    match (similar.next(), similar.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// One column as a source's catalog declares it, mapped.
pub(crate) struct Declared<'a> {
    pub(crate) name: &'a str,
    pub(crate) uc: UcType,
    pub(crate) not_null: bool,
    pub(crate) comment: Option<&'a str>,
}

/// A table as the catalog declares it, names checked (a name the service's types cannot hold
/// is an error naming why, not a silently different name).
pub(crate) fn catalog_table<'a>(
    database: &ObjectName,
    schema: &str,
    table: &str,
    comment: Option<String>,
    primary_key: Vec<String>,
    columns: impl Iterator<Item = Declared<'a>>,
) -> Result<CatalogTable, SourceError> {
    let columns = columns
        .map(|c| {
            Ok(ColumnSchema {
                name: Identifier::parse(c.name)
                    .map_err(|e| protocol(format!("a column name the service cannot hold: {e}")))?,
                data_type: c.uc,
                nullable: !c.not_null,
                comment: c.comment.map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    let object = |name: &str| {
        ObjectName::parse(name)
            .map_err(|e| protocol(format!("a name the service cannot hold: {e}")))
    };
    Ok(CatalogTable {
        catalog: database.clone(),
        schema: object(schema)?,
        table: object(table)?,
        columns,
        primary_key,
        comment,
    })
}

/// The request that describes `schema`'s table again, all columns.
pub(crate) fn request_of(schema: &TableSchema) -> TableRequest {
    TableRequest {
        catalog: schema.catalog.clone(),
        schema: schema.schema.clone(),
        table: schema.table.clone(),
        columns: None,
    }
}

/// `schema`'s columns, in its order, each found again among the source's `columns` (by the
/// exact name the catalog gave it) and mapped once by `map`, and checked to map still to the
/// described type (`uc` reads a mapping's type): the names to select, and how.
pub(crate) fn described_columns<'s, C, M>(
    schema: &'s TableSchema,
    catalog: &CatalogTable,
    columns: &[C],
    name: impl Fn(&C) -> &str,
    map: impl Fn(&C) -> M,
    uc: impl Fn(&M) -> &UcType,
) -> Result<Vec<(&'s Identifier, M)>, SourceError> {
    let table = request_of(schema).full_name();
    schema
        .columns
        .iter()
        .map(|column| {
            let found = columns
                .iter()
                .find(|c| name(c) == column.name.as_str())
                .ok_or_else(|| SourceError::UnknownColumn {
                    table: table.clone(),
                    column: column.name.to_string(),
                    available: catalog.columns.iter().map(|c| c.name.to_string()).collect(),
                })?;
            let mapping = map(found);
            let now = uc(&mapping);
            if *now != column.data_type {
                return Err(protocol(format!(
                    "column `{}` of `{table}` is now {now} where it was described as {}",
                    column.name, column.data_type
                )));
            }
            Ok((&column.name, mapping))
        })
        .collect()
}

/// Runs `query` within `after`, its error mapped by `mapped`.
pub(crate) async fn timed<T, E>(
    after: Duration,
    operation: &str,
    query: impl Future<Output = Result<T, E>>,
    mapped: impl FnOnce(E) -> SourceError,
) -> Result<T, SourceError> {
    match tokio::time::timeout(after, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(mapped(e)),
        Err(_) => Err(SourceError::Timeout {
            operation: operation.to_owned(),
            after,
        }),
    }
}
