//! The real `glasshouse` binary as a child process, for end-to-end tests,
//! and a tiny blocking HTTP/1.1 client to talk to it.
//!
//! Use it from an integration test with
//! `#[path = "support/server.rs"] mod server;`. [`Server::start`] runs
//! `CARGO_BIN_EXE_glasshouse --listen 127.0.0.1:0 ...`, reads its stderr on
//! a thread (every line is kept) and returns once the
//! `listening on http://HOST:PORT` line names the port. The child is killed
//! (SIGKILL) when the handle is dropped, so a failing test leaves nothing
//! running. Every wait is bounded; none measures time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for the `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables of the test's own environment that would change the child's
/// behaviour: removed so that only what a test sets applies.
const SCRUBBED: &[&str] = &[
    "RUST_LOG",
    "GLASSHOUSE_LISTEN",
    "GLASSHOUSE_ROOT",
    "GLASSHOUSE_WORKERS",
    "GLASSHOUSE_DRAIN_TIMEOUT",
    "GLASSHOUSE_MAX_CONNECTIONS",
    "GLASSHOUSE_LOG_FORMAT",
    "GLASSHOUSE_ACCESS_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_METRIC_EXPORT_INTERVAL",
];

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    eof: bool,
}

/// A running `glasshouse`.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<(Mutex<Lines>, Condvar)>,
    root: tempfile::TempDir,
    status: Option<ExitStatus>,
}

impl Server {
    /// Starts the binary on `127.0.0.1:0` with an empty temporary `--root`,
    /// the extra `args` and environment `env`, and waits for it to listen.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let root = tempfile::tempdir().expect("temporary root");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_glasshouse"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for k in SCRUBBED {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start glasshouse");
        let stderr = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let shared = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*shared;
                m.lock().expect("lock").lines.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*shared;
            m.lock().expect("lock").eof = true;
            cv.notify_all();
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().expect("addr"),
            stderr,
            root,
            status: None,
        };
        server.addr = server.wait_listening();
        server
    }

    fn wait_listening(&mut self) -> SocketAddr {
        let end = Instant::now() + START_TIMEOUT;
        let (m, cv) = &*self.stderr;
        let mut lines = m.lock().expect("lock");
        loop {
            for line in &lines.lines {
                if let Some(at) = line.find("listening on http://") {
                    let rest = &line[at + "listening on http://".len()..];
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c)))
                        .unwrap_or(rest.len());
                    return rest[..end]
                        .parse()
                        .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
                }
            }
            let now = Instant::now();
            assert!(
                !lines.eof && now < end,
                "glasshouse did not report `listening on` (exited: {}); stderr:\n{}",
                lines.eof,
                lines.lines.join("\n")
            );
            lines = cv.wait_timeout(lines, end - now).expect("lock").0;
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid, which is not reaped
        // before `wait_exit` (so it cannot name another process).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits (bounded) for the process to exit; `None` if it is still
    /// running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.0.lock().expect("lock").lines.clone()
    }

    /// Waits (bounded) for the stderr pipe to close, then returns every line:
    /// after the process has exited, this is all it wrote.
    pub fn all_stderr(&self, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        let (m, cv) = &*self.stderr;
        let mut lines = m.lock().expect("lock");
        while !lines.eof {
            let now = Instant::now();
            if now >= end {
                break;
            }
            lines = cv.wait_timeout(lines, end - now).expect("lock").0;
        }
        lines.lines.clone()
    }

    /// The stderr lines, parsed as JSON where they are JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stderr_lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let r = get(self.addr, "/metrics", &[]).expect("GET /metrics");
        assert_eq!(r.status, 200, "GET /metrics");
        r.text()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` and `env` (the same scrubbed environment as
/// [`Server::start`]) until it exits by itself, for start-up failures.
/// Returns the exit status and stderr; panics if it is still running after
/// `timeout` (it is killed).
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> (ExitStatus, String) {
    let root = tempfile::tempdir().expect("temporary root");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_glasshouse"));
    cmd.arg("--root")
        .arg(root.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for k in SCRUBBED {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start glasshouse");
    let mut pipe = child.stderr.take().expect("stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("glasshouse {args:?} still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().expect("stderr reader"))
}

/// The value of a Prometheus sample line whose name and labels start as
/// `prefix` (e.g. `glasshouse_telemetry_dropped_total{signal="traces"}`);
/// the sum when several lines match.
pub fn prom_value(text: &str, prefix: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let matches = line.starts_with(prefix)
            && line[prefix.len()..]
                .chars()
                .next()
                .is_some_and(|c| c == ' ' || c == '{' || c == ',' || prefix.ends_with('}'));
        if matches {
            let v: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// An answer read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Connection: close` was sent.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A keep-alive client connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects, with generous read/write timeouts against hangs.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    /// The local address (the server's `network.peer.*`).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `GET path` with `headers` (keep-alive) and reads the answer.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    /// Reads one answer (Content-Length, chunked, or up to EOF).
    pub fn read_response(&mut self) -> std::io::Result<Response> {
        let (status, headers, head_len) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let headers = r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (r.code.unwrap_or(0), headers, n);
                }
                Ok(httparse::Status::Partial) => self.fill()?,
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad response head: {e}"),
                    ))
                }
            }
        };
        self.buf.drain(..head_len);
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if status == 100 {
            return self.read_response();
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = resp
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok());
        if status == 101 || status == 204 || status == 304 {
            return Ok(resp);
        }
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    self.fill()?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                resp.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    // No trailers are sent by glasshouse.
                    return Ok(resp);
                }
            }
        } else if let Some(n) = length {
            while self.buf.len() < n {
                self.fill()?;
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            loop {
                match self.fill() {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        Ok(resp)
    }

    /// The next `n` bytes after what was parsed (e.g. WebSocket frames
    /// after a `101`).
    pub fn read_exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads until the peer closes; what arrived meanwhile.
    pub fn read_to_eof(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(std::mem::take(&mut self.buf))
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// One `GET` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    Client::connect(addr)?.get(path, headers)
}
