//! Shared support for the integration tests: the real `glasshouse` binary on
//! `127.0.0.1:0` ([`TestServer`]), a raw-socket client ([`Client`],
//! [`send_raw`]) and a small HTTP/1.1 response parser ([`parse_response`]),
//! enough to check pipelined answers in order. Every wait is bounded.

#![allow(dead_code)] // each test crate uses its own subset

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a test waits for anything that should happen "now".
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Path of the binary under test, built by cargo for integration tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_glasshouse")
}

/// A running server process. Killed on drop.
pub struct TestServer {
    child: Child,
    addr: SocketAddr,
    /// The temporary static root (`--root`), removed on drop.
    root: tempfile::TempDir,
    /// Everything the server wrote on stderr so far.
    log: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

/// Files every test root holds.
pub const INDEX_HTML: &str = "<!doctype html><title>glasshouse test</title>\n";
pub const DIGITS_TXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz\n";

impl TestServer {
    /// Starts the binary with `--listen 127.0.0.1:0 --workers 2
    /// --log-format json --root TMP` followed by `args`, and waits for its
    /// ready line.
    pub fn start(args: &[&str]) -> TestServer {
        let root = tempfile::tempdir().expect("temp root");
        let root_arg = root.path().to_str().expect("utf-8 temp path").to_string();
        let mut all = vec![
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--log-format",
            "json",
            "--root",
            &root_arg,
        ];
        all.extend_from_slice(args);
        TestServer::start_custom(root, &all, &[])
    }

    /// Starts the binary with exactly `args` and extra environment `envs`
    /// (the caller chooses every flag); `root` is filled with the standard
    /// files and removed on drop. The server must listen on 127.0.0.1.
    pub fn start_custom(
        root: tempfile::TempDir,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> TestServer {
        write_file(root.path(), "index.html", INDEX_HTML.as_bytes());
        write_file(root.path(), "digits.txt", DIGITS_TXT.as_bytes());
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Only the environment the test chooses configures the server.
        for (k, _) in std::env::vars() {
            if k.starts_with("GLASSHOUSE_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn glasshouse");
        let stderr = child.stderr.take().expect("stderr pipe");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        // Keeps draining stderr for the server's whole life so the pipe
        // never fills, and reports the port from the ready line.
        let drain = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut tx = Some(tx);
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Some(port) = ready_port(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
                log2.lock().unwrap().push_str(&line);
            }
        });
        let port = match rx.recv_timeout(PATIENCE) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let _ = drain.join();
                panic!(
                    "server did not print its ready line (status {status:?}); stderr:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        TestServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            root,
            log,
            drain: Some(drain),
            exited: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The static root given with `--root`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates (or replaces) a file under the root.
    pub fn add_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        write_file(self.root.path(), rel, contents)
    }

    /// Sends a signal (`libc::SIGTERM`, ...) to the server process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; false after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.log.lock().unwrap().contains(needle) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; panics (after killing it) on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                // The pipe is closed now: let the drain thread catch up.
                if let Some(h) = self.drain.take() {
                    let _ = h.join();
                }
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "server did not exit within {timeout:?}; stderr:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` on a fresh connection with `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        let raw = send_raw(self.addr, req.as_bytes());
        parse_response(&raw, false)
            .unwrap_or_else(|| panic!("no response to GET {path}: {:?}", lossy(&raw)))
            .0
    }

    /// Asserts the server still answers `/healthz` with 200.
    pub fn assert_healthy(&self) {
        let r = self.get("/healthz");
        assert_eq!(r.status, 200, "healthz after the case: {r:?}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(h) = self.drain.take() {
            let _ = h.join();
        }
    }
}

fn ready_port(line: &str) -> Option<u16> {
    let at = line.find("listening on http://")? + "listening on http://".len();
    // HOST:PORT ends at the first character that cannot be part of it
    // (a quote in JSON logs, a space in text logs).
    let authority: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '-'))
        .collect();
    authority.rsplit(':').next()?.parse().ok()
}

fn write_file(root: &Path, rel: &str, contents: &[u8]) -> PathBuf {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create dir under root");
    }
    std::fs::write(&path, contents).expect("write file under root");
    path
}

/// Runs the binary with exactly `args` and waits for it to exit (for
/// configuration errors). Returns the status and stderr.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> (ExitStatus, String) {
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn glasshouse");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("glasshouse {args:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---- raw client ----

/// Connects with generous read and write timeouts (against hangs only).
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
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
pub fn read_until_close(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
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
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: connect(addr),
            buf: Vec::new(),
        }
    }

    /// Wraps an existing stream (e.g. a clone, to peek at answers).
    pub fn from_stream(stream: TcpStream) -> Client {
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

    /// `GET path` on this connection (keep-alive).
    pub fn get(&mut self, path: &str) -> Response {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
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
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((r, used)) = parse_response(&self.buf, head) {
                // A body delimited by close is only complete at EOF.
                if !r.until_close {
                    self.buf.drain(..used);
                    return Some(r);
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    // EOF: a close-delimited body is complete now.
                    let parsed = parse_response(&self.buf, head);
                    self.buf.clear();
                    return parsed.map(|(r, _)| r);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Bytes received but not yet consumed as responses.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    /// True when the server closes the connection (EOF or reset) within
    /// `timeout` without sending anything more.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let (rest, closed) = read_until_close(&mut self.stream, timeout);
        self.buf.extend_from_slice(&rest);
        closed && self.buf.is_empty()
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

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- a minimal WebSocket client (RFC 6455) ----

/// The RFC 6455 §1.3 sample key and its accept value.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opens a WebSocket on `path`; panics unless the server answers 101.
pub fn ws_connect(addr: SocketAddr, path: &str) -> Client {
    let mut c = Client::connect(addr);
    let r = c.request(
        format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("sec-websocket-accept"), Some(WS_ACCEPT), "{r:?}");
    c
}

/// Writes one masked client frame (FIN set).
pub fn ws_send(c: &mut Client, opcode: u8, payload: &[u8]) {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    c.send(&f);
}

/// Reads one server frame: (opcode, payload). None when the connection
/// closed or nothing came within `PATIENCE`.
pub fn ws_recv(c: &mut Client) -> Option<(u8, Vec<u8>)> {
    let end = Instant::now() + PATIENCE;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((op, payload, used)) = ws_parse(&c.buf) {
            c.buf.drain(..used);
            return Some((op, payload));
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        c.stream.set_read_timeout(Some(left)).unwrap();
        match c.stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn ws_parse(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0f;
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7f {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let data = b.get(at..at + len)?;
    let payload = match mask {
        Some(m) => data.iter().enumerate().map(|(i, x)| x ^ m[i % 4]).collect(),
        None => data.to_vec(),
    };
    Some((op, payload, at + len))
}
