//! `GET /metrics` in the Prometheus (OpenMetrics) text format: requests by route and status,
//! operation durations, operations in flight (read off the admission semaphore, the one count
//! of running operations), the rows and bytes moved, and the source's retries by cause.
//!
//! Labels never carry a project name, a path or a secret: routes are the router's templates and
//! operations are `package`, `publish` or `validate`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use publish_source::RetryCounts;
use publish_workflow::Workflow;
use tokio::sync::Semaphore;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    outcome: String,
}

/// The service's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Reads the workflow's totals and the admission semaphore at each scrape.
struct Totals {
    workflow: Arc<Workflow>,
    operations: Arc<Semaphore>,
    max_operations: usize,
    retries: RetryCounts,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: String,
}

impl std::fmt::Debug for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totals")
    }
}

impl Collector for Totals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = self.workflow.totals();
        for (name, help, value) in [
            (
                "publish_rows_packaged",
                "Rows written into staging by packages",
                t.rows_packaged,
            ),
            (
                "publish_bytes_packaged",
                "Bytes of Arrow data packaged",
                t.bytes_packaged,
            ),
            (
                "publish_bytes_published",
                "Bytes of the files publish answers listed",
                t.bytes_published,
            ),
            (
                "publish_tables_loaded",
                "Tables committed into the PostgreSQL destination by packages",
                t.tables_loaded,
            ),
            (
                "publish_tables_registered",
                "Tables publish answered as registered in Opal (a retried publish counts them again)",
                t.tables_registered,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let mut family = encoder.encode_descriptor(
            "publish_source_retries",
            "Calls to the source tried again, by cause",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (cause, count) in self.retries.snapshot() {
            let labels = CauseLabels {
                cause: cause.as_str().to_owned(),
            };
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        let running = self
            .max_operations
            .saturating_sub(self.operations.available_permits()) as i64;
        let gauge = ConstGauge::new(running);
        let metric = encoder.encode_descriptor(
            "publish_operations_in_flight",
            "Package, publish and validate operations running (each holds one of \
             PUBLISH_MAX_CONCURRENT_OPERATIONS permits)",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

impl Metrics {
    /// Registers every metric; `workflow` and `operations` are read at each scrape.
    pub(crate) fn new(
        workflow: Arc<Workflow>,
        operations: Arc<Semaphore>,
        max_operations: usize,
        retries: RetryCounts,
    ) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "publish_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let durations = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 50 ms to ~7 h.
            Histogram::new(exponential_buckets(0.05, 2.0, 19))
        });
        registry.register(
            "publish_operation_duration_seconds",
            "How long package, publish and validate took, by outcome",
            durations.clone(),
        );
        registry.register_collector(Box::new(Totals {
            workflow,
            operations,
            max_operations,
            retries,
        }));
        Self {
            registry,
            requests,
            durations,
        }
    }

    /// Records one finished operation.
    pub(crate) fn finished(&self, operation: &str, outcome: &str, took: Duration) {
        self.durations
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Middleware: counts every answer by route template (never the raw path), method and status.
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            crate::error::AppError::internal(format!("encoding metrics: {e}")).into_response()
        }
    }
}
