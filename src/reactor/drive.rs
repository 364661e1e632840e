//! Driving one connection: write what the engine offers until the socket
//! is full, read while the engine wants input, and schedule the engine's
//! next deadline. Readiness is edge-triggered, so a drive runs until the
//! socket says `EAGAIN` (or the engine stops wanting input: the next drive
//! reads again, so nothing readable is forgotten).

use std::sync::atomic::Ordering;

use super::slab::Token;
use super::worker::Io;
use crate::engine::{Action, Env, Send};
use crate::sys::socket::would_block;
use crate::telemetry::HttpObserver;

impl Io {
    /// Runs a connection as far as it can go without blocking. `hangup`
    /// when the event reported the peer's FIN or an error, which must be
    /// read to be seen.
    pub fn drive(&mut self, token: Token, env: &mut Env<'_, HttpObserver>, hangup: bool) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
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
                        Ok(0) => return self.close(token, env),
                        Ok(n) => {
                            self.metrics.bytes_sent(n as u64);
                            c.engine.advance(env, n);
                        }
                        Err(e) if would_block(&e) => break, // wait for EPOLLOUT
                        Err(_) => return self.close(token, env),
                    }
                }
                Action::Send(Send::File { file, offset, len }) => {
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
                        Err(e) if would_block(&e) => break,
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
                Action::Wait => {
                    if !c.engine.wants_read(env) || (emptied && !hangup) {
                        break;
                    }
                    match c.stream.read(&mut self.scratch) {
                        Ok(0) => c.engine.receive_eof(env),
                        Ok(n) => {
                            emptied = n < self.scratch.len();
                            c.engine.receive(env, &self.scratch[..n]);
                        }
                        Err(e) if would_block(&e) => break,
                        Err(_) => return self.close(token, env),
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
    }

    /// Drops a connection, after the engine has accounted for what it had
    /// in flight. Dropping the descriptor removes it from the epoll set.
    pub fn close(&mut self, token: Token, env: &mut Env<'_, HttpObserver>) {
        let Some(mut c) = self.conns.remove(token) else {
            return;
        };
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
