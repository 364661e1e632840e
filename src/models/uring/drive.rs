//! One connection on the ring: what the engine offers (a send of all its
//! queued bytes, a `sendfile` of a body, a shutdown, a close), the receive
//! kept armed while the engine wants input, and what each completion means
//! for it. A closed connection keeps its slot until its last operation
//! completes; only then are its socket and admission dropped.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::worker::Io;
use crate::engine::{Action, Env, Send};
use crate::models::driver::Admission;
use crate::reactor::slab::Token;
use crate::reactor::State;
use crate::sys::socket::{would_block, Stream};
use crate::sys::uring::{Completion, Op};
use crate::telemetry::HttpObserver;
use crate::tls::Session;

/// Where a connection's multishot receive is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recv {
    Idle,
    Armed,
    /// Cancel submitted; its last completion is still to come.
    Cancelling,
}

pub struct Conn {
    stream: Stream,
    /// The engine, behind the TLS layer when the server serves HTTPS: the
    /// ring lends out and takes back the bytes either one queues.
    pub engine: Session<HttpObserver>,
    /// The earliest timer entry this connection has in the heap.
    pub scheduled: Option<Instant>,
    /// Its place under `--max-connections`, given back with the slot.
    _admission: Admission,
    recv: Recv,
    /// A send is in flight (the ring holds the engine's bytes).
    sending: bool,
    /// A poll for writability is in flight (a `sendfile` found no room).
    polling: bool,
    /// The engine is finished; the slot waits for the last completion.
    closing: bool,
    /// The peer's end of stream (or an error) was seen: no more receives.
    eof: bool,
    /// The end of stream came while a send was in flight: it is delivered
    /// once the send completes, as a readiness loop would read it only
    /// after writing (so a WebSocket's Close reply is not cut off).
    eof_pending: bool,
    /// The buffer handed to the engine when it lends its bytes out.
    spare: Vec<u8>,
}

impl Conn {
    pub fn new(stream: Stream, engine: Session<HttpObserver>, admission: Admission) -> Conn {
        Conn {
            stream,
            engine,
            scheduled: None,
            _admission: admission,
            recv: Recv::Idle,
            sending: false,
            polling: false,
            closing: false,
            eof: false,
            eof_pending: false,
            spare: Vec::new(),
        }
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Gives back what an idle connection need not hold: the engine's
    /// buffers and the spare one kept for the next send.
    pub fn shrink(&mut self) {
        self.engine.shrink();
        if self.engine.is_idle() && !self.sending {
            self.spare = Vec::new();
        }
    }

    fn idle_in_kernel(&self) -> bool {
        self.recv == Recv::Idle && !self.sending && !self.polling
    }
}

impl Io {
    /// Runs a connection as far as it goes without waiting for the kernel.
    pub fn drive(&mut self, token: Token, env: &mut Env<'_, HttpObserver>) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        if c.closing {
            return;
        }
        loop {
            if c.eof_pending && !c.sending {
                c.eof_pending = false;
                c.engine.receive_eof(env);
            }
            match c.engine.poll(env) {
                Action::Send(Send::Bytes { more, .. }) => {
                    if c.sending {
                        break;
                    }
                    // Everything queued goes in one send: a pipelined
                    // batch of answers is one write, as in the epoll loop.
                    let spare = std::mem::take(&mut c.spare);
                    if let Some(buf) = c.engine.take_bytes(spare) {
                        if self
                            .ring
                            .send(c.stream.as_fd(), buf, more, token.0)
                            .is_err()
                        {
                            return self.close(token, env);
                        }
                        c.sending = true;
                    }
                    break;
                }
                Action::Send(Send::File { file, offset, len }) => {
                    if c.polling {
                        break;
                    }
                    let mut at = offset;
                    let count = len.min(1 << 30) as usize;
                    match c.stream.sendfile(&**file, &mut at, count) {
                        // The file shrank under us: the promised length
                        // cannot be met, and padding would be a lie.
                        Ok(0) => return self.close(token, env),
                        Ok(n) => {
                            self.metrics.bytes_sent(n as u64);
                            c.engine.advance(env, n);
                        }
                        Err(e) if would_block(&e) => {
                            if self.ring.poll_writable(c.stream.as_fd(), token.0).is_err() {
                                return self.close(token, env);
                            }
                            c.polling = true;
                            break;
                        }
                        Err(_) => return self.close(token, env),
                    }
                }
                Action::ShutdownWrite => {
                    if c.stream.shutdown_write().is_err() {
                        return self.close(token, env);
                    }
                    c.engine.write_shut(env);
                }
                Action::Close => return self.close(token, env),
                Action::Wait => break,
            }
        }
        // A multishot receive delivers whatever comes; it is cancelled
        // while the engine wants no input (answers owed first, or too much
        // buffered) and armed again when it does.
        let want = !c.eof && c.engine.wants_read(env);
        match c.recv {
            Recv::Idle if want => {
                if self.ring.recv_multi(c.stream.as_fd(), token.0).is_err() {
                    return self.close(token, env);
                }
                c.recv = Recv::Armed;
            }
            Recv::Armed if !want => {
                let _ = self.ring.cancel(Op::Recv, token.0);
                c.recv = Recv::Cancelling;
            }
            _ => {}
        }
        let drained = c.engine.take_drained();
        if drained > 0 {
            self.life
                .drained
                .fetch_add(u64::from(drained), Ordering::AcqRel);
        }
        if let Some(at) = c.engine.next_deadline() {
            if c.scheduled.is_none_or(|s| at < s) {
                c.scheduled = Some(at);
                self.schedule(token, at);
            }
        }
    }

    /// A completion of one of a connection's operations.
    pub fn on_conn(&mut self, done: Completion, env: &mut Env<'_, HttpObserver>) {
        let token = Token(done.token);
        let Some(c) = self.conns.get_mut(token) else {
            // Cannot happen (a slot outlives its operations); the buffer
            // goes back all the same.
            if let Some(bid) = done.buffer {
                self.ring.recycle(bid);
            }
            return;
        };
        let mut failed = false;
        match done.op {
            Op::Recv => {
                if !done.more {
                    c.recv = Recv::Idle;
                }
                if done.result > 0 {
                    if let Some(bid) = done.buffer {
                        if !c.closing {
                            let data = self.ring.received(bid, done.result as usize);
                            c.engine.receive(env, data);
                        }
                        self.ring.recycle(bid);
                    }
                } else if done.result == 0 {
                    c.eof = true;
                    if c.sending {
                        c.eof_pending = true;
                    } else if !c.closing {
                        c.engine.receive_eof(env);
                    }
                } else if !matches!(-done.result, libc::ENOBUFS | libc::ECANCELED) {
                    // Reset by the peer, or worse: nothing more to read.
                    c.eof = true;
                    failed = true;
                }
            }
            Op::Send => {
                c.sending = false;
                let buf = done.sent.unwrap_or_default();
                if done.result > 0 && !c.closing {
                    let n = done.result as usize;
                    self.metrics.bytes_sent(n as u64);
                    c.spare = c.engine.give_back(env, buf, n);
                } else if !c.closing {
                    c.spare = c.engine.give_back(env, buf, 0);
                    failed = true;
                }
            }
            Op::Poll => {
                c.polling = false;
                failed = done.result < 0 && done.result != -libc::ECANCELED;
            }
            _ => {}
        }
        if failed {
            self.close(token, env);
        }
        self.reap(token);
        self.drive(token, env);
    }

    /// Drops a connection for the engine (after it has accounted for what
    /// it had in flight) and cancels what the kernel still holds of it;
    /// the slot goes when the last completion arrives.
    pub fn close(&mut self, token: Token, env: &mut Env<'_, HttpObserver>) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        crate::models::let_go(&c.stream, &c.engine);
        // A forced stop owns what it cuts short; otherwise the peer left.
        c.engine.finish(env, self.seen == State::Forced);
        let drained = c.engine.take_drained();
        if drained > 0 {
            self.life
                .drained
                .fetch_add(u64::from(drained), Ordering::AcqRel);
        }
        self.metrics.connection_closed();
        if c.recv == Recv::Armed {
            let _ = self.ring.cancel(Op::Recv, token.0);
            c.recv = Recv::Cancelling;
        }
        if c.sending {
            let _ = self.ring.cancel(Op::Send, token.0);
        }
        if c.polling {
            let _ = self.ring.cancel(Op::Poll, token.0);
        }
        self.reap(token);
    }

    /// Frees a closed connection's slot once the kernel holds nothing of it.
    fn reap(&mut self, token: Token) {
        if self
            .conns
            .get_mut(token)
            .is_some_and(|c| c.closing && c.idle_in_kernel())
        {
            self.conns.remove(token);
        }
    }
}
