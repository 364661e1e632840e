//! Built-in WebSocket applications.
//!
//! [`EchoApp`] serves `/ws/echo`. The `/ws/stats` application lives with the
//! service layer, which owns the stats JSON; it uses
//! [`WsApp::tick_interval`] and
//! [`WsApp::on_tick`].

use super::{Message, Outbox, WsApp};

/// Sends every text and binary message back unchanged.
#[derive(Debug, Default)]
pub struct EchoApp;

impl WsApp for EchoApp {
    fn on_message(&mut self, msg: Message, out: &mut Outbox) {
        out.send(msg);
    }
}
