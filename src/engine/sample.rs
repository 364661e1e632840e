//! A small application for driving the engine without the real service:
//! one route per kind of answer (in memory, file, stream, held back,
//! WebSocket, panic), each answer numbered so that a test can check that
//! answers come in request order.

use std::fs::File;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::app::{Body, BodyStream, Ctx, Handler, Request, Response};
use crate::ws::{EchoApp, WsOptions};

/// A small application with one route per kind of answer:
/// - `/` and anything else: `200` with `hello`;
/// - `/echo`: the body back;
/// - `/slow?ms=N`: `200` held back N ms;
/// - `/stream?n=N`: N chunks of `chunk\n`, streamed;
/// - `/file`: the sample file's bytes, as a file body;
/// - `/close`: `200` and the application asks to close;
/// - `/ws`: WebSocket echo sessions;
/// - `/panic`: the handler panics.
///
/// Every answer carries `X-Seq: N`, the number of the request on this
/// application instance (one instance per connection in tests), and
/// answers to `HEAD` carry `X-Method: HEAD`, so a reader of the raw output
/// can frame them.
pub struct SampleApp {
    file: Option<Arc<File>>,
    ws: Arc<WsOptions>,
    seq: u64,
    /// `/panic` really panics (off under libFuzzer, whose panic hook
    /// aborts even on a panic the engine would catch).
    panics: bool,
}

/// The contents of `/file`.
pub const SAMPLE_FILE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz\n";

impl SampleApp {
    pub fn new() -> SampleApp {
        // One file per process: fuzzing makes an application per input.
        static FILE: OnceLock<Option<Arc<File>>> = OnceLock::new();
        let file = FILE
            .get_or_init(|| tempfile_with(SAMPLE_FILE).map(Arc::new))
            .clone();
        SampleApp {
            file,
            ws: Arc::new(WsOptions::default()),
            seq: 0,
            panics: true,
        }
    }

    /// The same application with `/panic` answering like `/`.
    pub fn without_panics() -> SampleApp {
        SampleApp {
            panics: false,
            ..SampleApp::new()
        }
    }
}

impl Default for SampleApp {
    fn default() -> SampleApp {
        SampleApp::new()
    }
}

/// An unlinked temporary file holding `data`.
fn tempfile_with(data: &[u8]) -> Option<File> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "glasshouse-sample-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .ok()?;
    let _ = std::fs::remove_file(&path);
    f.write_all(data).ok()?;
    Some(f)
}

struct Chunks(u32);

impl BodyStream for Chunks {
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.0 == 0 {
            return None;
        }
        self.0 -= 1;
        Some(b"chunk\n".to_vec())
    }
}

impl Handler for SampleApp {
    fn route(&self, req: &Request<'_>) -> &'static str {
        match req.path {
            "/echo" => "/echo",
            "/slow" => "/slow",
            "/stream" => "/stream",
            "/file" => "/file",
            "/close" => "/close",
            "/ws" => "/ws",
            "/panic" => "/panic",
            _ => "/*",
        }
    }

    fn call(&mut self, req: &Request<'_>, ctx: &mut Ctx) -> Response {
        self.seq += 1;
        let seq = self.seq.to_string();
        let answer = self.answer(req, ctx).header("X-Seq", seq);
        if req.is_head() {
            answer.header("X-Method", "HEAD")
        } else {
            answer
        }
    }
}

impl SampleApp {
    fn answer(&mut self, req: &Request<'_>, ctx: &Ctx) -> Response {
        let num = |key: &str| req.query_param(key).and_then(|v| v.parse::<u64>().ok());
        match ctx.route {
            "/echo" => Response::new(200, Body::Bytes(req.body.to_vec())),
            "/slow" => Response::new(200, Body::Static(b"slept"))
                .delayed(Duration::from_millis(num("ms").unwrap_or(100))),
            "/stream" => {
                let n = num("n").unwrap_or(3).min(1000) as u32;
                Response::new(200, Body::Stream(Box::new(Chunks(n))))
            }
            "/file" => match &self.file {
                Some(f) => Response::new(
                    200,
                    Body::File {
                        file: f.clone(),
                        offset: 0,
                        len: SAMPLE_FILE.len() as u64,
                    },
                ),
                None => Response::error(500, "no sample file"),
            },
            "/close" => Response::new(200, Body::Static(b"bye")).close(),
            "/ws" => Response::websocket(Box::new(EchoApp), self.ws.clone()),
            "/panic" if self.panics => panic!("sample handler panics on purpose"),
            _ => Response::new(200, Body::Static(b"hello")),
        }
    }
}
