//! The CSV sink.

use publish_types::OutputFormat;

crate::conformance_tests!(OutputFormat::Csv);
