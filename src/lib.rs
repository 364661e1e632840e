//! glasshouse: an observable HTTP/1.1 + WebSocket server written directly on
//! the Linux socket interface.
//!
//! Layers, each knowing less than the one above: [`sys`] (the only code allowed raw pointers)
//! → [`reactor`] (the epoll transport: per-worker loops that move bytes) →
//! [`engine`] (the sans-I/O connection: requests, answers, timeouts, drain,
//! the WebSocket upgrade) → [`http`] and [`ws`] (sans-I/O protocol
//! machines) and [`app`] (the handler contract) → [`service`] (router,
//! static files, JSON API). [`telemetry`] owns logs, metrics and traces;
//! [`controller`] owns signals and the lifecycle. See `ARCHITECTURE.md`.
#![deny(unsafe_code)]

pub mod admission;
pub mod app;
pub mod config;
pub mod config_file;
pub mod controller;
pub mod engine;
pub mod http;
pub mod lifecycle;
pub mod live;
pub mod models;
pub mod net;
pub mod per_client;
pub mod reactor;
pub mod reserve;
pub mod service;
#[allow(unsafe_code)]
pub mod sys;
pub mod telemetry;
pub mod tls;
pub mod ws;
