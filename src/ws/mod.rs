//! WebSocket (RFC 6455) support: the application-facing contract.
//!
//! This module owns what an application sees of a WebSocket session: the
//! messages it receives and the outbox it writes into. The protocol machinery
//! (handshake, framing, close handshake, permessage-deflate) is sans-I/O and
//! lives in submodules; the connection engine drives it with bytes.
//!
//! Code map:
//! - `options`: what a route accepts in a handshake ([`WsOptions`]); the
//!   handshake itself is the connection engine's upgrade step
//!   (`crate::engine::upgrade`), so this module knows no HTTP request.
//! - `extension`: permessage-deflate offer negotiation (RFC 7692 §7.1).
//! - `frame`, `mask`, `close`, `utf8`: wire-level pieces (RFC 6455 §5, §7.4).
//! - `deflate`: the permessage-deflate codec (RFC 7692 §7.2).
//! - `session`: [`Session`], the per-connection protocol machine the reactor
//!   drives: bytes in, bytes out, deadlines.
//! - `apps`: built-in applications ([`EchoApp`]).
//! - `client`: the client side of the codec, for tests.
//!
//! Architecture invariant: nothing here knows about descriptors, epoll,
//! threads or clocks; time comes in as an `Instant` argument.

use std::time::Duration;

pub mod apps;
pub mod client;
pub mod close;
pub mod deflate;
pub mod extension;
pub mod frame;
pub mod invariants;
pub mod mask;
pub mod options;
pub mod session;
pub mod utf8;

pub use apps::EchoApp;
pub use extension::{DeflateParams, DeflatePolicy};
pub use options::{ProtocolSelector, WsOptions};
pub use session::{Session, State};

/// A complete message, reassembled from its fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// Messages an application wants sent, collected during one callback.
#[derive(Debug, Default)]
pub struct Outbox {
    pub messages: Vec<Message>,
    /// Set to close the session with this code and reason.
    pub close: Option<(u16, String)>,
}

impl Outbox {
    pub fn send(&mut self, msg: Message) {
        self.messages.push(msg);
    }
}

/// A WebSocket application: one instance per session, driven by the worker
/// that owns the connection.
pub trait WsApp: Send {
    /// A message arrived from the peer.
    fn on_message(&mut self, msg: Message, out: &mut Outbox);

    /// How often [`WsApp::on_tick`] should run, if at all.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Periodic callback (e.g. pushing stats). `slow_peer` is true when the
    /// previous output has not drained yet; an application should skip the
    /// tick rather than queue more.
    fn on_tick(&mut self, _out: &mut Outbox, _slow_peer: bool) {}
}

impl std::fmt::Debug for dyn WsApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsApp")
    }
}

/// Per-session protocol settings decided during the handshake
/// (negotiated extensions, limits).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Largest message accepted from the peer, after reassembly and
    /// inflation; a larger one closes the session with 1009.
    pub max_message: usize,
    /// Output the session may hold unwritten: once this much is pending and
    /// more must be queued, the peer is not reading and is dropped (1008).
    pub max_output: usize,
    /// Send a Ping this often; a peer that does not answer within another
    /// interval is dropped. `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// How long to wait for the peer's Close after ours, and for our last
    /// bytes to drain, before dropping the connection.
    pub close_timeout: Duration,
    /// permessage-deflate, when negotiated.
    pub deflate: Option<extension::DeflateParams>,
    /// The subprotocol selected in the handshake, if any.
    pub protocol: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            max_message: 16 << 20,
            max_output: 4 << 20,
            ping_interval: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            deflate: None,
            protocol: None,
        }
    }
}

/// An accepted upgrade: the application for the session and its settings,
/// produced by the engine's handshake.
#[derive(Debug)]
pub struct Upgrade {
    pub app: Box<dyn WsApp>,
    pub config: SessionConfig,
}
