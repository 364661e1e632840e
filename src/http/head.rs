//! The request head: request line and header fields (RFC 9112 §2–3, §5),
//! parsed with `httparse` and then held to our framing rules (RFC 9112 §6):
//! which body follows, whether the connection persists, what `Host` says.
//! Every ambiguity that could let two parsers disagree about where a request
//! ends is refused rather than guessed.

use super::error::HttpError;

/// A header field as received: the name keeps its case, the value its bytes.
pub type Header<'a> = httparse::Header<'a>;

/// An unused slot of header storage, for callers that lend the decoder an
/// array of them.
pub const EMPTY_HEADER: Header<'static> = httparse::EMPTY_HEADER;

/// The most header fields a request may carry (the storage lent per call).
pub const MAX_HEADERS: usize = 100;

/// HTTP version of a request. HTTP/0.9 and 2+ are refused before this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// The value for `network.protocol.version`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
}

/// Size limits; exceeding one is answered with 414, 431 or 413.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request-target (414 above it).
    pub max_target: usize,
    /// Longest head, request line included (431 above it).
    pub max_head: usize,
    /// Most header fields (431 above it).
    pub max_headers: usize,
    /// Longest body, declared or decoded (413 above it).
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_target: 8 * 1024,
            max_head: 32 * 1024,
            max_headers: 100,
            max_body: 1 << 20,
        }
    }
}

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed, validated request head borrowing from the input.
#[derive(Debug)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The request-target as sent.
    pub target: &'a str,
    /// Path of the target (absolute-form reduced to it), still encoded.
    pub path: &'a str,
    /// Query without `?`, empty when absent.
    pub query: &'a str,
    pub version: Version,
    pub headers: &'a [Header<'a>],
    pub framing: BodyFraming,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
    /// HTTP/1.0 client asked for keep-alive explicitly (must be echoed).
    pub keep_alive_requested: bool,
    pub expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` field.
    pub upgrade: bool,
    /// Bytes of the head including the final empty line.
    pub len: usize,
}

impl Head<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Comma-separated list elements of a field value, trimmed, empties skipped
/// (RFC 9110 §5.6.1).
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(trim_ows)
        .filter(|s| !s.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses a head from the start of `buf`. `Ok(None)` means more bytes are
/// needed; limits are enforced on partial input too, so a client cannot make
/// us buffer an endless request line or head.
pub fn parse<'a>(
    buf: &'a [u8],
    storage: &'a mut [Header<'a>],
    limits: &Limits,
) -> Result<Option<Head<'a>>, HttpError> {
    let mut req = httparse::Request::new(storage);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(httparse::Error::Token) if target_overflows(buf, limits) => {
            return Err(HttpError::UriTooLong)
        }
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    let len = match status {
        httparse::Status::Partial => {
            if target_overflows(buf, limits) {
                return Err(HttpError::UriTooLong);
            }
            if buf.len() > limits.max_head {
                return Err(HttpError::HeadersTooLarge);
            }
            return Ok(None);
        }
        httparse::Status::Complete(n) => n,
    };
    if len > limits.max_head {
        return Err(HttpError::HeadersTooLarge);
    }
    // httparse also ends lines at a bare LF; a proxy in front may not, and
    // that disagreement is how requests are smuggled (RFC 9112 §2.2).
    if has_bare_lf(&buf[..len]) {
        return Err(HttpError::BadRequest("bare LF in request head"));
    }
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    if target.len() > limits.max_target {
        return Err(HttpError::UriTooLong);
    }
    // The request-target is ASCII (RFC 9112 §3.2, RFC 3986): raw UTF-8
    // must be percent-encoded by the client.
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HttpError::BadRequest("invalid character in request target"));
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(HttpError::VersionNotSupported),
    };
    let headers: &'a [Header<'a>] = req.headers;
    let (path, query) = split_target(method, target)?;
    let fields = Fields::scan(headers, version)?;
    let framing = fields.framing(version)?;
    if let BodyFraming::Length(n) = framing {
        if n > limits.max_body {
            return Err(HttpError::PayloadTooLarge);
        }
    }
    let keep_alive = match version {
        Version::Http11 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    Ok(Some(Head {
        method,
        target,
        path,
        query,
        version,
        headers,
        framing,
        keep_alive,
        keep_alive_requested: version == Version::Http10 && keep_alive,
        expect_continue: fields.expect_continue,
        upgrade: fields.upgrade_token && fields.has_upgrade,
        len,
    }))
}

/// True when some line ends with LF alone instead of CRLF.
fn has_bare_lf(head: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = head[from..].iter().position(|b| *b == b'\n') {
        let at = from + i;
        if at == 0 || head[at - 1] != b'\r' {
            return true;
        }
        from = at + 1;
    }
    false
}

/// True when the request-target, complete or still arriving, is past the
/// target limit. Only the target is measured (the text between the first
/// two spaces of the request line), so that the verdict on a head does
/// not depend on where a read split it; an endless method or line is
/// bounded by `max_head` instead.
fn target_overflows(buf: &[u8], limits: &Limits) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(buf);
    let Some(space) = line.iter().position(|b| *b == b' ') else {
        return false;
    };
    let rest = &line[space + 1..];
    let target = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    target > limits.max_target
}

/// 505 for a well-formed version we do not speak, 400 for garbage.
fn version_error(buf: &[u8]) -> HttpError {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or(b"");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|b| *b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            HttpError::VersionNotSupported
        }
        Some([b'H', b'T', b'T', b'P', b'/', major]) if major.is_ascii_digit() => {
            HttpError::VersionNotSupported
        }
        _ => HttpError::BadRequest("malformed HTTP version"),
    }
}

/// Splits a request-target into path and query (RFC 9112 §3.2).
fn split_target<'a>(method: &str, target: &'a str) -> Result<(&'a str, &'a str), HttpError> {
    let path_and_query = if target.starts_with('/') {
        target
    } else if target == "*" {
        if method != "OPTIONS" {
            return Err(HttpError::BadRequest("asterisk-form is only for OPTIONS"));
        }
        target
    } else if let Some(rest) = strip_scheme(target) {
        // absolute-form: the authority ends at the first '/', '?' or end.
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        if end == 0 {
            return Err(HttpError::BadRequest(
                "absolute-form target without authority",
            ));
        }
        match &rest[end..] {
            "" => "/",
            p if p.starts_with('?') => return Ok(("/", &p[1..])),
            p => p,
        }
    } else if method == "CONNECT" {
        // authority-form: the router refuses CONNECT with 405.
        return Ok(("", ""));
    } else {
        return Err(HttpError::BadRequest("invalid request target"));
    };
    let without_fragment = path_and_query.split('#').next().unwrap_or("");
    Ok(match without_fragment.split_once('?') {
        Some((p, q)) => (p, q),
        None => (without_fragment, ""),
    })
}

fn strip_scheme(target: &str) -> Option<&str> {
    for scheme in ["http://", "https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&target[scheme.len()..]);
        }
    }
    None
}

/// What the framing-relevant fields say, gathered in one pass.
#[derive(Default)]
struct Fields {
    hosts: usize,
    content_length: Option<u64>,
    /// Transfer codings in order, across all Transfer-Encoding fields.
    te_present: bool,
    te_chunked_last: bool,
    te_chunked_count: usize,
    te_other: bool,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    has_upgrade: bool,
    expect_continue: bool,
}

impl Fields {
    fn scan(headers: &[Header<'_>], version: Version) -> Result<Fields, HttpError> {
        let mut f = Fields::default();
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("host") {
                f.hosts += 1;
                if h.value
                    .iter()
                    .any(|b| matches!(b, b' ' | b'\t' | b'/' | b'@'))
                {
                    return Err(HttpError::BadRequest("invalid Host header"));
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                // RFC 9110 §8.6: a list of identical values may be taken as one;
                // anything else is an unrecoverable framing error.
                for item in h.value.split(|b| *b == b',').map(trim_ows) {
                    let n = parse_length(item)?;
                    match f.content_length {
                        Some(prev) if prev != n => {
                            return Err(HttpError::BadRequest("conflicting Content-Length values"))
                        }
                        _ => f.content_length = Some(n),
                    }
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                f.te_present = true;
                let mut any = false;
                for coding in list_items(h.value) {
                    any = true;
                    // A coding after chunked means chunked is not last.
                    if f.te_chunked_last {
                        f.te_chunked_last = false;
                        f.te_other = true;
                    }
                    let coding = coding
                        .split(|b| *b == b';')
                        .next()
                        .map(trim_ows)
                        .unwrap_or(b"");
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        f.te_chunked_count += 1;
                        f.te_chunked_last = true;
                    } else {
                        f.te_other = true;
                    }
                }
                if !any {
                    return Err(HttpError::BadRequest("empty Transfer-Encoding"));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in list_items(h.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        f.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        f.keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        f.upgrade_token = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("upgrade") {
                f.has_upgrade = true;
            } else if name.eq_ignore_ascii_case("expect") {
                let v = trim_ows(h.value);
                if v.eq_ignore_ascii_case(b"100-continue") {
                    f.expect_continue = true;
                } else if !v.is_empty() {
                    return Err(HttpError::ExpectationFailed);
                }
            }
        }
        match (version, f.hosts) {
            (Version::Http11, 0) => return Err(HttpError::BadRequest("missing Host header")),
            (_, n) if n > 1 => return Err(HttpError::BadRequest("multiple Host headers")),
            _ => {}
        }
        Ok(f)
    }

    /// RFC 9112 §6.1 and §6.3.
    fn framing(&self, version: Version) -> Result<BodyFraming, HttpError> {
        if !self.te_present {
            return Ok(match self.content_length {
                Some(0) | None => BodyFraming::None,
                Some(n) => BodyFraming::Length(n),
            });
        }
        if self.content_length.is_some() {
            return Err(HttpError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if version == Version::Http10 {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if self.te_chunked_count > 1 {
            return Err(HttpError::BadRequest("chunked applied more than once"));
        }
        if self.te_chunked_count == 1 && !self.te_chunked_last {
            return Err(HttpError::BadRequest(
                "chunked is not the final transfer coding",
            ));
        }
        if self.te_other {
            return Err(HttpError::NotImplemented("unsupported transfer coding"));
        }
        Ok(BodyFraming::Chunked)
    }
}

/// `Content-Length = 1*DIGIT`, no sign, no spaces, no overflow.
fn parse_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}
