//! The `--metrics-listen` listener's application: the worker's [`App`],
//! but only its operational endpoints (`/metrics`, `/healthz`, `/readyz`).
//! A scraper or a probe on a private port gets plain HTTP even when
//! `--listen` serves HTTPS, and nothing else of the server (files, APIs,
//! WebSockets) is reachable there: anything else is a JSON 404.

use super::router::App;
use crate::app::{Ctx, Handler, Request, Response};

/// The paths the operations listener answers, as the route table names them.
pub const OPS_PATHS: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

/// An [`App`] that answers only [`OPS_PATHS`].
pub struct OpsOnly(pub App);

fn is_ops(req: &Request<'_>) -> bool {
    OPS_PATHS.contains(&req.path)
}

impl Handler for OpsOnly {
    fn route(&self, req: &Request<'_>) -> &'static str {
        if is_ops(req) {
            self.0.route(req)
        } else {
            "ops-not-found"
        }
    }

    fn call(&mut self, req: &Request<'_>, ctx: &mut Ctx) -> Response {
        if is_ops(req) {
            self.0.call(req, ctx)
        } else {
            Response::error(
                404,
                "the metrics listener serves only /metrics, /healthz and /readyz",
            )
        }
    }
}
