//! Spans the server records: one server span per HTTP request
//! ([`RequestSpan`]), one per WebSocket session ([`WsSpan`]) and one for a
//! graceful stop ([`ShutdownSpan`]). Request and WebSocket spans are made
//! with the OpenTelemetry API directly (no `tracing` bridge: several times
//! cheaper, see docs/telemetry.md): when tracing is off (no endpoint)
//! starting one costs a branch; when the sampler drops it, only the
//! attributes the sampler may look at are built. The shutdown span is a
//! `tracing` span like the other lifecycle spans (`tracing_spans.rs`).
//!
//! Architecture invariant: nothing here blocks or performs I/O; finished
//! spans go to the batch processor's bounded queue and its own thread.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, ContextGuard, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::metrics::{method_label, FastBuild, WsDirection};
use super::propagation::{format_traceparent, remote_parent};

/// The tracer, set once by `Telemetry::init` when traces are exported.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Installs the tracer used by every span of this module. Later calls are
/// ignored (returns false): the first telemetry setup wins.
pub(crate) fn install(provider: &SdkTracerProvider) -> bool {
    let tracer = provider.tracer_with_scope(super::scope());
    let first = TRACER.set(tracer.clone()).is_ok();
    if first {
        super::tracing_spans::install(tracer);
    }
    first
}

#[inline]
fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Whether spans are recorded at all (an endpoint for traces was set).
pub fn tracing_enabled() -> bool {
    TRACER.get().is_some()
}

thread_local! {
    /// Span names per (method label, route): built once per pair and kept,
    /// so a request span's name costs no allocation. Both parts come from
    /// fixed sets, so this stays small.
    static NAMES: RefCell<HashMap<(usize, usize, usize), &'static str, FastBuild>> =
        RefCell::new(HashMap::default());
}

fn span_name(method: &'static str, route: &'static str) -> Cow<'static, str> {
    // Semantic conventions: unknown methods are named `HTTP`.
    let shown = if method == "_OTHER" { "HTTP" } else { method };
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        let name = names
            .entry((
                shown.as_ptr() as usize,
                route.as_ptr() as usize,
                route.len(),
            ))
            .or_insert_with(|| Box::leak(format!("{shown} {route}").into_boxed_str()));
        Cow::Borrowed(*name)
    })
}

/// What the protocol layer knows about a request when its span starts.
#[derive(Debug)]
pub struct RequestSpanInfo<'a> {
    pub method: &'a str,
    pub route: &'static str,
    pub path: &'a str,
    pub version: &'static str,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub user_agent: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
    /// The request was in flight when a graceful drain began.
    pub draining: bool,
}

/// Makes a span current on this thread while it lives: log lines carry its
/// `trace_id`/`span_id`, OTLP log records its trace context, and spans
/// started meanwhile become its children. Drop it before returning to the
/// event loop. Not `Send`: it belongs to the thread that entered.
#[must_use = "the span is current only while the guard lives"]
pub struct SpanGuard {
    /// The attached context of a direct SDK span.
    _context: Option<ContextGuard>,
    /// An entered `tracing` span (its layer attaches the context itself).
    _entered: Option<tracing::span::EnteredSpan>,
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entered = self._context.is_some() || self._entered.is_some();
        f.debug_struct("SpanGuard")
            .field("entered", &entered)
            .finish()
    }
}

fn enter(cx: &Option<Context>) -> SpanGuard {
    SpanGuard {
        _context: cx.as_ref().map(|cx| cx.clone().attach()),
        _entered: None,
    }
}

/// An open request span; finishing it records status and duration.
#[derive(Debug, Default)]
pub struct RequestSpan {
    /// A context holding the span; `None` when tracing is off.
    cx: Option<Context>,
    /// The sampler kept it: attributes and the end are worth recording.
    recording: bool,
}

impl RequestSpan {
    /// Starts a span, or nothing when tracing is off. A valid `traceparent`
    /// makes it a child of the caller's span.
    pub fn start(info: &RequestSpanInfo<'_>) -> RequestSpan {
        let Some(tracer) = tracer() else {
            return RequestSpan::default();
        };
        let method = method_label(info.method);
        let parent = match remote_parent(info.traceparent, info.tracestate) {
            Some(sc) => Context::new().with_remote_span_context(sc),
            None => Context::new(),
        };
        // The samplers we offer (always, ratio, parent-based) decide on the
        // trace id alone, so attributes are added only to spans they keep:
        // an unsampled request allocates none of them.
        let mut span = tracer
            .span_builder(span_name(method, info.route))
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &parent);
        let recording = span.is_recording();
        if recording {
            span.set_attributes([
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.route", info.route),
                KeyValue::new("url.path", info.path.to_string()),
                KeyValue::new("url.scheme", "http"),
            ]);
            if method == "_OTHER" {
                span.set_attribute(KeyValue::new(
                    "http.request.method_original",
                    info.method.to_string(),
                ));
            }
            span.set_attribute(KeyValue::new(
                "network.peer.address",
                info.peer.ip().to_string(),
            ));
            span.set_attribute(KeyValue::new(
                "network.peer.port",
                i64::from(info.peer.port()),
            ));
            span.set_attribute(KeyValue::new("server.address", info.local.ip().to_string()));
            span.set_attribute(KeyValue::new("server.port", i64::from(info.local.port())));
            span.set_attribute(KeyValue::new("network.protocol.version", info.version));
            if let Some(ua) = info.user_agent {
                span.set_attribute(KeyValue::new("user_agent.original", ua.to_string()));
            }
            if info.draining {
                span.set_attribute(KeyValue::new("glasshouse.shutdown.draining", true));
            }
        }
        RequestSpan {
            cx: Some(Context::new().with_span(span)),
            recording,
        }
    }

    /// Whether this span is recorded (tracing on and sampled).
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// The `traceresponse` header value for this span, if it is recorded.
    pub fn traceresponse(&self) -> Option<String> {
        let cx = self.cx.as_ref().filter(|_| self.recording)?;
        Some(format_traceparent(cx.span().span_context()))
    }

    /// `(trace_id, span_id)` in hex, if the span is recorded.
    pub fn ids(&self) -> Option<(String, String)> {
        let cx = self.cx.as_ref().filter(|_| self.recording)?;
        let span = cx.span();
        let sc = span.span_context();
        Some((sc.trace_id().to_string(), sc.span_id().to_string()))
    }

    /// Makes this span current until the guard drops (see [`SpanGuard`]).
    /// Call it around handler code and around logging about the request.
    pub fn enter(&self) -> SpanGuard {
        enter(&self.cx)
    }

    /// Records `client.address`: the peer, or the client a trusted proxy
    /// names (`--trusted-proxy`).
    pub fn set_client(&self, client: std::net::IpAddr) {
        if let Some(cx) = self.cx.as_ref().filter(|_| self.recording) {
            cx.span()
                .set_attribute(KeyValue::new("client.address", client.to_string()));
        }
    }

    /// A `tcp` event: the userland TCP connection under the request as it
    /// was when the answer was handed over (`end`), and what it
    /// retransmitted and received out of order while the request was
    /// served (since `start`).
    ///
    /// Before it, a `tcp.state` event per state change in `changes`, at
    /// the time it happened: `changes` are on the stack's clock, which read
    /// `now_ms` when `end` was taken.
    pub fn tcp<'a>(
        &self,
        start: Option<crate::net::tcp::Facts>,
        end: crate::net::tcp::Facts,
        changes: impl Iterator<Item = &'a crate::net::tcp::Transition>,
        now_ms: crate::net::Millis,
    ) {
        let Some(cx) = self.cx.as_ref().filter(|_| self.recording) else {
            return;
        };
        let wall = std::time::SystemTime::now();
        for c in changes {
            let ago = std::time::Duration::from_millis(now_ms.saturating_sub(c.at));
            cx.span().add_event_with_timestamp(
                "tcp.state",
                wall.checked_sub(ago).unwrap_or(wall),
                vec![
                    KeyValue::new("tcp.state.from", c.from.name()),
                    KeyValue::new("tcp.state.to", c.to.name()),
                ],
            );
        }
        let since = |f: fn(&crate::net::tcp::Facts) -> u64| {
            let before = start.as_ref().map_or(0, f);
            f(&end).saturating_sub(before) as i64
        };
        let mut attrs = vec![
            KeyValue::new("tcp.state", end.state.name()),
            KeyValue::new("tcp.rto_ms", end.rto_ms as i64),
            KeyValue::new("tcp.cwnd", end.cwnd as i64),
            KeyValue::new("tcp.retransmissions", since(|f| f.retransmissions)),
            KeyValue::new(
                "tcp.out_of_order_segments",
                since(|f| f.out_of_order_segments),
            ),
        ];
        if let Some(srtt) = end.srtt_ms {
            attrs.push(KeyValue::new("tcp.srtt_ms", srtt as i64));
        }
        cx.span().add_event("tcp", attrs);
    }

    /// Marks the request as in flight during a drain.
    pub fn mark_draining(&mut self) {
        if let Some(cx) = self.cx.as_ref().filter(|_| self.recording) {
            cx.span()
                .set_attribute(KeyValue::new("glasshouse.shutdown.draining", true));
        }
    }

    /// Ends the span with the final status and, for refusals (over capacity,
    /// draining, timeouts), an `error.type` such as `"draining"`. A 5xx
    /// status marks the span as an error; its `error.type` defaults to the
    /// status code.
    pub fn finish(self, status: u16, error_type: Option<&str>) {
        // A span the sampler dropped has nothing to record or export.
        let Some(cx) = self.cx.filter(|_| self.recording) else {
            return;
        };
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        let error_type = match error_type {
            Some(e) => Some(Cow::Owned(e.to_string())),
            None if status >= 500 => Some(Cow::Owned(status.to_string())),
            None => None,
        };
        if let Some(e) = error_type {
            span.set_attribute(KeyValue::new("error.type", e));
        }
        if status >= 500 {
            span.set_status(Status::error(""));
        }
        span.end();
    }
}

/// A WebSocket session span: a child of the upgrade request's span, open
/// while the session lives, with its message counts.
#[derive(Debug, Default)]
pub struct WsSpan {
    cx: Option<Context>,
    received: u64,
    sent: u64,
}

impl WsSpan {
    /// Starts the session span. Call it before finishing the upgrade
    /// request's span (this one becomes its child).
    pub fn start(request: &RequestSpan, route: &'static str) -> WsSpan {
        let (Some(tracer), Some(parent)) = (tracer(), request.cx.as_ref()) else {
            return WsSpan::default();
        };
        let span = tracer
            .span_builder(span_name("WebSocket", route))
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new("http.route", route)])
            .start_with_context(tracer, parent);
        WsSpan {
            cx: Some(Context::new().with_span(span)),
            received: 0,
            sent: 0,
        }
    }

    /// Counts one message.
    pub fn message(&mut self, dir: WsDirection) {
        match dir {
            WsDirection::Received => self.received += 1,
            WsDirection::Sent => self.sent += 1,
        }
    }

    /// Makes this span current until the guard drops.
    pub fn enter(&self) -> SpanGuard {
        enter(&self.cx)
    }

    /// Ends the session; `close_code` is the code sent or received, if any.
    pub fn finish(self, close_code: Option<u16>) {
        let Some(cx) = self.cx else { return };
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "glasshouse.websocket.messages_received",
            self.received as i64,
        ));
        span.set_attribute(KeyValue::new(
            "glasshouse.websocket.messages_sent",
            self.sent as i64,
        ));
        if let Some(code) = close_code {
            span.set_attribute(KeyValue::new(
                "glasshouse.websocket.close_code",
                i64::from(code),
            ));
        }
        span.end();
    }
}

/// The span of a graceful stop, recorded by the controller: started when
/// the signal arrives, finished when the drain ends, just before the
/// telemetry is flushed. A `tracing` span (target `glasshouse::lifecycle`)
/// that tracing-opentelemetry turns into the OTel span; without a traces
/// endpoint it goes nowhere.
#[derive(Debug)]
pub struct ShutdownSpan {
    span: tracing::Span,
}

impl Default for ShutdownSpan {
    /// A span that records nothing.
    fn default() -> ShutdownSpan {
        ShutdownSpan {
            span: tracing::Span::none(),
        }
    }
}

impl ShutdownSpan {
    /// Starts a root span named `shutdown`; `signal` is e.g. `"SIGTERM"`.
    pub fn start(signal: &str) -> ShutdownSpan {
        let span = tracing::info_span!(
            target: "glasshouse::lifecycle",
            parent: None,
            "shutdown",
            glasshouse.shutdown.signal = signal,
        );
        ShutdownSpan { span }
    }

    /// Records a step of the drain, e.g. `event("listeners_closed", &[])`
    /// or `event("progress", &[("connections_open", 3)])`.
    pub fn event(&self, name: &'static str, attributes: &[(&'static str, i64)]) {
        let attrs = attributes
            .iter()
            .map(|(k, v)| KeyValue::new(*k, *v))
            .collect();
        self.span.add_event(name, attrs);
    }

    /// Makes this span current until the guard drops.
    pub fn enter(&self) -> SpanGuard {
        SpanGuard {
            _context: None,
            _entered: Some(self.span.clone().entered()),
        }
    }

    /// Ends the span with the drain's figures: requests in flight when it
    /// began, connections that finished by themselves, connections closed
    /// at the deadline. A drain that had to force is marked as an error.
    pub fn finish(self, in_flight: u64, drained: u64, forced: u64) {
        let span = self.span;
        span.set_attribute("glasshouse.shutdown.in_flight", in_flight as i64);
        span.set_attribute("glasshouse.shutdown.drained", drained as i64);
        span.set_attribute("glasshouse.shutdown.forced", forced as i64);
        if forced > 0 {
            span.set_status(Status::error("drain deadline reached"));
        }
        // tracing-opentelemetry ends a span at its last exit, if it was
        // ever entered: make that now, not at an earlier `enter`.
        drop(span.enter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_are_built_once_per_pair() {
        let a = span_name("GET", "/api/stats");
        let b = span_name("GET", "/api/stats");
        assert_eq!(a, "GET /api/stats");
        assert!(std::ptr::eq(a.as_ptr(), b.as_ptr()));
        assert_eq!(span_name("_OTHER", "/x"), "HTTP /x");
    }

    #[test]
    fn without_a_tracer_spans_are_inert() {
        // No test of the library installs a tracer (the OTLP test does, in
        // its own process).
        let info = RequestSpanInfo {
            method: "GET",
            route: "/",
            path: "/",
            version: "1.1",
            peer: "127.0.0.1:5000".parse().expect("addr"),
            local: "127.0.0.1:8080".parse().expect("addr"),
            user_agent: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            tracestate: None,
            draining: false,
        };
        let mut span = RequestSpan::start(&info);
        assert!(!span.is_recording());
        assert_eq!(span.traceresponse(), None);
        let _g = span.enter();
        span.mark_draining();
        let ws = WsSpan::start(&span, "/ws/echo");
        ws.finish(Some(1000));
        span.finish(200, None);
        let s = ShutdownSpan::start("SIGTERM");
        s.event("listeners_closed", &[("connections_open", 1)]);
        s.finish(1, 1, 0);
    }
}
