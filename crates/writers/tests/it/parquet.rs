//! The Parquet sink.

use publish_types::OutputFormat;

crate::conformance_tests!(OutputFormat::Parquet);
