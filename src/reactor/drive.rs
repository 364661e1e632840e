//! Driving one connection: write what the engine offers until the socket
//! is full, read while the engine wants input, and schedule the engine's
//! next deadline. Readiness is edge-triggered, so a drive runs until the
//! socket says `EAGAIN` (or the engine stops wanting input: the next drive
//! reads again, so nothing readable is forgotten).
//!
//! A TLS connection whose handshake is done and sent is offered to the
//! kernel (kTLS) once, before its next read, so that everything still in
//! the socket is the kernel's to decrypt; after that it is read with
//! `recv_record` and written, file bodies by `sendfile`, like plain HTTP.

use std::sync::atomic::Ordering;

use super::slab::Token;
use super::worker::Io;
use crate::engine::{Action, Env, Send};
use crate::sys::ktls::{recv_record, APPLICATION_DATA};
use crate::sys::socket::would_block;
use crate::telemetry::HttpObserver;

impl Io {
    /// Runs a connection as far as it can go without blocking. `hangup`
    /// when the event reported the peer's FIN or an error, which must be
    /// read to be seen.
    pub fn drive(&mut self, token: Token, env: &mut Env<'_, HttpObserver>, hangup: bool) {
        if self.drive_until_handoff(token, env, hangup) {
            self.hand_off(token);
            // Tried once per connection, so this recursion ends here.
            self.drive(token, env, hangup);
        }
    }

    /// Offers a connection's keys to the kernel; the session carries on
    /// in user space when that cannot be (the reason is logged and
    /// counted by the TLS layer).
    fn hand_off(&mut self, token: Token) {
        let ciphers = self.tls.as_ref().map_or(&[][..], |a| a.kernel_ciphers());
        self.conns.replace_with(token, |mut c| {
            c.handoff_tried = true;
            let (engine, _) = c.engine.hand_off(&c.stream, ciphers);
            c.engine = engine;
            c
        });
    }

    /// [`Io::drive`]; true when it stopped for a kernel TLS hand-off.
    fn drive_until_handoff(
        &mut self,
        token: Token,
        env: &mut Env<'_, HttpObserver>,
        hangup: bool,
    ) -> bool {
        let Some(c) = self.conns.get_mut(token) else {
            return false;
        };
        let mut hand_off = false;
        // A read that returned less than the buffer emptied the socket: with
        // edge-triggered readiness, later data raises a new event, so a
        // second read that would only say EAGAIN is skipped.
        let mut emptied = false;
        loop {
            match c.engine.poll(env) {
                Action::Send(Send::Bytes { data, more }) => {
                    let sent = if more {
                        c.stream.write_more(data)
                    } else {
                        c.stream.write(data)
                    };
                    match sent {
                        // A stream socket never takes nothing from a
                        // non-empty buffer; if it did, stop rather than spin.
                        Ok(0) => {
                            self.close(token, env);
                            return false;
                        }
                        Ok(n) => {
                            self.metrics.bytes_sent(n as u64);
                            c.engine.advance(env, n);
                        }
                        Err(e) if would_block(&e) => break, // wait for EPOLLOUT
                        Err(_) => {
                            self.close(token, env);
                            return false;
                        }
                    }
                }
                Action::Send(Send::File { file, offset, len }) => {
                    let mut at = offset;
                    let count = len.min(1 << 30) as usize;
                    match c.stream.sendfile(&**file, &mut at, count) {
                        // The file shrank under us: the promised length
                        // cannot be met, and padding would be a lie.
                        Ok(0) => {
                            self.close(token, env);
                            return false;
                        }
                        Ok(n) => {
                            self.metrics.bytes_sent(n as u64);
                            c.engine.advance(env, n);
                        }
                        Err(e) if would_block(&e) => break,
                        Err(_) => {
                            self.close(token, env);
                            return false;
                        }
                    }
                }
                Action::ShutdownWrite => {
                    if c.stream.shutdown_write().is_err() {
                        self.close(token, env);
                        return false;
                    }
                    c.engine.write_shut(env);
                }
                Action::Close => {
                    self.close(token, env);
                    return false;
                }
                Action::Wait => {
                    if self.ktls && !c.handoff_tried && c.engine.kernel_ready() {
                        hand_off = true;
                        break;
                    }
                    if !c.engine.wants_read(env) || (emptied && !hangup) {
                        break;
                    }
                    let read = if c.engine.is_kernel() {
                        recv_record(&c.stream, &mut self.scratch)
                    } else {
                        c.stream
                            .read(&mut self.scratch)
                            .map(|n| (n, APPLICATION_DATA))
                    };
                    match read {
                        Ok((0, APPLICATION_DATA)) => c.engine.receive_eof(env),
                        Ok((n, kind)) => {
                            // A kTLS read ends at a record boundary, not
                            // only when the socket is empty.
                            emptied = n < self.scratch.len() && !c.engine.is_kernel();
                            c.engine.receive_record(env, kind, &self.scratch[..n]);
                        }
                        Err(e) if would_block(&e) => break,
                        Err(_) => {
                            self.close(token, env);
                            return false;
                        }
                    }
                }
            }
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
                self.timers.schedule(at, token);
            }
        }
        hand_off
    }

    /// Drops a connection, after the engine has accounted for what it had
    /// in flight. Dropping the descriptor removes it from the epoll set.
    pub fn close(&mut self, token: Token, env: &mut Env<'_, HttpObserver>) {
        let Some(mut c) = self.conns.remove(token) else {
            return;
        };
        crate::models::let_go(&c.stream, &c.engine);
        // A forced stop owns what it cuts short; otherwise the peer left.
        c.engine.finish(env, self.seen == super::State::Forced);
        let drained = c.engine.take_drained();
        if drained > 0 {
            self.life
                .drained
                .fetch_add(u64::from(drained), Ordering::AcqRel);
        }
        self.metrics.connection_closed();
    }
}
