//! The kinds of Unity Catalog object a TRE points the service at, beyond a plain managed Delta
//! table, and how each answers the statements that pin a read: `DESCRIBE HISTORY` and `SELECT
//! … VERSION AS OF` (docs/DATABRICKS-WIRE.md §6.5 gives the source of every answer).
//!
//! A table's [`Sidecar`](crate::catalog::Sidecar) names its kind. The rows a `SELECT` returns
//! are the table's Parquet rows as they are: the emulator does not evaluate row filter or
//! column mask functions, view definitions or a foreign source; a fixture holds the rows the
//! service principal is allowed to see.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What kind of object a table is, beyond a plain managed Delta table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Governance {
    /// A managed Delta table with a per-table row filter and/or column masks (`ALTER TABLE …
    /// SET ROW FILTER`, `ALTER COLUMN … SET MASK`).
    RowFilterColumnMask {
        /// The row filter function and the columns it is applied to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        row_filter: Option<(String, Vec<String>)>,
        /// Masked columns and their mask functions.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        column_masks: BTreeMap<String, String>,
        /// `false` (the documented answer): `DESCRIBE HISTORY` is refused
        /// (`ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.DESCRIBE_HISTORY`). `true`:
        /// it answers, as seen on a serverless warehouse in 2026, and only `VERSION AS OF` is
        /// refused.
        #[serde(default)]
        history_readable: bool,
        /// The class `VERSION AS OF` is refused with, when it is reached: one of
        /// [`TIME_TRAVEL_REFUSALS`]; by default the class naming the protections the table has
        /// (`ROW_LEVEL_SECURITY_FEATURE_NOT_SUPPORTED.TIME_TRAVEL`,
        /// `COLUMN_MASKS_FEATURE_NOT_SUPPORTED.TIME_TRAVEL`, or both:
        /// `ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.TIME_TRAVEL`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_travel_refusal: Option<String>,
    },
    /// A table governed by attribute-based access control policies (row filters and column
    /// masks from policies on the catalog or schema; nothing of them in its `TableInfo`).
    Abac {
        /// `None`: time travel works (the Beta's requirements are met: a managed table with
        /// catalog commits on standard or serverless compute). Otherwise the subclass of
        /// `FGAC_TIME_TRAVEL_NOT_SUPPORTED` it is refused with: `NOT_CATALOG_OWNED`,
        /// `NOT_UC_MANAGED_TABLE`, `DEDICATED_COMPUTE` or `PER_TABLE_RLS_CM`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_travel_refused: Option<String>,
    },
    /// A view (or a dynamic view).
    View {
        /// Its `view_definition`.
        definition: String,
    },
    /// A materialized view.
    MaterializedView {
        /// Its `view_definition`.
        definition: String,
    },
    /// A foreign table of a Lakehouse Federation catalog.
    Foreign {
        /// Its `data_source_format`, e.g. `POSTGRESQL_FORMAT`.
        data_source_format: String,
    },
}

/// The error classes `VERSION AS OF` may be refused with on a table with per-table row filters
/// or column masks.
pub const TIME_TRAVEL_REFUSALS: &[&str] = &[
    "ROW_LEVEL_SECURITY_FEATURE_NOT_SUPPORTED.TIME_TRAVEL",
    "COLUMN_MASKS_FEATURE_NOT_SUPPORTED.TIME_TRAVEL",
    "ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.TIME_TRAVEL",
    "FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM",
];

/// A statement that pins a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pinning {
    /// `DESCRIBE HISTORY`.
    History,
    /// `VERSION AS OF` in a `SELECT` or the data files query.
    TimeTravel,
    /// `_metadata.file_path` (the data files query, a split part's filter).
    FileMetadata,
}

/// A refusal: error class, SQLSTATE and message, as a `FAILED` statement carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) sql_state: &'static str,
    pub(crate) message: String,
}

impl Governance {
    /// How `statement` on `table` (the quoted full name) is refused, if it is.
    pub(crate) fn refuses(&self, pinning: Pinning, table: &str) -> Option<Refusal> {
        match (self, pinning) {
            (
                Governance::RowFilterColumnMask {
                    history_readable: false,
                    ..
                },
                Pinning::History,
            ) => Some(refusal(
                "ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.DESCRIBE_HISTORY",
                "0A000",
                &format!(
                    "Row level security policies and column mask policies for {table} are \
                         not supported: Reading commit history is blocked for tables with row \
                         level security and column mask policies."
                ),
            )),
            (
                Governance::RowFilterColumnMask {
                    row_filter,
                    column_masks,
                    time_travel_refusal,
                    ..
                },
                Pinning::TimeTravel,
            ) => {
                let class = time_travel_refusal.clone().unwrap_or_else(|| {
                    match (row_filter.is_some(), !column_masks.is_empty()) {
                        (true, false) => TIME_TRAVEL_REFUSALS[0],
                        (false, true) => TIME_TRAVEL_REFUSALS[1],
                        _ => TIME_TRAVEL_REFUSALS[2],
                    }
                    .to_owned()
                });
                let text = if class.starts_with("FGAC_") {
                    fgac_text("PER_TABLE_RLS_CM")
                } else {
                    format!(
                        "Policies for {table} are not supported: Time travel for table with row level security policy and column mask policies."
                    )
                };
                Some(refusal(&class, "0A000", &text))
            }
            (
                Governance::Abac {
                    time_travel_refused: Some(sub),
                },
                Pinning::TimeTravel,
            ) => Some(refusal(
                &format!("FGAC_TIME_TRAVEL_NOT_SUPPORTED.{sub}"),
                "0A000",
                &fgac_text(sub),
            )),
            (Governance::View { .. } | Governance::MaterializedView { .. }, Pinning::History) => {
                Some(refusal(
                    "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE",
                    "42809",
                    &format!("'DESCRIBE HISTORY' expects a table but {table} is a view."),
                ))
            }
            (Governance::Foreign { .. }, Pinning::History) => Some(refusal(
                "DELTA_ONLY_OPERATION",
                "0AKDD",
                "DESCRIBE HISTORY is only supported for Delta tables.",
            )),
            (
                Governance::View { .. }
                | Governance::MaterializedView { .. }
                | Governance::Foreign { .. },
                Pinning::TimeTravel,
            ) => Some(refusal(
                "UNSUPPORTED_FEATURE.TIME_TRAVEL",
                "0A000",
                &format!("The feature is not supported: Time travel on the relation: {table}."),
            )),
            (
                Governance::View { .. }
                | Governance::MaterializedView { .. }
                | Governance::Foreign { .. },
                Pinning::FileMetadata,
            ) => Some(refusal(
                "UNRESOLVED_COLUMN.WITH_SUGGESTION",
                "42703",
                "A column, variable, or function parameter with name `_metadata`.`file_path` \
                 cannot be resolved.",
            )),
            _ => None,
        }
    }

    /// Adds what this kind changes to a `TableInfo` (`table_type`, `data_source_format`,
    /// `view_definition`, `row_filter`, each column's `mask`).
    pub(crate) fn describe(&self, info: &mut Map<String, Value>) {
        match self {
            Governance::RowFilterColumnMask {
                row_filter,
                column_masks,
                ..
            } => {
                if let Some((function, columns)) = row_filter {
                    info.insert(
                        "row_filter".into(),
                        json!({"function_name": function, "input_column_names": columns}),
                    );
                }
                if let Some(Value::Array(infos)) = info.get_mut("columns") {
                    for column in infos {
                        let name = column
                            .get("name")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        if let Some(function) = name.and_then(|n| column_masks.get(&n)) {
                            column["mask"] =
                                json!({"function_name": function, "using_column_names": []});
                        }
                    }
                }
            }
            Governance::Abac { .. } => {}
            Governance::View { definition } => {
                info.insert("table_type".into(), json!("VIEW"));
                info.remove("data_source_format");
                info.insert("view_definition".into(), json!(definition));
            }
            Governance::MaterializedView { definition } => {
                info.insert("table_type".into(), json!("MATERIALIZED_VIEW"));
                info.remove("data_source_format");
                info.insert("view_definition".into(), json!(definition));
            }
            Governance::Foreign { data_source_format } => {
                info.insert("table_type".into(), json!("FOREIGN"));
                info.insert("data_source_format".into(), json!(data_source_format));
            }
        }
    }
}

fn fgac_text(subclass: &str) -> String {
    let why = match subclass {
        "DEDICATED_COMPUTE" => {
            "Time travel on tables with fine-grained access control does not support Dedicated \
             Compute at this time. Switch to Standard Compute."
        }
        "NOT_CATALOG_OWNED" => {
            "Time travel on tables with fine-grained access control is only supported on tables \
             with catalog commits enabled. Enable Catalog commits."
        }
        "NOT_UC_MANAGED_TABLE" => {
            "Time travel on tables with fine-grained access control supports only Unity Catalog \
             managed tables at this time."
        }
        _ => {
            "Time travel on tables with fine-grained access control does not support per-table \
             Row Level Security (RLS) or Column Masking (CM). Only Attribute-Based Access \
             Control (ABAC) policies are supported."
        }
    };
    format!("Cannot time travel to the specified version or timestamp of this table. {why}")
}

/// `[CLASS] text SQLSTATE: s`, the shape of Databricks' error messages ("Error handling in
/// Databricks").
fn refusal(class: &str, sql_state: &'static str, text: &str) -> Refusal {
    Refusal {
        sql_state,
        message: format!("[{class}] {text} SQLSTATE: {sql_state}"),
    }
}
