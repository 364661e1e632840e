//! A panic in a handler answers 500 for that request and leaves the worker
//! serving: the reactor is driven through the library with a handler that
//! panics on one path, over real sockets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use glasshouse::app::{Body, Ctx, Handler, HandlerFactory, Request, Response};
use glasshouse::http::Limits;
use glasshouse::live::Live;
use glasshouse::reactor::{self, Lifecycle, ReactorConfig, Settings, State};
use glasshouse::sys::socket::{ListenOptions, Listener};
use glasshouse::telemetry::Metrics;
use support::Client;

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
        settings: Arc::new(Live::new(Settings {
            engine: glasshouse::engine::Config {
                limits: Limits::default(),
                header_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(5),
                ..glasshouse::engine::Config::default()
            },
            max_connections: 100,
        })),
        tls: None,
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

    let mut conn = Client::connect(addr);
    let boom = conn.get("/boom");
    assert!(
        (boom.version.as_str(), boom.status) == ("HTTP/1.1", 500),
        "{boom:?}"
    );
    assert!(
        boom.text().contains(r#"{"error":"internal server error"}"#),
        "{boom:?}"
    );
    // Same connection, same worker: still serving.
    let ok = conn.get("/ok");
    assert!(
        (ok.version.as_str(), ok.status) == ("HTTP/1.1", 200) && ok.text().ends_with("fine"),
        "{ok:?}"
    );
    // And a fresh connection too.
    let other = Client::connect(addr).get("/ok");
    assert!(
        (other.version.as_str(), other.status) == ("HTTP/1.1", 200),
        "{other:?}"
    );

    life.advance(State::Forced);
    for w in workers {
        w.bell.ring();
        w.thread.join().unwrap();
    }
}
