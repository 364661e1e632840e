//! The JSON API: health, readiness, echo, stats, config and the slow
//! endpoint. Each handler is a plain function from request to response.

use std::time::Duration;

use serde_json::json;

use super::ServiceState;
use crate::app::{Request, Response};

/// Longest `/api/slow` wait (contract: N at most 60000).
pub const MAX_SLOW_MS: u64 = 60_000;

pub fn healthz() -> Response {
    Response::new(200, crate::app::Body::Static(b"{\"status\":\"ok\"}"))
        .header("Content-Type", "application/json")
}

pub fn readyz(draining: bool) -> Response {
    if draining {
        Response::error(503, "draining").header("Retry-After", "1")
    } else {
        Response::new(200, crate::app::Body::Static(b"{\"status\":\"ready\"}"))
            .header("Content-Type", "application/json")
    }
}

/// `POST /api/echo`: the JSON body back, byte for byte, once it is known to
/// be JSON.
pub fn echo(req: &Request<'_>) -> Response {
    let ct = req.header_str("content-type").unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    let is_json = media.eq_ignore_ascii_case("application/json")
        || (media.len() > 5 && media[media.len() - 5..].eq_ignore_ascii_case("+json"));
    if !is_json {
        return Response::error(415, "expected Content-Type: application/json");
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(req.body) {
        return Response::error(400, &format!("invalid JSON: {e}"));
    }
    Response::new(200, crate::app::Body::Bytes(req.body.to_vec()))
        .header("Content-Type", "application/json")
}

/// `GET /api/slow?ms=N`: answers after N ms, held back by the reactor's timer.
pub fn slow(req: &Request<'_>) -> Response {
    let ms = match req.query_param("ms").map(str::parse::<u64>) {
        None => 1000,
        Some(Ok(n)) if n <= MAX_SLOW_MS => n,
        Some(_) => return Response::error(400, "ms must be an integer from 0 to 60000"),
    };
    Response::json(200, &json!({ "slept_ms": ms })).delayed(Duration::from_millis(ms))
}

/// `GET /api/config`: links for the frontend.
pub fn config(state: &ServiceState) -> Response {
    Response::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "grafana_url": state.links.grafana,
            "jaeger_url": state.links.jaeger,
            "prometheus_url": state.links.prometheus,
        }),
    )
}

/// `GET /api/tcp`: the userland TCP/IP's STATUS (every connection's
/// state, sequence numbers, windows, RTT, RTO and retransmissions, and the
/// stack's packet counters), as its driver last copied it; 404 with the
/// reason when the kernel's TCP carries the connections.
pub fn tcp(state: &ServiceState) -> Response {
    match state.metrics.tcp.latest() {
        Some(view) => match serde_json::to_value(&*view) {
            Ok(doc) => Response::json(200, &doc).header("Cache-Control", "no-store"),
            Err(e) => Response::json(500, &serde_json::json!({ "error": e.to_string() })),
        },
        None => Response::json(
            404,
            &serde_json::json!({
                "error": "no userland TCP/IP: the kernel's TCP carries the connections (run with --stack user --link tun:NAME)",
            }),
        ),
    }
}

/// `GET /api/stats`.
pub fn stats(state: &ServiceState) -> Response {
    Response::json(200, &state.stats()).header("Cache-Control", "no-store")
}
