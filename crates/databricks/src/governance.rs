//! Objects a TRE governs — tables with row filters or column masks (per table or through ABAC
//! policies), views, materialized views, foreign tables — refuse the statements that pin a read
//! to one Delta version (`DESCRIBE HISTORY`, `VERSION AS OF`). Such a refusal is not a failure:
//! the table is read unpinned, and the package record says why. Which refusals count is
//! decided here, by the error class Databricks puts at the head of the message
//! (`[CLASS.SUBCLASS] …`), never by `error_code`, which is `BAD_REQUEST` for these and for
//! genuine errors alike (docs/DATABRICKS-WIRE.md §6.5; the evidence for each class is in
//! docs/databricks-governed-objects.md).

use publish_source::SourceError;

/// The error class a failed statement's message opens with: `[CLASS.SUBCLASS] text SQLSTATE:
/// …` gives `CLASS.SUBCLASS` (Databricks' "Error handling" page; the first bracketed token of
/// upper-case letters, digits, `_` and `.`).
pub(crate) fn error_class(message: &str) -> Option<&str> {
    let mut rest = message;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let token = &after[..close];
        if !token.is_empty()
            && token.starts_with(|c: char| c.is_ascii_uppercase())
            && token
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.')
        {
            return Some(token);
        }
        rest = after;
    }
    None
}

/// The documented refusals, by error class (a class alone matches every subclass of it), and
/// what each says about the object.
const REFUSALS: &[(&str, &str)] = &[
    (
        "ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED",
        "it has row filters or column masks",
    ),
    (
        "ROW_LEVEL_SECURITY_FEATURE_NOT_SUPPORTED.TIME_TRAVEL",
        "it has a row filter",
    ),
    (
        "COLUMN_MASKS_FEATURE_NOT_SUPPORTED.TIME_TRAVEL",
        "it has column masks",
    ),
    (
        "FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM",
        "it has per-table row filters or column masks",
    ),
    (
        "FGAC_TIME_TRAVEL_NOT_SUPPORTED.NOT_UC_MANAGED_TABLE",
        "it is governed by fine-grained access control and is not a Unity Catalog managed table",
    ),
    (
        "FGAC_TIME_TRAVEL_NOT_SUPPORTED.NOT_CATALOG_OWNED",
        "it is governed by fine-grained access control without catalog commits",
    ),
    (
        "FGAC_TIME_TRAVEL_NOT_SUPPORTED.DEDICATED_COMPUTE",
        "it is governed by fine-grained access control and the compute is dedicated",
    ),
    (
        "FGAC_TIME_TRAVEL_NOT_SUPPORTED",
        "it is governed by fine-grained access control",
    ),
    (
        "FGAC_TIME_TRAVEL_SCHEMA_MISMATCH",
        "it is governed by fine-grained access control and its schema differs at that version",
    ),
    ("EXPECT_TABLE_NOT_VIEW", "it is a view"),
    ("DELTA_CANNOT_DESCRIBE_VIEW_HISTORY", "it is a view"),
    ("DELTA_OPERATION_ON_VIEW_NOT_ALLOWED", "it is a view"),
    ("DELTA_UNSUPPORTED_TIME_TRAVEL_VIEWS", "it is a view"),
    ("UNSUPPORTED_FEATURE.TIME_TRAVEL", "it is a view"),
    ("DELTA_ONLY_OPERATION", "it is not a Delta table"),
    ("DELTA_TABLE_ONLY_OPERATION", "it is not a Delta table"),
    ("DELTA_MISSING_DELTA_TABLE", "it is not a Delta table"),
];

/// The statement that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pinning {
    /// `DESCRIBE HISTORY`: the latest version could not be read.
    History,
    /// `SELECT … VERSION AS OF`: time travel was refused.
    TimeTravel,
}

/// Why `error` (a failed pinning statement) means the table cannot be pinned: the sentence the
/// package record keeps; `None` for every other failure, which stays a failure.
pub(crate) fn refusal(error: &SourceError, pinning: Pinning) -> Option<String> {
    let SourceError::Statement {
        error_code,
        message,
        ..
    } = error
    else {
        return None;
    };
    let statement = match pinning {
        Pinning::History => "DESCRIBE HISTORY",
        Pinning::TimeTravel => "time travel (VERSION AS OF)",
    };
    if let Some(class) = error_class(message)
        && let Some((_, why)) = REFUSALS.iter().find(|(known, _)| {
            class == *known
                || class
                    .strip_prefix(known)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    {
        return Some(format!(
            "Databricks refused {statement} because {why} [{class}]"
        ));
    }
    // No right to read the history, where reading the table itself is allowed: the SELECT
    // that follows says whether it is.
    (pinning == Pinning::History && error_code == "PERMISSION_DENIED").then(|| {
        format!("Databricks refused {statement}: no right to read the table's history [PERMISSION_DENIED]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: &str, message: &str) -> SourceError {
        SourceError::Statement {
            error_code: code.into(),
            message: message.into(),
            sql_state: Some("0A000".into()),
        }
    }

    #[test]
    fn classes_are_read_from_the_head_of_the_message() {
        let cases = [
            (
                "[FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM] Cannot time travel… SQLSTATE: 0A000",
                Some("FGAC_TIME_TRAVEL_NOT_SUPPORTED.PER_TABLE_RLS_CM"),
            ),
            (
                "org.apache.spark.sql.AnalysisException: [DELTA_ONLY_OPERATION] DESCRIBE HISTORY …",
                Some("DELTA_ONLY_OPERATION"),
            ),
            (
                "[not a class] [TABLE_OR_VIEW_NOT_FOUND] The table …",
                Some("TABLE_OR_VIEW_NOT_FOUND"),
            ),
            ("no class here", None),
            ("[", None),
        ];
        for (message, class) in cases {
            assert_eq!(error_class(message), class, "{message}");
        }
    }

    #[test]
    fn only_documented_refusals_unpin_a_read() {
        let cases = [
            (
                "BAD_REQUEST",
                "[FGAC_TIME_TRAVEL_NOT_SUPPORTED.NOT_CATALOG_OWNED] Cannot time travel",
                Pinning::TimeTravel,
                Some("without catalog commits"),
            ),
            (
                "BAD_REQUEST",
                "[ROW_LEVEL_SECURITY_COLUMN_MASK_FEATURE_NOT_SUPPORTED.DESCRIBE_HISTORY] Row level …",
                Pinning::History,
                Some("row filters or column masks"),
            ),
            (
                "BAD_REQUEST",
                "[EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE] 'DESCRIBE HISTORY' expects a table",
                Pinning::History,
                Some("a view"),
            ),
            (
                "BAD_REQUEST",
                "[DELTA_ONLY_OPERATION] DESCRIBE HISTORY is only supported for Delta tables.",
                Pinning::History,
                Some("not a Delta table"),
            ),
            (
                "PERMISSION_DENIED",
                "User does not have SELECT",
                Pinning::History,
                Some("no right"),
            ),
            // Real errors stay errors, whatever their error_code.
            (
                "BAD_REQUEST",
                "[TABLE_OR_VIEW_NOT_FOUND] The table or view cannot be found",
                Pinning::History,
                None,
            ),
            (
                "BAD_REQUEST",
                "[PARSE_SYNTAX_ERROR] Syntax error",
                Pinning::TimeTravel,
                None,
            ),
            (
                "BAD_REQUEST",
                "[FGAC_TIME_TRAVEL_NOT_SUPPORTEDX] lookalike",
                Pinning::TimeTravel,
                None,
            ),
            ("PERMISSION_DENIED", "no right", Pinning::TimeTravel, None),
            (
                "INTERNAL_ERROR",
                "[DELTA_ONLY_OPERATION] …",
                Pinning::History,
                Some("not a Delta table"),
            ),
        ];
        for (code, message, pinning, expected) in cases {
            let got = refusal(&failed(code, message), pinning);
            match expected {
                Some(part) => assert!(
                    got.as_deref().is_some_and(|r| r.contains(part)),
                    "{message}: {got:?}"
                ),
                None => assert_eq!(got, None, "{message}"),
            }
        }
        assert_eq!(refusal(&SourceError::protocol("x"), Pinning::History), None);
    }
}
