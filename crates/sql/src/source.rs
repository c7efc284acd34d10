//! The one SQL source: what reading a SQL database for a package means, whatever the database —
//! the host checked against the allow-list, one snapshot per package named in the package
//! record, names matched as Unity Catalog matches them, a described table found again and
//! checked to map to the same types before it is read, one generated `SELECT` of exactly the
//! described columns, its rows in batches of the canonical Arrow schema. What each database
//! does its own way is its [`Dialect`] (`postgres`, `mysql`).

use std::sync::Arc;

use async_trait::async_trait;
use publish_source::columns::{CatalogTable, same_name};
use publish_source::{Source, SourceError, TableRequest, TableStream};
use publish_types::{ColumnSchema, Identifier, ObjectName, TableSchema, quote};
use tracing::debug;

use crate::SqlConfig;
use crate::builders::Batcher;
use crate::dialect::{Column, Dialect, Read, Reading};
use crate::error::protocol;

/// A SQL database, read for one package from one snapshot, through its dialect `D`.
pub struct SqlSource<D> {
    dialect: D,
    database: ObjectName,
    /// The snapshot's identity, recorded for every table read.
    snapshot: String,
    batch_rows: usize,
}

impl<D: Dialect> SqlSource<D> {
    /// Connects, opens the package's snapshot and names it. The host is one the allow-list
    /// admitted ([`SqlConfig::host`]).
    pub async fn connect(config: SqlConfig) -> Result<Self, SourceError> {
        let (dialect, snapshot) = D::open(&config).await?;
        debug!(%snapshot, "package snapshot open");
        Ok(Self {
            dialect,
            database: config.database,
            snapshot,
            batch_rows: config.options.batch_rows,
        })
    }

    /// The identity of the package's snapshot, as recorded for every table.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The table as the catalog declares it, and its columns as the dialect mapped them.
    async fn catalog_table(
        &self,
        request: &TableRequest,
    ) -> Result<(CatalogTable, Vec<Column>), SourceError> {
        if !same_name(request.catalog.as_str(), self.database.as_str()) {
            return Err(SourceError::UnknownCatalog {
                catalog: request.catalog.to_string(),
            });
        }
        let schemas = self.dialect.schemas(request.schema.as_str()).await?;
        let schema =
            pick(&schemas, request.schema.as_str()).ok_or_else(|| SourceError::UnknownSchema {
                schema: format!("{}.{}", request.catalog, request.schema),
            })?;
        let tables = self.dialect.tables(&schema, request.table.as_str()).await?;
        let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
        let name =
            pick(&names, request.table.as_str()).ok_or_else(|| SourceError::UnknownTable {
                table: request.full_name(),
            })?;
        let table = tables
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| protocol("a table vanished from the catalog"))?;
        let (columns, primary_key) = self.dialect.columns(&schema, &table).await?;
        let catalog = declared_table(
            &self.database,
            &schema,
            &table.name,
            table.comment,
            primary_key,
            &columns,
        )?;
        Ok((catalog, columns))
    }
}

#[async_trait]
impl<D: Dialect> Source for SqlSource<D> {
    async fn describe(&self, table: &TableRequest) -> Result<TableSchema, SourceError> {
        let (catalog, _) = self.catalog_table(table).await?;
        catalog.select(table.columns.as_deref())
    }

    async fn read(&self, schema: &TableSchema) -> Result<TableStream, SourceError> {
        let request = request_of(schema);
        let (catalog, columns) = self.catalog_table(&request).await?;
        let full_name = request.full_name();
        // The names as the catalog spells them, always quoted, never spliced.
        let select: Vec<&str> = described_columns(schema, &catalog, &columns)?;
        let select = format!(
            "SELECT {} FROM {}.{}",
            select.join(", "),
            quote(catalog.schema.as_str(), D::QUOTE),
            quote(catalog.table.as_str(), D::QUOTE),
        );
        let arrow_schema = publish_columns::arrow_schema(schema);
        let rows = Batcher::new(Arc::clone(&arrow_schema), self.batch_rows)
            .map_err(|e| protocol(format!("table `{full_name}`: {e}")))?;
        let names = schema.columns.iter().map(|c| c.name.to_string()).collect();
        let read = Read {
            select,
            rows,
            reading: Reading::new(full_name, names),
        };
        Ok(TableStream {
            schema: arrow_schema,
            batches: self.dialect.stream(read).await?,
            snapshot: Some(self.snapshot.clone()),
            unpinned: None,
        })
    }

    async fn check(&self) -> Result<(), SourceError> {
        self.dialect.check().await
    }
}

/// The name equal to `wanted`, else the only one equal to it ignoring case.
fn pick(names: &[String], wanted: &str) -> Option<String> {
    if let Some(exact) = names.iter().find(|n| n.as_str() == wanted) {
        return Some(exact.clone());
    }
    let mut similar = names.iter().filter(|n| same_name(n, wanted));
    match (similar.next(), similar.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// A table as the catalog declares it, names checked (a name the service's types cannot hold
/// is an error naming why, not a silently different name).
fn declared_table(
    database: &ObjectName,
    schema: &str,
    table: &str,
    comment: Option<String>,
    primary_key: Vec<String>,
    columns: &[Column],
) -> Result<CatalogTable, SourceError> {
    let columns = columns
        .iter()
        .map(|c| {
            Ok(ColumnSchema {
                name: Identifier::parse(&c.name)
                    .map_err(|e| protocol(format!("a column name the service cannot hold: {e}")))?,
                data_type: c.uc.clone(),
                nullable: !c.not_null,
                comment: c.comment.clone(),
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
fn request_of(schema: &TableSchema) -> TableRequest {
    TableRequest {
        catalog: schema.catalog.clone(),
        schema: schema.schema.clone(),
        table: schema.table.clone(),
        columns: None,
    }
}

/// What the `SELECT` lists for `schema`'s columns, in its order: each found again among the
/// catalog's `columns` (by the exact name the catalog gave it) and checked to map still to the
/// described type.
fn described_columns<'c>(
    schema: &TableSchema,
    catalog: &CatalogTable,
    columns: &'c [Column],
) -> Result<Vec<&'c str>, SourceError> {
    let table = request_of(schema).full_name();
    schema
        .columns
        .iter()
        .map(|column| {
            let found = columns
                .iter()
                .find(|c| c.name == column.name.as_str())
                .ok_or_else(|| SourceError::UnknownColumn {
                    table: table.clone(),
                    column: column.name.to_string(),
                    available: catalog.columns.iter().map(|c| c.name.to_string()).collect(),
                })?;
            if found.uc != column.data_type {
                return Err(protocol(format!(
                    "column `{}` of `{table}` is now {} where it was described as {}",
                    column.name, found.uc, column.data_type
                )));
            }
            Ok(found.select.as_str())
        })
        .collect()
}
