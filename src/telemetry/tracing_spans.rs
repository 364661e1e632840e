//! `tracing` spans as OpenTelemetry spans, through tracing-opentelemetry:
//! any span written with `tracing::info_span!` (start-up, a SIGHUP reload,
//! the `shutdown` span of a drain) reaches the collector, events written
//! inside it become its span events, and while it is entered log lines
//! carry its trace and span ids. This file owns that layer, its filter and
//! the tracer behind it.
//!
//! The request hot path does not go through here: its spans
//! (`trace::RequestSpan`) use the SDK directly, which costs a fraction of
//! this (figures in docs/telemetry.md). Lifecycle spans are a handful per
//! process, so convenience wins there.

use std::sync::{LazyLock, OnceLock};

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::noop::NoopTracer;
use opentelemetry::trace::{SpanBuilder, Tracer};
use opentelemetry::Context;
use opentelemetry_sdk::trace::SdkTracer;
use tracing::Subscriber;
use tracing_subscriber::filter::{Filtered, LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer as _;

/// The SDK tracer once `Telemetry::init` has one; until then (and for good
/// without a traces endpoint) spans go to a no-op tracer.
static TRACER: OnceLock<BoxedTracer> = OnceLock::new();
static NOOP: LazyLock<BoxedTracer> =
    LazyLock::new(|| BoxedTracer::new(Box::new(NoopTracer::new())));

/// Makes `tracing` spans started from now on OTel spans of `tracer`. First
/// call wins, like the rest of the telemetry setup.
pub(crate) fn install(tracer: SdkTracer) {
    let _ = TRACER.set(BoxedTracer::new(Box::new(tracer)));
}

/// The tracer handed to tracing-opentelemetry. `logging::init` builds the
/// subscriber before `Telemetry::init` knows whether traces are exported,
/// and a layer's tracer is fixed when the layer is built: this one looks
/// the real tracer up each time a span starts (a few per process).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LateTracer;

impl Tracer for LateTracer {
    type Span = BoxedSpan;

    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> BoxedSpan {
        TRACER
            .get()
            .unwrap_or(&NOOP)
            .build_with_context(builder, parent_cx)
    }
}

/// What reaches the layer: spans and events at `info` and above, whatever
/// the log filter says (a `--log-level warn` must not lose the `shutdown`
/// span); never the access log (one event per request, outside any
/// `tracing` span) nor the SDK's own events. A `Targets` filter decides per
/// callsite, once: a disabled `debug!` on a worker stays a cached "never".
fn admitted() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("glasshouse::access", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
}

/// The layer `logging::init` adds to the subscriber.
pub(crate) type SpanLayer<S> =
    Filtered<tracing_opentelemetry::OpenTelemetryLayer<S, LateTracer>, Targets, S>;

/// The tracing-opentelemetry layer with its own filter, for `logging::init`.
pub(crate) fn layer<S>() -> SpanLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(LateTracer)
        // busy/idle timings cost two clock reads per enter and say little
        // about spans that are entered once.
        .with_tracked_inactivity(false)
        .with_filter(admitted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn lifecycle_spans_pass_the_access_log_and_the_sdk_do_not() {
        let f = admitted();
        assert!(f.would_enable("glasshouse::lifecycle", &Level::INFO));
        assert!(f.would_enable("glasshouse::controller", &Level::WARN));
        assert!(!f.would_enable("glasshouse::lifecycle", &Level::DEBUG));
        assert!(!f.would_enable("glasshouse::access", &Level::INFO));
        assert!(!f.would_enable("opentelemetry_sdk", &Level::WARN));
    }
}
