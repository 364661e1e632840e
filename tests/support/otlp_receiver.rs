//! A small OTLP/HTTP (protobuf) receiver for tests: a listener on
//! `127.0.0.1:0` and a thread per connection that decode
//! `POST /v1/{traces,metrics,logs}` with `opentelemetry-proto` and keep
//! every request. It can also misbehave (refuse, hang) to test that the
//! server never blocks on a broken collector.
//!
//! Use it from an integration test with
//! `#[path = "support/otlp_receiver.rs"] mod otlp_receiver;`, point the
//! code under test (the library, or the real binary through
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) at [`OtlpReceiver::endpoint`], then poll
//! with [`OtlpReceiver::wait_for`].
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Decode and answer 200.
    Accept,
    /// Answer this status without keeping anything.
    Refuse(u16),
    /// Read the request, then say nothing for this long before closing.
    Hang(Duration),
}

/// Everything received so far.
#[derive(Debug, Default)]
pub struct Received {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub metrics: Vec<ExportMetricsServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    /// Every request line seen, e.g. `POST /v1/traces`, kept or not.
    pub requests: Vec<String>,
    /// Bodies that did not decode, with their path.
    pub errors: Vec<String>,
}

impl Received {
    /// All spans, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// All metrics of every export, in arrival order.
    pub fn metrics(&self) -> Vec<Metric> {
        self.metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.clone())
            .collect()
    }

    /// All log records, in arrival order.
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }

    /// Resource attributes of the first span export.
    pub fn trace_resource(&self) -> Vec<KeyValue> {
        self.traces
            .first()
            .and_then(|r| r.resource_spans.first())
            .and_then(|r| r.resource.as_ref())
            .map(|r| r.attributes.clone())
            .unwrap_or_default()
    }
}

/// The value of `key` among OTLP attributes, as text (ints and bools too).
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    any_text(v)
}

/// An `AnyValue` as text.
pub fn any_text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Shared {
    received: Mutex<Received>,
    behaviour: Mutex<Behaviour>,
    stop: AtomicBool,
}

/// The receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            received: Mutex::new(Received::default()),
            behaviour: Mutex::new(Behaviour::Accept),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || serve(conn, &s));
                }
            }
        });
        OtlpReceiver {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how later requests are answered.
    pub fn set_behaviour(&self, b: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = b;
    }

    /// Runs `f` on what was received.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.shared.received.lock().expect("lock"))
    }

    /// Polls until `f` returns `Some`, or `None` after `timeout`.
    pub fn wait_for<T>(&self, timeout: Duration, f: impl Fn(&Received) -> Option<T>) -> Option<T> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = self.with(&f) {
                return Some(v);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the requests of one connection (keep-alive aware).
fn serve(mut conn: TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        // Read a head.
        let (head_len, method, path, length, close) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let length = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                        .unwrap_or(0usize);
                    let close = req.headers.iter().any(|h| {
                        h.name.eq_ignore_ascii_case("connection")
                            && h.value.eq_ignore_ascii_case(b"close")
                    });
                    break (
                        n,
                        req.method.unwrap_or("").to_string(),
                        req.path.unwrap_or("").to_string(),
                        length,
                        close,
                    );
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return,
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + length {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf[head_len..head_len + length].to_vec();
        buf.drain(..head_len + length);

        let behaviour = *shared.behaviour.lock().expect("lock");
        shared
            .received
            .lock()
            .expect("lock")
            .requests
            .push(format!("{method} {path}"));
        let status = match behaviour {
            Behaviour::Hang(d) => {
                std::thread::sleep(d);
                return;
            }
            Behaviour::Refuse(status) => status,
            Behaviour::Accept => {
                let mut r = shared.received.lock().expect("lock");
                let decoded =
                    match path.as_str() {
                        "/v1/traces" => ExportTraceServiceRequest::decode(body.as_slice())
                            .map(|m| r.traces.push(m)),
                        "/v1/metrics" => ExportMetricsServiceRequest::decode(body.as_slice())
                            .map(|m| r.metrics.push(m)),
                        "/v1/logs" => ExportLogsServiceRequest::decode(body.as_slice())
                            .map(|m| r.logs.push(m)),
                        _ => {
                            drop(r);
                            let _ = conn
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                            continue;
                        }
                    };
                match decoded {
                    Ok(()) => 200,
                    Err(e) => {
                        r.errors.push(format!("{path}: {e}"));
                        400
                    }
                }
            }
        };
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        if conn.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}
