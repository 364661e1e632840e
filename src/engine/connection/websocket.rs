//! The WebSocket side of a connection: after a `101`, every byte belongs to
//! a [`Session`] (the sans-I/O RFC 6455 machine in `crate::ws`). This part
//! of the engine feeds it input and time, offers its output to the
//! transport, counts its messages for telemetry, and ends the connection
//! when the session's close handshake is over. A panicking WebSocket
//! application costs its own connection only.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Connection, Phase};
use crate::engine::observe::{Limit, Observer};
use crate::engine::Env;
use crate::ws::{Session, Upgrade};

pub(super) struct WsConn<W> {
    pub session: Session,
    pub span: Option<W>,
}

impl<O: Observer> Connection<O> {
    /// The `101` is queued: every later byte is the session's.
    pub(super) fn ws_start(
        &mut self,
        env: &mut Env<'_, O>,
        upgrade: Upgrade,
        span: O::WsSpan,
        closing: bool,
    ) {
        let mut session = Session::from_upgrade(upgrade, env.now);
        if closing {
            session.start_close(1001, "server shutting down", env.now);
        }
        self.ws = Some(Box::new(WsConn {
            session,
            span: Some(span),
        }));
        self.phase = Phase::Busy;
    }

    pub(super) fn ws_receive(&mut self, env: &mut Env<'_, O>, input: &[u8]) {
        let Some(ws) = &mut self.ws else { return };
        let now = env.now;
        let session = &mut ws.session;
        if catch_unwind(AssertUnwindSafe(|| session.receive(input, now))).is_err() {
            self.ws_panicked(env);
        }
    }

    pub(super) fn ws_timer(&mut self, env: &mut Env<'_, O>) {
        let Some(ws) = &mut self.ws else { return };
        let now = env.now;
        if ws.session.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        let session = &mut ws.session;
        if catch_unwind(AssertUnwindSafe(|| session.on_timer(now))).is_err() {
            self.ws_panicked(env);
        }
    }

    /// True when the session has output to offer. Once its close handshake
    /// is over, ends the session and sets the connection to close.
    pub(super) fn ws_poll(&mut self, env: &mut Env<'_, O>) -> bool {
        let Some(ws) = &mut self.ws else { return false };
        if let Some(span) = &mut ws.span {
            let (received, sent) = ws.session.take_counts();
            if received + sent > 0 {
                env.observer.ws_messages(span, received, sent);
            }
        }
        if ws.session.abandoned() {
            tracing::info!(peer = %self.peer, "closed: the WebSocket peer left a Ping unanswered");
            self.end_ws(env, false);
            self.gave_up = true;
            self.closed = true;
            return false;
        }
        if ws.session.should_close_transport() {
            self.end_ws(env, false);
            // Half-close first so unread input cannot reset our Close away.
            self.close_after_write = true;
            self.linger = true;
            return false;
        }
        !ws.session.output().is_empty()
    }

    /// Ends the session, if any: last counts, the span, the drain's count.
    pub(super) fn end_ws(&mut self, env: &mut Env<'_, O>, forced: bool) {
        let Some(mut ws) = self.ws.take() else { return };
        let (received, sent) = ws.session.take_counts();
        let (sent_code, received_code) = ws.session.close_codes();
        tracing::debug!(peer = %self.peer, sent = ?sent_code, received = ?received_code, "websocket closed");
        let limit = match sent_code {
            Some(crate::ws::close::TOO_BIG) => Some(Limit::WsMessageTooBig),
            Some(crate::ws::close::POLICY) => Some(Limit::WsOutputFull),
            _ => None,
        };
        if let Some(limit) = limit {
            env.observer.limit_refused(limit);
        }
        if let Some(mut span) = ws.span.take() {
            if received + sent > 0 {
                env.observer.ws_messages(&mut span, received, sent);
            }
            env.observer.ws_closed(span, received_code.or(sent_code));
        }
        if self.draining && !forced {
            self.drained += 1;
        }
    }

    fn ws_panicked(&mut self, env: &mut Env<'_, O>) {
        tracing::error!(
            worker = env.worker,
            "websocket application panicked; connection closed"
        );
        self.end_ws(env, false);
        self.closed = true;
    }
}
