//! What the engine tells telemetry: the observation events of a
//! connection's life (a request started, was answered, finished; a
//! WebSocket session opened, carried messages, closed). The engine calls an
//! [`Observer`] at these points and keeps the per-request value it returns
//! (a span) until the request is over, so spans, access logs, trace-context
//! extraction and `traceresponse` are produced in one place whatever
//! transport carries the bytes.

use crate::app::Request;

/// A request the engine is about to hand to the application.
#[derive(Debug)]
pub struct RequestStart<'r, 'a> {
    /// The parsed request; the observer reads the headers it cares about
    /// (`traceparent`, `tracestate`, `user-agent`) only if it records them.
    pub request: &'r Request<'a>,
    /// The route the handler named for it (`""` for a protocol refusal).
    pub route: &'static str,
    /// A graceful drain is under way.
    pub draining: bool,
}

/// A refusal before any application code ran (a malformed request, a head
/// timeout): a request too, without a method or a route.
#[derive(Debug)]
pub struct Refusal {
    pub peer: std::net::SocketAddr,
    pub local: std::net::SocketAddr,
    pub draining: bool,
}

/// The application answered: what the access log says.
#[derive(Debug)]
pub struct Answered<'r, 'a> {
    pub request: &'r Request<'a>,
    pub status: u16,
    /// Body bytes when known up front (0 for streams).
    pub bytes: u64,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub status: u16,
    /// Low-cardinality reason when it did not end normally
    /// (`client_closed`, `shutdown_forced`, an `HttpError` kind).
    pub error: Option<&'static str>,
}

/// A bound the peer ran into: what `glasshouse_limit_refusals_total`
/// counts, by its `limit` label. Each costs the peer its request or its
/// connection, never the server memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The head or a body's next bytes did not arrive in time (408).
    RequestTimeout,
    /// The head or its field count over the limit (431).
    HeadersTooLarge,
    /// The request-target over the limit (414).
    UriTooLong,
    /// The declared or decoded body over `--max-body` (413).
    BodyTooLarge,
    /// The peer read none of our output for `--send-timeout`: closed.
    SendTimeout,
    /// A WebSocket message, reassembled or inflated, over its limit (1009).
    WsMessageTooBig,
    /// A WebSocket peer that does not read its messages (1008).
    WsOutputFull,
    /// The peer kept sending after our final answer, past
    /// `connection::MAX_LINGER_INPUT`: closed without lingering longer.
    LingerInput,
    /// A client address over `--max-connections-per-client` (429).
    ConnectionsPerClient,
}

impl Limit {
    pub const ALL: [Limit; 9] = [
        Limit::RequestTimeout,
        Limit::HeadersTooLarge,
        Limit::UriTooLong,
        Limit::BodyTooLarge,
        Limit::SendTimeout,
        Limit::WsMessageTooBig,
        Limit::WsOutputFull,
        Limit::LingerInput,
        Limit::ConnectionsPerClient,
    ];

    /// The `limit` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::RequestTimeout => "request_timeout",
            Limit::HeadersTooLarge => "headers_too_large",
            Limit::UriTooLong => "uri_too_long",
            Limit::BodyTooLarge => "body_too_large",
            Limit::SendTimeout => "send_timeout",
            Limit::WsMessageTooBig => "ws_message_too_big",
            Limit::WsOutputFull => "ws_output_full",
            Limit::LingerInput => "linger_input",
            Limit::ConnectionsPerClient => "connections_per_client",
        }
    }

    /// The limit behind a protocol refusal, if it was one.
    pub fn of(e: crate::http::error::HttpError) -> Option<Limit> {
        use crate::http::error::HttpError;
        match e {
            HttpError::RequestTimeout => Some(Limit::RequestTimeout),
            HttpError::HeadersTooLarge => Some(Limit::HeadersTooLarge),
            HttpError::UriTooLong => Some(Limit::UriTooLong),
            HttpError::PayloadTooLarge => Some(Limit::BodyTooLarge),
            _ => None,
        }
    }
}

/// The telemetry side of the engine. One observer serves every connection
/// of a driver (a worker thread, a process); the engine keeps the
/// [`Observer::Span`] of each request it is serving.
pub trait Observer {
    /// Per-request state: a span, its start time, its labels.
    type Span;
    /// Per-WebSocket-session state.
    type WsSpan;

    /// A request is about to reach the handler.
    fn request_started(&mut self, ev: &RequestStart<'_, '_>) -> Self::Span;
    /// A protocol refusal is about to be sent.
    fn request_refused(&mut self, ev: &Refusal) -> Self::Span;
    /// Runs `f` (the handler) with the request's span current on this
    /// thread, so that log lines written inside carry its trace id.
    fn in_span<R>(&mut self, span: &Self::Span, f: impl FnOnce() -> R) -> R;
    /// The handler answered (the access log line, inside the span).
    fn answered(&mut self, span: &Self::Span, ev: &Answered<'_, '_>);
    /// The `traceresponse` header value for the answer, if any.
    fn traceresponse(&self, span: &Self::Span) -> Option<String>;
    /// The request was in flight when a graceful drain began.
    fn mark_draining(&mut self, span: &mut Self::Span);
    /// The request is over: its answer was handed to the transport in full,
    /// or the connection ended first.
    fn request_finished(&mut self, span: Self::Span, ev: Finished);

    /// The upgrade request's answer was a `101`: a session starts.
    fn ws_opened(&mut self, request: &Self::Span, route: &'static str) -> Self::WsSpan;
    /// Data messages since the last call.
    fn ws_messages(&mut self, ws: &mut Self::WsSpan, received: u64, sent: u64);
    /// The session ended; `code` is the close code received, else sent.
    fn ws_closed(&mut self, ws: Self::WsSpan, code: Option<u16>);
    /// The peer ran into a bound (counted; the refusal itself is in the
    /// request's span or the session's close code).
    fn limit_refused(&mut self, limit: Limit);
}

/// An observer that records nothing: for tests, fuzzing and benchmarks of
/// the engine alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unobserved;

impl Observer for Unobserved {
    type Span = ();
    type WsSpan = ();

    fn request_started(&mut self, _: &RequestStart<'_, '_>) {}
    fn request_refused(&mut self, _: &Refusal) {}
    fn in_span<R>(&mut self, _: &(), f: impl FnOnce() -> R) -> R {
        f()
    }
    fn answered(&mut self, _: &(), _: &Answered<'_, '_>) {}
    fn traceresponse(&self, _: &()) -> Option<String> {
        None
    }
    fn mark_draining(&mut self, _: &mut ()) {}
    fn request_finished(&mut self, _: (), _: Finished) {}
    fn ws_opened(&mut self, _: &(), _: &'static str) {}
    fn ws_messages(&mut self, _: &mut (), _: u64, _: u64) {}
    fn ws_closed(&mut self, _: (), _: Option<u16>) {}
    fn limit_refused(&mut self, _: Limit) {}
}
