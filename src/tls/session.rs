//! What a transport holds per connection: the engine alone (plain HTTP),
//! the engine behind the userspace TLS layer, or the engine over a socket
//! whose records the kernel encrypts (kTLS, after [`Session::hand_off`]).
//! All answer the same transport-facing calls, so a transport drives a
//! [`Session`] without knowing which it is; only a kTLS session must be
//! read with [`crate::sys::ktls::recv_record`], since records that are not
//! application data arrive with their type beside them.

use std::time::Instant;

use std::os::fd::AsRawFd;

use super::kernel::{HandOff, KernelSession};
use super::layer::TlsConnection;
use crate::engine::{Action, Connection, DrainOutcome, Env, Observer};

/// One connection as a transport sees it. The plain engine is kept
/// inline: boxing it would cost every plain connection an indirection.
#[allow(clippy::large_enum_variant)]
pub enum Session<O: Observer> {
    Plain(Connection<O>),
    Tls(Box<TlsConnection<O>>),
    Kernel(Box<KernelSession<O>>),
}

macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Session::Plain($c) => $e,
            Session::Tls($c) => $e,
            Session::Kernel($c) => $e,
        }
    };
}

impl<O: Observer> Session<O> {
    pub fn engine(&self) -> &Connection<O> {
        match self {
            Session::Plain(c) => c,
            Session::Tls(t) => t.engine(),
            Session::Kernel(k) => k.engine(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Session::Tls(_) | Session::Kernel(_))
    }

    /// The records of this session are the kernel's (read them with
    /// `recv_record` and give them to [`Session::receive_record`]).
    pub fn is_kernel(&self) -> bool {
        matches!(self, Session::Kernel(_))
    }

    /// A userspace TLS session at the point where its keys may go to the
    /// kernel (see [`TlsConnection::kernel_ready`]).
    pub fn kernel_ready(&self) -> bool {
        matches!(self, Session::Tls(t) if t.kernel_ready())
    }

    /// Gives a ready TLS session's keys to the kernel for socket `fd`
    /// (when its suite uses one of `ciphers`); any other session comes
    /// back as it was (`None`).
    pub fn hand_off(self, fd: &impl AsRawFd, ciphers: &[u16]) -> (Session<O>, Option<HandOff>) {
        match self {
            Session::Tls(t) if t.kernel_ready() => {
                let (s, r) = super::kernel::hand_off(t, fd, ciphers);
                (s, Some(r))
            }
            other => (other, None),
        }
    }

    /// A record read from a kTLS socket, with its content type; for other
    /// sessions, plain input.
    pub fn receive_record(&mut self, env: &mut Env<'_, O>, record_type: u8, input: &[u8]) {
        match self {
            Session::Kernel(k) => k.receive_record(env, record_type, input),
            other => other.receive(env, input),
        }
    }

    pub fn receive(&mut self, env: &mut Env<'_, O>, input: &[u8]) {
        each!(self, c => c.receive(env, input))
    }

    pub fn receive_eof(&mut self, env: &mut Env<'_, O>) {
        each!(self, c => c.receive_eof(env))
    }

    pub fn poll(&mut self, env: &mut Env<'_, O>) -> Action<'_> {
        each!(self, c => c.poll(env))
    }

    pub fn advance(&mut self, env: &mut Env<'_, O>, n: usize) {
        each!(self, c => c.advance(env, n))
    }

    /// For a completion transport: see [`Connection::take_bytes`].
    pub fn take_bytes(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        each!(self, c => c.take_bytes(spare))
    }

    /// See [`Connection::give_back`].
    pub fn give_back(&mut self, env: &mut Env<'_, O>, buf: Vec<u8>, n: usize) -> Vec<u8> {
        each!(self, c => c.give_back(env, buf, n))
    }

    pub fn write_shut(&mut self, env: &Env<'_, O>) {
        each!(self, c => c.write_shut(env))
    }

    pub fn wants_read(&self, env: &Env<'_, O>) -> bool {
        each!(self, c => c.wants_read(env))
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        each!(self, c => c.next_deadline())
    }

    pub fn on_timer(&mut self, env: &mut Env<'_, O>) {
        each!(self, c => c.on_timer(env))
    }

    pub fn drain(&mut self, env: &mut Env<'_, O>) -> DrainOutcome {
        each!(self, c => c.drain(env))
    }

    pub fn finish(&mut self, env: &mut Env<'_, O>, forced: bool) {
        each!(self, c => c.finish(env, forced))
    }

    pub fn take_drained(&mut self) -> u32 {
        each!(self, c => c.take_drained())
    }

    pub fn is_closed(&self) -> bool {
        each!(self, c => c.is_closed())
    }

    /// See [`Connection::gave_up`].
    pub fn gave_up(&self) -> bool {
        self.engine().gave_up()
    }

    pub fn is_idle(&self) -> bool {
        each!(self, c => c.is_idle())
    }

    pub fn shrink(&mut self) {
        each!(self, c => c.shrink())
    }
}
