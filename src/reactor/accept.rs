//! The listener side of a worker: accept bursts, the `--max-connections`
//! refusal, and running out of descriptors (EMFILE/ENFILE) without spinning.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::conn::Conn;
use super::worker::{Io, LISTENER};
use crate::admission::{Admission, Full};
use crate::engine::observe::Limit;
use crate::engine::{self, Connection, Env};
use crate::reserve::{self, Refusal, Reserve};
use crate::sys::epoll::Interest;
use crate::sys::socket::{Accepted, Stream};
use crate::telemetry::HttpObserver;

/// Pause of the accept loop when descriptors run out and no reserve is left.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections taken per listener event, so that one busy listener cannot
/// starve the connections already open.
const ACCEPT_BURST: usize = 64;

impl Io {
    pub fn accept_burst(&mut self, env: &mut Env<'_, HttpObserver>) {
        for _ in 0..ACCEPT_BURST {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(Accepted::Stream(stream, peer)) => self.admit(stream, peer, env),
                Ok(Accepted::None) => return,
                Err(e) if reserve::out_of_descriptors(&e) => {
                    self.out_of_descriptors(&e, env);
                    return;
                }
                Err(e) => {
                    tracing::warn!(worker = self.id, error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    pub fn admit(&mut self, stream: Stream, peer: SocketAddr, env: &mut Env<'_, HttpObserver>) {
        let Some(stream) = Reserve::process().reclaim(stream, |s| self.refuse(s)) else {
            return;
        };
        let admission = match Admission::admit(&self.life, self.max_connections, peer.ip()) {
            Ok(a) => a,
            Err(full) => {
                if full == Full::Client {
                    self.metrics.limit_refused(Limit::ConnectionsPerClient);
                    self.refuse_with(&stream, engine::too_many_from_client());
                } else {
                    self.refuse(&stream);
                }
                let _ = stream.shutdown_write();
                return;
            }
        };
        let _ = stream.set_nodelay();
        // A listener bound to one address already says where connections
        // arrive; only a wildcard bind needs getsockname.
        let local = match self.local {
            Some(addr) => addr,
            None => stream.local_addr().unwrap_or(peer),
        };
        let engine = match crate::tls::wrap(self.tls.as_deref(), Connection::new(peer, local, env))
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "TLS session not created");
                return;
            }
        };
        let token = self.conns.insert_with(|_| Conn {
            stream,
            engine,
            scheduled: None,
            handoff_tried: false,
            _admission: admission,
        });
        let registered = match self.conns.get_mut(token) {
            Some(c) => self.poll.add(&c.stream, token.0, Interest::READ_WRITE_EDGE),
            None => return,
        };
        if let Err(e) = registered {
            tracing::warn!(error = %e, "epoll registration failed");
            self.close(token, env);
            return;
        }
        self.metrics.connection_accepted();
        // Data often arrives with the handshake's last ACK: try it now.
        self.drive(token, env, false);
    }

    /// Answers a connection the server will not serve with the canned 503.
    fn refuse(&self, stream: &Stream) {
        self.refuse_with(stream, &self.overloaded);
    }

    fn refuse_with(&self, stream: &Stream, answer: &[u8]) {
        self.metrics.connection_rejected();
        // Best effort: the socket buffer of a fresh connection has room.
        // A TLS client could not read a plaintext answer: it is just closed.
        if self.tls.is_none() {
            let _ = stream.write(answer);
        }
    }

    /// EMFILE/ENFILE: one queued connection is refused through the
    /// process's spare descriptor; without a spare, stop watching the
    /// listener briefly rather than spin on it.
    fn out_of_descriptors(&mut self, e: &io::Error, env: &Env<'_, HttpObserver>) {
        let Some(listener) = &self.listener else {
            return;
        };
        let refusal = Reserve::process().refuse_one(|| listener.accept(), |s| self.refuse(s));
        if refusal == Refusal::NoSpare {
            let _ = self.poll.delete(&**listener);
            self.accept_paused_until = Some(env.now + ACCEPT_BACKOFF);
        }
        tracing::warn!(worker = self.id, error = %e, ?refusal, "out of file descriptors");
    }

    /// Watches the listener again once an EMFILE pause is over.
    pub fn resume_accepting(&mut self, env: &Env<'_, HttpObserver>) {
        if self.accept_paused_until.is_some_and(|t| env.now >= t) {
            self.accept_paused_until = None;
            if let Some(l) = &self.listener {
                let _ = self.poll.add(&**l, LISTENER, self.listen_interest);
            }
        }
    }
}
