//! WebSocket (RFC 6455) support: the application-facing contract.
//!
//! This module owns what an application sees of a WebSocket session: the
//! messages it receives and the outbox it writes into. The protocol machinery
//! (handshake, framing, close handshake, permessage-deflate) is sans-I/O and
//! lives in submodules; the reactor drives it with bytes.

use std::time::Duration;

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
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {}

/// An accepted upgrade: the application for the session and its settings.
/// Carried out of a handler inside the 101 response.
#[derive(Debug)]
pub struct Upgrade {
    pub app: Box<dyn WsApp>,
    pub config: SessionConfig,
}
