//! Telemetry: logs, metrics and traces. This is the only module that touches
//! the OpenTelemetry SDK and the `tracing-subscriber` setup; the rest of the
//! server records through the small, allocation-free API re-exported here.

pub mod logging;
pub mod metrics;
pub mod trace;

pub use metrics::{Metrics, WorkerMetrics, WsDirection};
pub use trace::{RequestSpan, RequestSpanInfo};
