//! One connection's state between wake-ups: buffered input and output, the
//! body being sent, the request decoder, a held-back response, and where the
//! connection is in its life (waiting for a head, idle, closing).

use std::fs::File;
use std::net::SocketAddr;
use std::time::Instant;

use crate::app::{Body, BodyStream, Response};
use crate::http::encode::{self, ConnHeader, Framing};
use crate::http::{RequestDecoder, Version};
use crate::sys::socket::Stream;
use crate::telemetry::RequestSpan;

/// Where a connection is in its life; decides which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, no request yet: the head timeout runs from accept.
    Fresh,
    /// Between requests on a kept-alive connection: the idle timeout runs.
    Idle,
    /// Part of a request received: the head timeout runs.
    Reading,
    /// A request is being answered (held back, or its body being sent).
    Busy,
    /// Final response written, write side shut: discarding input until the
    /// peer closes or the linger deadline passes, so that unread input does
    /// not turn our close into a reset that destroys the response.
    Lingering,
}

/// A file region still to be sent with sendfile.
pub struct FileSend {
    pub file: std::sync::Arc<File>,
    pub offset: u64,
    pub remaining: u64,
}

/// A streamed body still being produced.
pub struct StreamSend {
    pub body: Box<dyn BodyStream>,
    /// Chunked framing (HTTP/1.1) or raw until close (HTTP/1.0).
    pub chunked: bool,
}

/// What the reactor must remember about a request until its response is
/// written: enough to frame the response and close the span and metrics.
pub struct ReqMeta {
    pub version: Version,
    pub keep_alive: bool,
    pub keep_alive_requested: bool,
    pub head: bool,
    pub method: &'static str,
    pub route: &'static str,
    pub started: Instant,
    pub span: RequestSpan,
}

/// A response held back until its timer fires (`Response::delay`).
pub struct Delayed {
    pub at: Instant,
    pub response: Response,
    pub meta: ReqMeta,
}

pub struct Conn {
    pub stream: Stream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Unconsumed input; empty (and unallocated) while idle.
    pub rbuf: Vec<u8>,
    /// Output the socket did not take yet.
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    pub file: Option<FileSend>,
    pub stream_body: Option<StreamSend>,
    pub decoder: RequestDecoder,
    pub delayed: Option<Delayed>,
    /// The request whose file or stream body is still being sent, with its
    /// status: it completes when the body has been handed to the kernel.
    pub body_meta: Option<(ReqMeta, u16)>,
    pub phase: Phase,
    /// When the current phase's timeout expires.
    pub deadline: Instant,
    /// Close once the output is flushed.
    pub close_after_write: bool,
    /// Shut the write side and drain input before closing, because the
    /// peer may still be sending (our refusal, our drain).
    pub linger: bool,
    /// Requests answered on this connection.
    pub requests: u64,
    /// The peer closed its write side.
    pub eof: bool,
    /// Set once the connection has been upgraded to a WebSocket session.
    pub ws: Option<Box<crate::ws::session::Session>>,
    /// The session timer currently scheduled, to avoid duplicates.
    pub ws_timer: Option<Instant>,
    /// The WebSocket session's span, a child of the upgrade request's.
    pub ws_span: Option<crate::telemetry::WsSpan>,
}

impl Conn {
    pub fn new(stream: Stream, peer: SocketAddr, local: SocketAddr, deadline: Instant) -> Conn {
        Conn {
            stream,
            peer,
            local,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            file: None,
            stream_body: None,
            decoder: RequestDecoder::default(),
            delayed: None,
            body_meta: None,
            phase: Phase::Fresh,
            deadline,
            close_after_write: false,
            linger: false,
            requests: 0,
            eof: false,
            ws: None,
            ws_timer: None,
            ws_span: None,
        }
    }

    /// Nothing is pending: no partial request, no response owed.
    pub fn is_idle(&self) -> bool {
        self.ws.is_none()
            && matches!(self.phase, Phase::Idle | Phase::Fresh)
            && self.rbuf.is_empty()
            && !self.has_output()
    }

    pub fn has_output(&self) -> bool {
        self.wpos < self.wbuf.len() || self.file.is_some() || self.stream_body.is_some()
    }

    /// Releases buffers an idle connection does not need, so that thousands
    /// of idle keep-alive connections cost little memory.
    pub fn shrink(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = Vec::new();
        }
        if self.wpos >= self.wbuf.len() {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
    }
}

/// What writing a response left to do.
pub struct Written {
    pub file: Option<FileSend>,
    pub stream: Option<StreamSend>,
    pub close: bool,
    pub upgrade: Option<crate::ws::Upgrade>,
}

/// Serialises a response head (and an in-memory body) into `out`.
/// `closing` forces `Connection: close` (graceful drain).
pub fn write_response(
    out: &mut Vec<u8>,
    date: &[u8],
    meta: &ReqMeta,
    resp: Response,
    closing: bool,
) -> Written {
    let Response {
        status,
        headers,
        body,
        after,
        upgrade,
        ..
    } = resp;
    let upgrading = status == 101 && upgrade.is_some();
    let streaming = matches!(body, Body::Stream(_));
    let mut close = closing || !meta.keep_alive || after == crate::app::After::Close;
    // An HTTP/1.0 stream is delimited by the close.
    if streaming && meta.version == Version::Http10 {
        close = true;
    }
    let bodiless = encode::bodiless_status(status);
    let framing = if bodiless {
        Framing::None
    } else {
        match body.len() {
            Some(n) => Framing::Length(n),
            None if meta.version == Version::Http11 => Framing::Chunked,
            None => Framing::None,
        }
    };
    let conn_header = if upgrading {
        // The handshake's headers already say `Connection: Upgrade`.
        ConnHeader::Omit
    } else if close {
        ConnHeader::Close
    } else if meta.keep_alive_requested {
        ConnHeader::KeepAlive
    } else {
        ConnHeader::Omit
    };
    let traceresponse = meta.span.traceresponse();
    let extra = traceresponse
        .as_deref()
        .map(|v| ("traceresponse", v.as_bytes()));
    encode::head(
        out,
        meta.version,
        status,
        date,
        framing,
        conn_header,
        headers.iter().map(|(n, v)| (*n, v.as_bytes())).chain(extra),
    );
    let mut written = Written {
        file: None,
        stream: None,
        close,
        upgrade: if upgrading { upgrade } else { None },
    };
    if meta.head || bodiless {
        return written;
    }
    match body {
        Body::Empty => {}
        Body::Static(b) => out.extend_from_slice(b),
        Body::Bytes(b) => out.extend_from_slice(&b),
        Body::Shared(b) => out.extend_from_slice(&b),
        Body::File { file, offset, len } => {
            if len > 0 {
                written.file = Some(FileSend {
                    file,
                    offset,
                    remaining: len,
                });
            }
        }
        Body::Stream(body) => {
            written.stream = Some(StreamSend {
                body,
                chunked: framing == Framing::Chunked,
            })
        }
    }
    written
}
