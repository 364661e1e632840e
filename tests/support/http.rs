//! A raw-socket HTTP/1.1 client for the tests: one-shot exchanges
//! ([`send_raw`]), a keep-alive [`Client`], and a small response parser
//! ([`parse_response`]: Content-Length, chunked, HEAD, close-delimited),
//! enough to check pipelined answers in order. Every read is bounded.
//! Connections are [`Wire`]s: TLS to a server the harness started with a
//! test certificate, plain TCP otherwise.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::wire::Wire;
use super::{find, lossy, PATIENCE};

/// `GET path` on a fresh connection with `Connection: close`; panics
/// without an answer.
pub fn get_close(addr: SocketAddr, path: &str) -> Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let raw = send_raw(addr, req.as_bytes());
    parse_response(&raw, false)
        .unwrap_or_else(|| panic!("no response to GET {path}: {:?}", lossy(&raw)))
        .0
}

/// `GET path` with `headers` on a fresh keep-alive connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    Client::try_connect(addr)?.get_with(path, headers)
}

/// Connects with generous read and write timeouts (against hangs only);
/// over TLS when `addr` is a server the harness gave a test certificate
/// (the handshake happens on first use).
pub fn connect(addr: SocketAddr) -> Wire {
    try_connect(addr).expect("connect")
}

/// [`connect`], for a test that expects a refusal at times.
pub fn try_connect(addr: SocketAddr) -> io::Result<Wire> {
    super::netns::enter_for(addr);
    let s = TcpStream::connect_timeout(&addr, PATIENCE)?;
    s.set_read_timeout(Some(PATIENCE))?;
    s.set_write_timeout(Some(PATIENCE))?;
    s.set_nodelay(true)?;
    Wire::over(s, addr)
}

/// Connects, writes `bytes`, shuts the write side, reads until the server
/// closes (or `PATIENCE` passes) and returns everything read.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    send_raw_opts(addr, bytes, true, PATIENCE).0
}

/// Like [`send_raw`]; `half_close` chooses whether to shut our write side.
/// Also says whether the server closed (true) or the timeout ended the read.
pub fn send_raw_opts(
    addr: SocketAddr,
    bytes: &[u8],
    half_close: bool,
    timeout: Duration,
) -> (Vec<u8>, bool) {
    let mut s = connect(addr);
    // The server may refuse early and close: a failed write is an answer too.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_until_close(&mut s, timeout)
}

/// Reads until EOF (or reset) or until `timeout` passes. The flag is true
/// when the server closed.
pub fn read_until_close(s: &mut Wire, timeout: Duration) -> (Vec<u8>, bool) {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (out, true), // reset: closed
        }
    }
}

/// A connection with a read buffer, for request/response exchanges.
pub struct Client {
    pub stream: Wire,
    /// Bytes read but not yet consumed (by a response or a frame).
    pub(super) buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(connect(addr))
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        try_connect(addr).map(Client::from_stream)
    }

    /// Wraps an existing stream (e.g. a clone, to peek at answers).
    pub fn from_stream(stream: Wire) -> Client {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// Sends and waits for one response (panics if none comes).
    pub fn request(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
        self.read_response()
            .unwrap_or_else(|| panic!("no response to {:?}", lossy(bytes)))
    }

    /// The local address (the server's `network.peer.*`).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    /// `GET path` on this connection (keep-alive).
    pub fn get(&mut self, path: &str) -> Response {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
    }

    /// `GET path` with extra `headers` on this connection (keep-alive); an
    /// error when the write fails or no answer comes.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_response().ok_or_else(|| {
            io::Error::new(ErrorKind::UnexpectedEof, format!("no answer to GET {path}"))
        })
    }

    /// Next response (None if the connection closed or timed out first).
    pub fn read_response(&mut self) -> Option<Response> {
        self.read_response_opts(false, PATIENCE)
    }

    /// Next response to a HEAD request (its Content-Length has no body).
    pub fn read_head_response(&mut self) -> Option<Response> {
        self.read_response_opts(true, PATIENCE)
    }

    pub fn read_response_opts(&mut self, head: bool, timeout: Duration) -> Option<Response> {
        let end = Instant::now() + timeout;
        loop {
            if let Some((r, used)) = parse_response(&self.buf, head) {
                // A body delimited by close is only complete at EOF.
                if !r.until_close {
                    self.buf.drain(..used);
                    return Some(r);
                }
            }
            if Instant::now() >= end {
                return None;
            }
            if !matches!(self.fill(end), Ok(n) if n > 0) {
                // EOF: a close-delimited body is complete now.
                let parsed = parse_response(&self.buf, head);
                self.buf.clear();
                return parsed.map(|(r, _)| r);
            }
        }
    }

    /// One read into the buffer, waiting at most until `end`: the bytes
    /// read (0 at EOF), or an error (`TimedOut` once `end` has passed).
    pub(super) fn fill(&mut self, end: Instant) -> io::Result<usize> {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Bytes received but not yet consumed as responses.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    /// The next `n` bytes after what was parsed (e.g. WebSocket frames
    /// after a `101`), read within `PATIENCE`.
    pub fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let end = Instant::now() + PATIENCE;
        while self.buf.len() < n {
            if self.fill(end)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Everything not yet consumed plus what arrives until the server
    /// closes (EOF or reset) or `timeout` passes; the flag is true when the
    /// server closed.
    pub fn until_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let (rest, closed) = read_until_close(&mut self.stream, timeout);
        let mut all = std::mem::take(&mut self.buf);
        all.extend_from_slice(&rest);
        (all, closed)
    }

    /// True when the server closes the connection (EOF or reset) within
    /// `timeout` without sending anything more.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let (rest, closed) = self.until_close(timeout);
        closed && rest.is_empty()
    }
}

// ---- response parsing ----

/// A parsed response.
#[derive(Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Neither Content-Length nor chunked: the body ran to the end of input.
    pub until_close: bool,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.version, self.status, self.reason)?;
        for (n, v) in &self.headers {
            write!(f, " | {n}: {v}")?;
        }
        write!(f, " | body {:?}", lossy(&self.body))
    }
}

impl Response {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// True when `Connection` lists `close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    pub fn text(&self) -> String {
        lossy(&self.body)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// Asserts the contract's error shape: a JSON object with a string `error`.
    pub fn assert_json_error(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        let ct = self.header("content-type").unwrap_or("");
        assert!(ct.starts_with("application/json"), "content type: {self:?}");
        let v = self.json();
        assert!(v["error"].is_string(), "error body: {self:?}");
    }
}

/// Parses one response from the start of `buf`. `head` says the request was
/// HEAD (no body whatever the framing says). Returns the response and the
/// bytes it used, or None when `buf` holds no complete response.
pub fn parse_response(buf: &[u8], head: bool) -> Option<(Response, usize)> {
    let end = find(buf, b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..end - 4]).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.to_string();
    let status: u16 = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(':')?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut r = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
        until_close: false,
    };
    if head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Some((r, end));
    }
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let (body, used) = dechunk(&buf[end..])?;
        r.body = body;
        return Some((r, end + used));
    }
    if let Some(cl) = r.header("content-length") {
        let n: usize = cl.parse().ok()?;
        if buf.len() < end + n {
            return None;
        }
        r.body = buf[end..end + n].to_vec();
        return Some((r, end + n));
    }
    r.body = buf[end..].to_vec();
    r.until_close = true;
    Some((r, buf.len()))
}

/// Parses every complete response in `buf` (none of them HEAD). Returns
/// them with the unparsed rest.
pub fn parse_all(buf: &[u8]) -> (Vec<Response>, Vec<u8>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match parse_response(&buf[at..], false) {
            Some((r, used)) => {
                at += used;
                out.push(r);
            }
            None => break,
        }
    }
    (out, buf[at..].to_vec())
}

fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let line_end = find(&buf[at..], b"\r\n")? + at;
        let line = std::str::from_utf8(&buf[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, then the final empty line.
            loop {
                let e = find(&buf[at..], b"\r\n")? + at;
                let empty = e == at;
                at = e + 2;
                if empty {
                    return Some((body, at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
    }
}
