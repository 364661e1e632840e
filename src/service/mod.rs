//! The application: router, static files and the JSON API, built on the
//! [`crate::app`] contract only. Architecture invariant: nothing here
//! imports `reactor`, and of `sys` only the path confinement of
//! `sys::fs` (openat2), which static files need to resolve paths safely; the
//! service sees requests, never sockets.

pub mod api;
mod live;
pub mod ops;
mod router;
pub mod rules;
pub mod static_files;

use std::sync::Arc;

use crate::lifecycle::ServerState;
use crate::telemetry::Metrics;

pub use router::App;

/// Links to the observability stack shown by the frontend.
#[derive(Debug, Clone, Default)]
pub struct Links {
    pub grafana: Option<String>,
    pub jaeger: Option<String>,
    pub prometheus: Option<String>,
}

/// State shared by every worker's application instance.
pub struct ServiceState {
    pub metrics: Arc<Metrics>,
    /// The server's lifecycle: once a drain begins, `/readyz` turns 503
    /// and the stats say "draining".
    pub lifecycle: Arc<ServerState>,
    pub links: Links,
    /// Handshake and session settings for the WebSocket routes.
    pub ws: Arc<crate::ws::WsOptions>,
    /// The server model serving this process (`--model`), reported as
    /// `"model"` by `/api/stats` and `/ws/stats`.
    pub model: &'static str,
    /// Header rules and compression in force; SIGHUP replaces them.
    pub policy: Arc<rules::Live>,
}

impl ServiceState {
    pub fn is_draining(&self) -> bool {
        self.lifecycle.is_draining()
    }

    /// The `/api/stats` document: telemetry's figures plus what only the
    /// service knows (the model), added here so telemetry stays unaware of it.
    pub fn stats(&self) -> serde_json::Value {
        let mut doc = crate::telemetry::stats_json(&self.metrics, self.is_draining());
        doc["model"] = self.model.into();
        doc
    }
}
