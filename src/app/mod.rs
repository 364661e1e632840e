//! The application contract: what a handler sees and what it returns.
//!
//! In the spirit of WSGI, the server parses and frames; the application gets a
//! borrowed [`Request`] and returns a [`Response`]. Nothing here knows about
//! descriptors, epoll or threads: a [`Handler`] is created once per worker (so
//! it may keep per-worker caches without locks) and is driven by whatever
//! transport owns the connection (through the connection engine,
//! [`crate::engine`]). Architecture invariant: this module and the
//! application modules never import `sys`, `reactor` or `engine`.

use std::fs::File;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use crate::http::head::{Header, Version};

/// A parsed request, borrowed from the connection's buffers for the duration
/// of one handler call.
#[derive(Debug)]
pub struct Request<'a> {
    /// Method token exactly as sent (methods are case-sensitive).
    pub method: &'a str,
    /// Path component of the target, still percent-encoded; absolute-form
    /// targets are reduced to their path.
    pub path: &'a str,
    /// Query string without the `?`, empty when absent.
    pub query: &'a str,
    pub version: Version,
    pub headers: &'a [Header<'a>],
    /// The whole body, already de-chunked; empty for bodiless requests.
    pub body: &'a [u8],
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl<'a> Request<'a> {
    /// First header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// First header with this name, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Value of one query parameter (no percent-decoding: callers decide).
    pub fn query_param(&self, key: &str) -> Option<&'a str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Where a response body comes from.
pub enum Body {
    Empty,
    /// Bytes that live as long as the program (built-in pages, fixed JSON).
    Static(&'static [u8]),
    /// Bytes produced for this response.
    Bytes(Vec<u8>),
    /// Bytes shared with a cache (a small file kept in memory).
    Shared(std::sync::Arc<[u8]>),
    /// A region of an open file, sent with `sendfile(2)`. Shared, so a
    /// cache may keep the descriptor open across responses.
    File {
        file: std::sync::Arc<File>,
        offset: u64,
        len: u64,
    },
    /// A body produced piece by piece and sent with chunked encoding
    /// (or until close for HTTP/1.0).
    Stream(Box<dyn BodyStream>),
}

impl Body {
    /// Length when known up front; streams have none.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Static(b) => Some(b.len() as u64),
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Shared(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Stream(_) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Static(b) => write!(f, "Static({} bytes)", b.len()),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Shared(b) => write!(f, "Shared({} bytes)", b.len()),
            Body::File { offset, len, .. } => write!(f, "File({offset}+{len})"),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A pull-based body: the transport asks for the next piece when it has room.
pub trait BodyStream: Send {
    /// Next piece of the body; `None` when it is finished.
    fn next_chunk(&mut self) -> Option<Vec<u8>>;
}

/// What the application wants done with the connection after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum After {
    /// Keep the connection if the protocol allows it.
    #[default]
    KeepAlive,
    /// Close after this response.
    Close,
}

/// A response: status, extra headers and a body. `Date`, `Server`,
/// `Content-Length`/`Transfer-Encoding` and `Connection` are added by the
/// protocol layer, never by the application.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Hold the response back this long without blocking the worker
    /// (how `/api/slow` waits).
    pub delay: Option<Duration>,
    pub after: After,
    /// Set when the route takes WebSocket sessions: the engine runs the
    /// handshake on the request and answers `101` or a refusal itself.
    pub upgrade: Option<WebSocket>,
}

/// A route's offer to run a WebSocket session on this connection.
pub struct WebSocket {
    /// The session's application, used if the handshake succeeds.
    pub app: Box<dyn crate::ws::WsApp>,
    /// What the route accepts: subprotocols, origins, deflate, limits.
    pub options: std::sync::Arc<crate::ws::WsOptions>,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The contract's error body, `{"error": "..."}`: the one place it is built.
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_else(|_| b"{}".to_vec())
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
            delay: None,
            after: After::KeepAlive,
            upgrade: None,
        }
    }

    /// A JSON body with the right content type.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response::new(status, Body::Bytes(body)).header("Content-Type", "application/json")
    }

    /// The contract's error shape: `{"error": "..."}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::new(status, Body::Bytes(error_body(message)))
            .header("Content-Type", "application/json")
    }

    /// Takes WebSocket sessions on this request's connection: the engine
    /// answers the handshake (`101`, or `400`/`403`/`405`/`426`).
    pub fn websocket(
        app: Box<dyn crate::ws::WsApp>,
        options: std::sync::Arc<crate::ws::WsOptions>,
    ) -> Response {
        let mut r = Response::new(101, Body::Empty);
        r.upgrade = Some(WebSocket { app, options });
        r
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn close(mut self) -> Response {
        self.after = After::Close;
        self
    }

    pub fn delayed(mut self, by: Duration) -> Response {
        self.delay = Some(by);
        self
    }
}

/// Facts about the serving worker that a handler may use.
#[derive(Debug)]
pub struct Ctx {
    /// Index of the worker running this handler.
    pub worker: usize,
    /// True once a graceful stop has begun (`/readyz` answers 503).
    pub draining: bool,
    /// The loop's idea of "now", taken once per wake-up.
    pub now: Instant,
    /// The route pattern from [`Handler::route`].
    pub route: &'static str,
}

/// The application: one instance per worker, called for each request.
pub trait Handler {
    /// The route pattern this request will be handled by (`/api/stats`,
    /// `/*` for static files): a low-cardinality name for spans and metrics,
    /// known before the handler runs so the span can cover it.
    fn route(&self, req: &Request<'_>) -> &'static str;

    fn call(&mut self, req: &Request<'_>, ctx: &mut Ctx) -> Response;
}

/// Builds one handler per worker.
pub type HandlerFactory = std::sync::Arc<dyn Fn(usize) -> Box<dyn Handler> + Send + Sync>;
