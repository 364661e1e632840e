//! The trace and the log pipeline, set up by one piece of code: an OTLP/HTTP
//! exporter on our blocking client, wrapped to count what failed exports
//! lose ([`Counting`]), under the SDK's batch processor (its own thread),
//! behind the gate that bounds what waits ([`Gated`]), in a provider with
//! the process's resource. The two signals differ only in the SDK types
//! they use, which [`Batched`] names; metrics are set up apart (`mod.rs`)
//! because their exporter reads the shards itself.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use super::config::TelemetryConfig;
use super::export::{Counting, Gated, Pending};
use super::http_client::BlockingHttpClient;

/// What every batched pipeline of one process shares.
pub(crate) struct Shared<'a> {
    pub cfg: &'a TelemetryConfig,
    pub client: BlockingHttpClient,
    pub headers: HashMap<String, String>,
    pub resource: Resource,
}

/// The SDK types of one batched signal.
pub(crate) trait Batched {
    /// The signal's name in error messages.
    const NAME: &'static str;
    type ExporterBuilder: WithExportConfig + WithHttpConfig;
    type Exporter;
    type Batch;
    type Provider;

    fn exporter_builder() -> Self::ExporterBuilder;
    fn build_exporter(b: Self::ExporterBuilder) -> Result<Self::Exporter, ExporterBuildError>;
    /// The SDK's batch processor over `exporter`, sized by `OTEL_BSP_*`
    /// (for log records too: one set of knobs).
    fn batch(exporter: Counting<Self::Exporter>, cfg: &TelemetryConfig) -> Self::Batch;
    fn provider(processor: Gated<Self::Batch>, shared: &Shared<'_>) -> Self::Provider;
    /// Makes the provider the one this module's API records into.
    fn install(provider: &Self::Provider);
}

/// Builds and installs the pipeline of signal `B` exporting to `url`.
pub(crate) fn build<B: Batched>(url: &str, shared: &Shared<'_>) -> Result<B::Provider, String> {
    let cfg = shared.cfg;
    let builder = B::exporter_builder()
        .with_http_client(shared.client.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(cfg.export_timeout)
        .with_headers(shared.headers.clone());
    let exporter = B::build_exporter(builder).map_err(|e| super::build_error(B::NAME, e))?;
    let pending = Arc::new(Pending::default());
    let counting = Counting {
        inner: exporter,
        pending: Arc::clone(&pending),
    };
    let gated = Gated {
        inner: B::batch(counting, cfg),
        pending,
        cap: cfg.max_queue,
    };
    let provider = B::provider(gated, shared);
    B::install(&provider);
    Ok(provider)
}

/// Spans: sampled by `OTEL_TRACES_SAMPLER`.
pub(crate) struct Traces;

impl Batched for Traces {
    const NAME: &'static str = "traces";
    type ExporterBuilder =
        opentelemetry_otlp::SpanExporterBuilder<opentelemetry_otlp::HttpExporterBuilderSet>;
    type Exporter = opentelemetry_otlp::SpanExporter;
    type Batch = BatchSpanProcessor;
    type Provider = SdkTracerProvider;

    fn exporter_builder() -> Self::ExporterBuilder {
        opentelemetry_otlp::SpanExporter::builder().with_http()
    }

    fn build_exporter(b: Self::ExporterBuilder) -> Result<Self::Exporter, ExporterBuildError> {
        b.build()
    }

    fn batch(exporter: Counting<Self::Exporter>, cfg: &TelemetryConfig) -> BatchSpanProcessor {
        BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                opentelemetry_sdk::trace::BatchConfigBuilder::default()
                    .with_max_queue_size(cfg.max_queue)
                    .with_scheduled_delay(cfg.batch_delay)
                    .build(),
            )
            .build()
    }

    fn provider(processor: Gated<BatchSpanProcessor>, shared: &Shared<'_>) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(shared.cfg.sampler.sampler())
            .with_resource(shared.resource.clone())
            .build()
    }

    fn install(provider: &SdkTracerProvider) {
        super::trace::install(provider);
    }
}

/// Log records: what the `tracing` events become over OTLP.
pub(crate) struct Logs;

impl Batched for Logs {
    const NAME: &'static str = "logs";
    type ExporterBuilder =
        opentelemetry_otlp::LogExporterBuilder<opentelemetry_otlp::HttpExporterBuilderSet>;
    type Exporter = opentelemetry_otlp::LogExporter;
    type Batch = BatchLogProcessor;
    type Provider = SdkLoggerProvider;

    fn exporter_builder() -> Self::ExporterBuilder {
        opentelemetry_otlp::LogExporter::builder().with_http()
    }

    fn build_exporter(b: Self::ExporterBuilder) -> Result<Self::Exporter, ExporterBuildError> {
        b.build()
    }

    fn batch(exporter: Counting<Self::Exporter>, cfg: &TelemetryConfig) -> BatchLogProcessor {
        BatchLogProcessor::builder(exporter)
            .with_batch_config(
                opentelemetry_sdk::logs::BatchConfigBuilder::default()
                    .with_max_queue_size(cfg.max_queue)
                    .with_scheduled_delay(cfg.batch_delay)
                    .build(),
            )
            .build()
    }

    fn provider(processor: Gated<BatchLogProcessor>, shared: &Shared<'_>) -> SdkLoggerProvider {
        SdkLoggerProvider::builder()
            .with_log_processor(processor)
            .with_resource(shared.resource.clone())
            .build()
    }

    fn install(provider: &SdkLoggerProvider) {
        super::logging::install_otlp(provider);
    }
}
