//! The engine's observer: where telemetry reads requests, in one place for
//! every transport. Each request the connection engine serves becomes a
//! span (a child of an incoming `traceparent`), a `traceresponse` header,
//! an access-log line inside that span, a point in the duration histogram
//! and a change of the active-requests gauge; each WebSocket session a
//! span of its own with message counts. Headers are read only when
//! something records them (tracing on, access log on).

use std::sync::Arc;
use std::time::Instant;

use super::logging::{access_log, access_log_enabled, AccessLogEntry};
use super::metrics::{method_label, WorkerMetrics, WsDirection};
use super::trace::{tracing_enabled, RequestSpan, RequestSpanInfo, WsSpan};
use crate::engine::observe::{Answered, Finished, Limit, Observer, Refusal, RequestStart};
use crate::net::tcp::Facts;
use crate::net::Millis;

/// One driver's observer (a worker thread's, a process's): it writes into
/// that driver's metric shard, so recording takes no shared lock.
#[derive(Debug)]
pub struct HttpObserver {
    metrics: Arc<WorkerMetrics>,
    /// The userland TCP connection being driven, when the transport is
    /// glasshouse's own stack: its requests' spans get a `tcp` event.
    tcp: Option<TcpUnder>,
}

/// The userland TCP connection under the engine being driven.
#[derive(Debug, Clone, Copy)]
struct TcpUnder {
    facts: Facts,
    /// The stack's clock when `facts` was read, so that the times of its
    /// state changes can be placed on the span's clock.
    now_ms: Millis,
    /// Its state changes numbered below this are on earlier spans.
    reported: u32,
}

impl HttpObserver {
    pub fn new(metrics: Arc<WorkerMetrics>) -> HttpObserver {
        HttpObserver { metrics, tcp: None }
    }

    /// Set by the user stack's driver before it runs a connection's engine:
    /// the TCP figures the spans of that connection's requests record, as
    /// of the stack's clock `now_ms`, and how many of its state changes
    /// earlier spans have already shown. Socket transports never set it.
    pub fn set_tcp(&mut self, facts: Option<Facts>, now_ms: Millis, reported: u32) {
        self.tcp = facts.map(|facts| TcpUnder {
            facts,
            now_ms,
            reported,
        });
    }

    /// Clears what [`HttpObserver::set_tcp`] set and says how many state
    /// changes the connection's spans have shown now, for the next
    /// `set_tcp`.
    pub fn take_tcp(&mut self) -> Option<u32> {
        self.tcp.take().map(|t| t.reported)
    }

    /// The shard, for what the transport itself counts (bytes sent,
    /// connections).
    pub fn metrics(&self) -> &Arc<WorkerMetrics> {
        &self.metrics
    }
}

/// What telemetry keeps for a request while it is served.
#[derive(Debug)]
pub struct ObservedRequest {
    span: RequestSpan,
    method: &'static str,
    route: &'static str,
    started: Instant,
    /// The TCP under it when it started (user stack only).
    tcp: Option<Facts>,
}

impl Observer for HttpObserver {
    type Span = ObservedRequest;
    type WsSpan = WsSpan;

    fn request_started(&mut self, ev: &RequestStart<'_, '_>) -> ObservedRequest {
        let req = ev.request;
        let traced = tracing_enabled();
        let span = RequestSpan::start(&RequestSpanInfo {
            method: req.method,
            route: ev.route,
            path: req.path,
            version: req.version.as_str(),
            peer: req.peer,
            local: req.local,
            user_agent: traced.then(|| req.header_str("user-agent")).flatten(),
            traceparent: traced.then(|| req.header_str("traceparent")).flatten(),
            tracestate: traced.then(|| req.header_str("tracestate")).flatten(),
            draining: ev.draining,
        });
        span.set_client(super::client::client_of(req));
        self.metrics.request_started();
        ObservedRequest {
            span,
            method: method_label(req.method),
            route: ev.route,
            started: Instant::now(),
            tcp: self.tcp.map(|t| t.facts),
        }
    }

    fn request_refused(&mut self, ev: &Refusal) -> ObservedRequest {
        let span = RequestSpan::start(&RequestSpanInfo {
            method: "",
            route: "",
            path: "",
            version: "1.1",
            peer: ev.peer,
            local: ev.local,
            user_agent: None,
            traceparent: None,
            tracestate: None,
            draining: ev.draining,
        });
        self.metrics.request_started();
        ObservedRequest {
            span,
            method: "_OTHER",
            route: "",
            started: Instant::now(),
            tcp: self.tcp.map(|t| t.facts),
        }
    }

    fn in_span<R>(&mut self, span: &ObservedRequest, f: impl FnOnce() -> R) -> R {
        // Log lines written while the handler runs carry the trace id.
        let _guard = span.span.enter();
        f()
    }

    fn answered(&mut self, span: &ObservedRequest, ev: &Answered<'_, '_>) {
        if !access_log_enabled() {
            return;
        }
        let req = ev.request;
        // Written when the answer is known: its status and size, not yet
        // its time on the wire.
        let _guard = span.span.enter();
        access_log(&AccessLogEntry {
            method: req.method,
            path: req.path,
            version: req.version.as_str(),
            status: ev.status,
            bytes: ev.bytes,
            duration: span.started.elapsed(),
            peer: req.peer,
            client: super::client::client_of(req),
            user_agent: req.header_str("user-agent"),
        });
    }

    fn traceresponse(&self, span: &ObservedRequest) -> Option<String> {
        span.span.traceresponse()
    }

    fn mark_draining(&mut self, span: &mut ObservedRequest) {
        span.span.mark_draining();
    }

    fn request_finished(&mut self, span: ObservedRequest, ev: Finished) {
        let secs = span.started.elapsed().as_secs_f64();
        self.metrics
            .request_finished(span.method, span.route, ev.status, secs);
        if let Some(t) = self.tcp.as_mut() {
            // A connection's first request shows its handshake too: every
            // change since the last span that showed any.
            span.span.tcp(
                span.tcp,
                t.facts,
                t.facts.transitions.since(t.reported),
                t.now_ms,
            );
            t.reported = t.facts.transitions.total();
        }
        span.span.finish(ev.status, ev.error);
    }

    fn ws_opened(&mut self, request: &ObservedRequest, route: &'static str) -> WsSpan {
        self.metrics.websocket_opened();
        WsSpan::start(&request.span, route)
    }

    fn ws_messages(&mut self, ws: &mut WsSpan, received: u64, sent: u64) {
        for (n, dir) in [(received, WsDirection::Received), (sent, WsDirection::Sent)] {
            for _ in 0..n {
                self.metrics.ws_message(dir);
                ws.message(dir);
            }
        }
    }

    fn ws_closed(&mut self, ws: WsSpan, code: Option<u16>) {
        ws.finish(code);
        self.metrics.websocket_closed();
    }

    fn limit_refused(&mut self, limit: Limit) {
        self.metrics.limit_refused(limit);
    }
}
