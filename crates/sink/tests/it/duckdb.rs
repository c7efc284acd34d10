//! The DuckDB sink.

use publish_sink::OutputFormat;

crate::conformance_tests!(OutputFormat::Duckdb);
