//! The route table: maps method and path to a handler function, and names
//! the route for telemetry before it runs.

use std::sync::Arc;

use super::static_files::StaticFiles;
use super::{api, ServiceState};
use crate::app::{Ctx, Handler, Request, Response};
use crate::telemetry::{render_prometheus, ProcessState, PROMETHEUS_CONTENT_TYPE};

/// One worker's application instance.
pub struct App {
    state: Arc<ServiceState>,
    /// This worker's view of the root, with a cache of its own.
    files: StaticFiles,
}

impl App {
    pub fn new(state: Arc<ServiceState>, files: StaticFiles) -> App {
        App { state, files }
    }
}

const STATIC: &str = "/*";

fn method_not_allowed(allow: &'static str) -> Response {
    Response::error(405, "method not allowed").header("Allow", allow)
}

fn get_only(req: &Request<'_>, f: impl FnOnce() -> Response) -> Response {
    match req.method {
        "GET" | "HEAD" => f(),
        _ => method_not_allowed("GET, HEAD"),
    }
}

impl Handler for App {
    fn route(&self, req: &Request<'_>) -> &'static str {
        match req.path {
            "/healthz" => "/healthz",
            "/readyz" => "/readyz",
            "/metrics" => "/metrics",
            "/api/echo" => "/api/echo",
            "/api/stats" => "/api/stats",
            "/api/config" => "/api/config",
            "/api/slow" => "/api/slow",
            "/ws/echo" => "/ws/echo",
            "/ws/stats" => "/ws/stats",
            _ => STATIC,
        }
    }

    fn call(&mut self, req: &Request<'_>, ctx: &mut Ctx) -> Response {
        let state = &self.state;
        match ctx.route {
            "/healthz" => get_only(req, api::healthz),
            "/readyz" => get_only(req, || api::readyz(ctx.draining || state.is_draining())),
            "/metrics" => get_only(req, || {
                let text =
                    render_prometheus(&state.metrics, &ProcessState::collect(&state.metrics));
                Response::new(200, crate::app::Body::Bytes(text.into_bytes()))
                    .header("Content-Type", PROMETHEUS_CONTENT_TYPE)
            }),
            "/api/echo" => match req.method {
                "POST" => api::echo(req),
                _ => method_not_allowed("POST"),
            },
            "/api/stats" => get_only(req, || api::stats(state)),
            "/api/config" => get_only(req, || api::config(state)),
            "/api/slow" => get_only(req, || api::slow(req)),
            "/ws/echo" => Response::websocket(Box::new(crate::ws::EchoApp), state.ws.clone()),
            "/ws/stats" => Response::websocket(
                Box::new(super::live::StatsApp::new(state.clone())),
                state.ws.clone(),
            ),
            _ => self.files.serve(req, ctx.now),
        }
    }
}
