//! An in-memory transport: drives one [`Connection`] with bytes the test
//! sends and collects what the engine would put on the wire, with a clock
//! the test moves and a peer that reads as slowly as the test says. No
//! socket, no thread: connection behaviour becomes table tests, and the
//! fuzz target drives the engine through the same loop a real transport
//! runs.

use std::net::SocketAddr;
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use super::{Action, Config, Connection, DrainOutcome, Env, Observer, Send, Unobserved};
use crate::app::Handler;

/// A fixed `Date` value: output is reproducible.
pub const DATE: &[u8] = b"Thu, 01 Jan 2026 00:00:00 GMT";

/// One connection over memory.
pub struct MemoryTransport<O: Observer = Unobserved> {
    pub conn: Connection<O>,
    pub handler: Box<dyn Handler>,
    pub observer: O,
    pub config: Config,
    pub now: Instant,
    pub draining: bool,
    /// Everything the peer has received.
    pub received: Vec<u8>,
    /// Bytes the peer will still read before its window is full; `None`
    /// reads everything at once.
    pub window: Option<usize>,
    /// The engine asked to shut the write side, and we did.
    pub write_shut: bool,
    /// The engine closed the connection.
    pub closed: bool,
    /// Sends the engine made (writes and file regions), to check batching.
    pub sends: usize,
}

impl MemoryTransport<Unobserved> {
    pub fn new(handler: Box<dyn Handler>, config: Config) -> MemoryTransport<Unobserved> {
        MemoryTransport::with_observer(handler, config, Unobserved)
    }
}

impl<O: Observer> MemoryTransport<O> {
    pub fn with_observer(handler: Box<dyn Handler>, config: Config, observer: O) -> Self {
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
        let now = Instant::now();
        let mut handler = handler;
        let mut observer = observer;
        let conn = {
            let env = Env {
                handler: &mut *handler,
                observer: &mut observer,
                config: &config,
                now,
                date: DATE,
                worker: 0,
                draining: false,
            };
            Connection::new(peer, addr, &env)
        };
        MemoryTransport {
            conn,
            handler,
            observer,
            config,
            now,
            draining: false,
            received: Vec::new(),
            window: None,
            write_shut: false,
            closed: false,
            sends: 0,
        }
    }

    fn with_env<R>(&mut self, f: impl FnOnce(&mut Connection<O>, &mut Env<'_, O>) -> R) -> R {
        let mut env = Env {
            handler: &mut *self.handler,
            observer: &mut self.observer,
            config: &self.config,
            now: self.now,
            date: DATE,
            worker: 0,
            draining: self.draining,
        };
        f(&mut self.conn, &mut env)
    }

    /// The peer sends bytes (dropped, as a socket would, once closed).
    pub fn send(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.with_env(|c, env| c.receive(env, bytes));
        }
        self.run();
    }

    /// The peer closes its write side.
    pub fn send_eof(&mut self) {
        if !self.closed {
            self.with_env(|c, env| c.receive_eof(env));
        }
        self.run();
    }

    /// Moves the clock and fires what is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if !self.closed && self.conn.next_deadline().is_some_and(|d| d <= self.now) {
            self.with_env(|c, env| c.on_timer(env));
        }
        self.run();
    }

    /// Moves the clock to the engine's next deadline, if any; false when
    /// there is none.
    pub fn advance_to_deadline(&mut self) -> bool {
        match self.conn.next_deadline() {
            Some(at) if !self.closed => {
                let by = at.saturating_duration_since(self.now);
                self.advance(by);
                true
            }
            _ => false,
        }
    }

    /// A graceful drain begins.
    pub fn drain(&mut self) -> DrainOutcome {
        self.draining = true;
        let outcome = if self.closed {
            DrainOutcome::default()
        } else {
            self.with_env(|c, env| c.drain(env))
        };
        self.run();
        outcome
    }

    /// The peer's window opens by `n` bytes (a slow reader reads).
    pub fn peer_reads(&mut self, n: usize) {
        if let Some(w) = &mut self.window {
            *w += n;
        }
        self.run();
    }

    /// Takes what the peer received so far.
    pub fn take_received(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }

    /// Does what the engine asks until it waits or the peer's window is full.
    pub fn run(&mut self) {
        // Bounded: every step either moves bytes or changes state.
        for _ in 0..1_000_000 {
            if self.closed {
                return;
            }
            let window = self.window;
            let step = self.with_env(|c, env| match c.poll(env) {
                Action::Send(Send::Bytes { data, .. }) => {
                    let n = window.map_or(data.len(), |w| w.min(data.len()));
                    if n == 0 {
                        return Step::Blocked;
                    }
                    let bytes = data[..n].to_vec();
                    c.advance(env, n);
                    Step::Sent(bytes)
                }
                Action::Send(Send::File { file, offset, len }) => {
                    let n = window.map_or(len, |w| (w as u64).min(len)) as usize;
                    if n == 0 {
                        return Step::Blocked;
                    }
                    let mut bytes = vec![0; n.min(1 << 20)];
                    match file.read_at(&mut bytes, offset) {
                        Ok(0) | Err(_) => {
                            c.finish(env, false);
                            Step::Closed
                        }
                        Ok(got) => {
                            bytes.truncate(got);
                            c.advance(env, got);
                            Step::Sent(bytes)
                        }
                    }
                }
                Action::ShutdownWrite => {
                    c.write_shut(env);
                    Step::Shut
                }
                Action::Close => {
                    c.finish(env, false);
                    Step::Closed
                }
                Action::Wait => Step::Blocked,
            });
            match step {
                Step::Sent(bytes) => {
                    self.sends += 1;
                    if let Some(w) = &mut self.window {
                        *w -= bytes.len();
                    }
                    self.received.extend_from_slice(&bytes);
                }
                Step::Shut => self.write_shut = true,
                Step::Closed => self.closed = true,
                Step::Blocked => return,
            }
        }
        panic!("the engine did not settle");
    }

    /// The engine would read more input now.
    pub fn wants_read(&mut self) -> bool {
        let closed = self.closed;
        !closed && self.with_env(|c, env| c.wants_read(env))
    }

    /// Drops the connection as a transport would on a reset or a forced stop.
    pub fn abort(&mut self, forced: bool) {
        self.with_env(|c, env| c.finish(env, forced));
        self.closed = true;
    }
}

enum Step {
    Sent(Vec<u8>),
    Shut,
    Closed,
    Blocked,
}
