//! Turning the application's [`Response`] into bytes on the wire: the head
//! the protocol owns (framing, `Connection`, `traceresponse`), an in-memory
//! body copied behind it, a file or stream body queued after it, and the
//! one JSON error shape every refusal uses.

use crate::app::{After, Body, Response};
use crate::http::encode::{self, ConnHeader, Framing};
use crate::http::{HttpError, Version};

use super::output::{self, Output};

/// What the engine remembers about a request until its answer is out:
/// enough to frame the response and to end its span.
pub(super) struct ReqMeta<S> {
    pub version: Version,
    pub keep_alive: bool,
    pub keep_alive_requested: bool,
    pub head: bool,
    pub route: &'static str,
    pub span: S,
}

/// What encoding a response left to do.
pub(super) struct Encoded {
    /// A file or stream body was queued: the request ends when it is out.
    pub body_follows: bool,
    /// The connection closes after this response.
    pub close: bool,
}

/// Encodes `resp` into `out`. `closing` forces `Connection: close` (a drain).
pub(super) fn encode<S>(
    out: &mut Output,
    date: &[u8],
    meta: &ReqMeta<S>,
    traceresponse: Option<&str>,
    resp: Response,
    closing: bool,
) -> Encoded {
    let Response {
        status,
        headers,
        body,
        after,
        ..
    } = resp;
    let streaming = matches!(body, Body::Stream(_));
    let mut close = closing || !meta.keep_alive || after == After::Close;
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
    let conn_header = if status == 101 {
        // The handshake's headers already say `Connection: Upgrade`.
        ConnHeader::Omit
    } else if close {
        ConnHeader::Close
    } else if meta.keep_alive_requested {
        ConnHeader::KeepAlive
    } else {
        ConnHeader::Omit
    };
    let extra = traceresponse.map(|v| ("traceresponse", v.as_bytes()));
    let buf = out.buf();
    encode::head(
        buf,
        meta.version,
        status,
        date,
        framing,
        conn_header,
        headers.iter().map(|(n, v)| (*n, v.as_bytes())).chain(extra),
    );
    let mut encoded = Encoded {
        body_follows: false,
        close,
    };
    if meta.head || bodiless {
        return encoded;
    }
    match body {
        Body::Empty => {}
        Body::Static(b) => buf.extend_from_slice(b),
        Body::Bytes(b) => buf.extend_from_slice(&b),
        Body::Shared(b) => buf.extend_from_slice(&b),
        Body::File { file, offset, len } => {
            if len > 0 {
                out.body = Some(output::Body::File(output::FileBody {
                    file,
                    offset,
                    remaining: len,
                }));
                encoded.body_follows = true;
            }
        }
        Body::Stream(body) => {
            out.body = Some(output::Body::Stream(output::StreamBody {
                body,
                chunked: framing == Framing::Chunked,
            }));
            encoded.body_follows = true;
        }
    }
    encoded
}

/// A protocol refusal: the status, the contract's JSON error, and
/// `Connection: close`.
pub(super) fn refusal(out: &mut Output, date: &[u8], e: HttpError) {
    let body = crate::app::error_body(e.reason());
    encode::head(
        out.buf(),
        Version::Http11,
        e.status(),
        date,
        Framing::Length(body.len() as u64),
        ConnHeader::Close,
        [("Content-Type", &b"application/json"[..])],
    );
    out.buf().extend_from_slice(&body);
}

/// The canned answer for a connection over `--max-connections-per-client`:
/// the client already holds its share of the server.
pub fn too_many_from_client() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        canned(
            "429 Too Many Requests",
            "too many connections from this client address",
        )
    })
}

/// The canned answer for a connection the transport cannot take on (over
/// `--max-connections`, out of descriptors), written before any request
/// is read. Built once by the transport.
pub fn overloaded() -> Vec<u8> {
    canned("503 Service Unavailable", "too many connections")
}

/// A refusal written before any request is read: a JSON error, the
/// connection closed, come back in a second. No Date: the answer is
/// built once, not per connection.
fn canned(status: &str, message: &str) -> Vec<u8> {
    let body = crate::app::error_body(message);
    let mut out = Vec::with_capacity(200);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\nRetry-After: 1\r\n\r\n");
    out.extend_from_slice(&body);
    out
}
