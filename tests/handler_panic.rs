//! A panic in a handler answers 500 for that request and leaves the worker
//! serving: the reactor is driven through the library with a handler that
//! panics on one path, over real sockets.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use glasshouse::app::{Body, Ctx, Handler, HandlerFactory, Request, Response};
use glasshouse::http::Limits;
use glasshouse::reactor::{self, Lifecycle, ReactorConfig, State};
use glasshouse::sys::socket::{ListenOptions, Listener};
use glasshouse::telemetry::Metrics;

struct Boom;

impl Handler for Boom {
    fn route(&self, req: &Request<'_>) -> &'static str {
        if req.path == "/boom" {
            "/boom"
        } else {
            "/ok"
        }
    }

    fn call(&mut self, req: &Request<'_>, _ctx: &mut Ctx) -> Response {
        if req.path == "/boom" {
            panic!("handler exploded on purpose");
        }
        Response::new(200, Body::Static(b"fine"))
    }
}

fn get(stream: &mut TcpStream, path: &str) -> String {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the head and the Content-Length body are in.
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[test]
fn panicking_handler_gets_500_and_the_worker_keeps_serving() {
    let listener = Listener::bind(
        &"127.0.0.1:0".parse().unwrap(),
        ListenOptions {
            reuse_port: true,
            backlog: 64,
        },
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new(1);
    let life = Arc::new(Lifecycle::new(Default::default()).unwrap());
    let cfg = Arc::new(ReactorConfig {
        engine: glasshouse::engine::Config {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            ..glasshouse::engine::Config::default()
        },
        max_connections: 100,
    });
    let factory: HandlerFactory = Arc::new(|_| Box::new(Boom));
    let workers = reactor::spawn(
        vec![Arc::new(listener)],
        cfg,
        factory,
        metrics.workers.clone(),
        life.clone(),
    )
    .unwrap();

    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let boom = get(&mut conn, "/boom");
    assert!(boom.starts_with("HTTP/1.1 500 "), "{boom}");
    assert!(
        boom.contains(r#"{"error":"internal server error"}"#),
        "{boom}"
    );
    // Same connection, same worker: still serving.
    let ok = get(&mut conn, "/ok");
    assert!(
        ok.starts_with("HTTP/1.1 200 ") && ok.ends_with("fine"),
        "{ok}"
    );
    // And a fresh connection too.
    let mut other = TcpStream::connect(addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(get(&mut other, "/ok").starts_with("HTTP/1.1 200 "));

    life.advance(State::Forced);
    for w in workers {
        w.bell.ring();
        w.thread.join().unwrap();
    }
}
