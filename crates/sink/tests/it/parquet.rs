//! The Parquet sink.

use publish_sink::OutputFormat;

crate::conformance_tests!(OutputFormat::Parquet);
