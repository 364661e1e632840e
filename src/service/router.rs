//! The route table: maps method and path to a handler function, and names
//! the route for telemetry before it runs.

use std::sync::Arc;

use super::rules::Policy;
use super::static_files::StaticFiles;
use super::{api, ServiceState};
use crate::app::{Ctx, Handler, Request, Response};
use crate::live::Current;
use crate::telemetry::{render_prometheus, ProcessState, PROMETHEUS_CONTENT_TYPE};

/// One worker's application instance.
pub struct App {
    state: Arc<ServiceState>,
    /// This worker's view of the root, with a cache of its own.
    files: StaticFiles,
    /// This worker's copy of the policy.
    policy: Current<Policy>,
}

impl App {
    pub fn new(state: Arc<ServiceState>, files: StaticFiles) -> App {
        let policy = Current::new(&state.policy);
        App {
            state,
            files,
            policy,
        }
    }

    /// Picks up a reloaded policy: one atomic load when nothing changed.
    fn refresh_policy(&mut self) {
        self.policy.refresh(&self.state.policy);
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

/// One endpoint: how it answers, given the worker's application.
type Endpoint = fn(&mut App, &Request<'_>, &mut Ctx) -> Response;

/// The route table, the one list of exact paths: [`Handler::route`] names
/// the route from it (for spans and metrics, before the handler runs) and
/// [`Handler::call`] answers from the same entry. Anything else is a file.
const ROUTES: &[(&str, Endpoint)] = &[
    ("/healthz", |_, req, _| get_only(req, api::healthz)),
    ("/readyz", |app, req, _| {
        get_only(req, || api::readyz(app.state.is_draining()))
    }),
    ("/metrics", |app, req, _| {
        get_only(req, || {
            let m = &app.state.metrics;
            let text = render_prometheus(m, &ProcessState::collect(m));
            Response::new(200, crate::app::Body::Bytes(text.into_bytes()))
                .header("Content-Type", PROMETHEUS_CONTENT_TYPE)
        })
    }),
    ("/api/echo", |_, req, _| match req.method {
        "POST" => api::echo(req),
        _ => method_not_allowed("POST"),
    }),
    ("/api/stats", |app, req, _| {
        get_only(req, || api::stats(&app.state))
    }),
    ("/api/config", |app, req, _| {
        get_only(req, || api::config(&app.state))
    }),
    ("/api/slow", |_, req, _| get_only(req, || api::slow(req))),
    ("/api/tcp", |app, req, _| {
        get_only(req, || api::tcp(&app.state))
    }),
    ("/ws/echo", |app, _, _| {
        Response::websocket(Box::new(crate::ws::EchoApp), app.state.ws.clone())
    }),
    ("/ws/stats", |app, _, _| {
        Response::websocket(
            Box::new(super::live::StatsApp::new(app.state.clone())),
            app.state.ws.clone(),
        )
    }),
];

fn endpoint(path: &str) -> Option<&'static (&'static str, Endpoint)> {
    ROUTES.iter().find(|(p, _)| *p == path)
}

impl Handler for App {
    fn route(&self, req: &Request<'_>) -> &'static str {
        endpoint(req.path).map_or(STATIC, |(p, _)| p)
    }

    fn call(&mut self, req: &Request<'_>, ctx: &mut Ctx) -> Response {
        self.refresh_policy();
        let client = self.policy.client(req);
        if let Some(refused) = self.policy.refuse_client(req, client) {
            return refused;
        }
        if let Some(preflight) = self.policy.preflight(req, client) {
            return preflight;
        }
        let mut response = match endpoint(ctx.route) {
            Some((_, answer)) => answer(self, req, ctx),
            None => {
                let policy = Arc::clone(self.policy.shared());
                let saved = &self.state.metrics.process.compression_saved;
                self.files
                    .serve_with(req, ctx.now, &policy.compression, saved)
            }
        };
        self.policy.apply(req, client, &mut response);
        response
    }
}
