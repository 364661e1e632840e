//! A TLS connection after its keys went to the kernel (kTLS): the engine
//! is driven with plaintext straight over the socket, so file bodies go
//! out with `sendfile` exactly as in plain HTTP, and the kernel encrypts
//! and decrypts every record. What is left for user space lives here:
//! rustls' [`KernelConnection`] (it derives the next traffic secret on a
//! KeyUpdate), the record counts that keep each key under its suite's
//! confidentiality limit, the non-data records that arrive with their
//! type in a control message (close_notify, other alerts, KeyUpdate), and
//! our own close_notify. [`hand_off`] turns a finished userspace
//! handshake into a [`KernelSession`], or says why not.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{CipherSuite, ProtocolVersion, SupportedCipherSuite};

use super::layer::TlsConnection;
use super::session::Session;
use crate::engine::{Action, Connection, DrainOutcome, Env, Observer};
use crate::sys::ktls::{self, Direction, APPLICATION_DATA};
use crate::telemetry::metrics::TlsMetrics;

/// TLS content types (RFC 8446 §5.1).
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
/// Handshake message type of KeyUpdate (RFC 8446 §4.6.3).
const KEY_UPDATE: u8 = 24;
/// Alert descriptions we send or act on.
const CLOSE_NOTIFY: u8 = 0;
const UNEXPECTED_MESSAGE: u8 = 10;
const USER_CANCELED: u8 = 90;
/// The largest plaintext a record carries.
const MAX_RECORD: usize = 16 * 1024;

/// The `result` label of `glasshouse_tls_ktls_handoffs_total`.
pub const HANDOFF_RESULTS: [&str; 3] = ["ok", "unsupported_suite", "failed"];

/// How one hand-off went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// The kernel holds both keys.
    Ok,
    /// The kernel cannot take this version or cipher: rustls carries on.
    UnsupportedSuite,
    /// A step failed. Before rustls gave up its state (attaching the ULP)
    /// the connection carries on in user space; after it (the keys would
    /// not install) it closes, since rustls cannot take its state back.
    Failed,
}

impl HandOff {
    pub fn label(self) -> &'static str {
        HANDOFF_RESULTS[self as usize]
    }
}

/// The kernel's cipher for a negotiated suite, if it has one.
pub fn kernel_cipher(suite: CipherSuite) -> Option<u16> {
    use CipherSuite::*;
    match suite {
        TLS13_AES_128_GCM_SHA256
        | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(ktls::TLS_CIPHER_AES_GCM_128),
        TLS13_AES_256_GCM_SHA384
        | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(ktls::TLS_CIPHER_AES_GCM_256),
        TLS13_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(ktls::TLS_CIPHER_CHACHA20_POLY1305),
        _ => None,
    }
}

/// The kernel cipher's name, for the start-up log.
pub fn cipher_name(cipher: u16) -> &'static str {
    match cipher {
        ktls::TLS_CIPHER_AES_GCM_128 => "AES-128-GCM",
        ktls::TLS_CIPHER_AES_GCM_256 => "AES-256-GCM",
        ktls::TLS_CIPHER_CHACHA20_POLY1305 => "ChaCha20-Poly1305",
        _ => "unknown",
    }
}

fn confidentiality_limit(suite: SupportedCipherSuite) -> u64 {
    match suite {
        SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
        SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
    }
}

/// Where a key stands against its suite's confidentiality limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Fresh,
    /// Past 3/4 of the limit: close at the next quiet moment (between
    /// requests), so that no answer is cut.
    WindDown,
    /// Within 1/16 of the limit: close now.
    Exhausted,
}

/// Records counted under one key. The kernel does not say how many
/// records a write became, so each write counts as many as its bytes
/// could fill plus one: an over-count, which only closes earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBudget {
    limit: u64,
    used: u64,
}

impl RecordBudget {
    /// `used` records went already (the sequence number at hand-off).
    pub fn new(limit: u64, used: u64) -> RecordBudget {
        RecordBudget { limit, used }
    }

    /// Counts a write or read of `bytes` (of at least one record).
    pub fn count_bytes(&mut self, bytes: usize) {
        self.count((bytes / MAX_RECORD) as u64 + 1);
    }

    pub fn count(&mut self, records: u64) {
        self.used = self.used.saturating_add(records);
    }

    /// A new key starts at sequence number 0.
    pub fn renew(&mut self) {
        self.used = 0;
    }

    pub fn state(&self) -> Budget {
        if self.used >= self.limit - self.limit / 16 {
            Budget::Exhausted
        } else if self.used >= self.limit / 4 * 3 {
            Budget::WindDown
        } else {
            Budget::Fresh
        }
    }
}

/// What a non-data record received asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The peer's close_notify: the end of its input.
    CloseNotify,
    /// An alert to ignore (user_canceled precedes a close_notify).
    Ignore,
    /// One KeyUpdate per entry; `true` where the peer asks for ours.
    KeyUpdates(Vec<bool>),
    /// A fatal alert from the peer, or a record we must refuse: the
    /// connection ends (`Some` = the alert we send first).
    Fatal(Option<u8>),
}

/// Reads one non-application record. A server receives no other
/// post-handshake message than KeyUpdate (no client certificates are
/// asked for), and it must be whole (it is five bytes).
pub fn classify(record_type: u8, body: &[u8]) -> Control {
    match record_type {
        ALERT => match body {
            [_, CLOSE_NOTIFY] => Control::CloseNotify,
            [_, USER_CANCELED] => Control::Ignore,
            _ => Control::Fatal(None),
        },
        HANDSHAKE => {
            let mut updates = Vec::new();
            let mut rest = body;
            while !rest.is_empty() {
                match rest {
                    [KEY_UPDATE, 0, 0, 1, req @ (0 | 1), tail @ ..] => {
                        updates.push(*req == 1);
                        rest = tail;
                    }
                    _ => return Control::Fatal(Some(UNEXPECTED_MESSAGE)),
                }
            }
            if updates.is_empty() {
                return Control::Fatal(Some(UNEXPECTED_MESSAGE));
            }
            Control::KeyUpdates(updates)
        }
        _ => Control::Fatal(Some(UNEXPECTED_MESSAGE)),
    }
}

/// Warns once per process for each kind of failure; later ones go to
/// debug (the metric counts them all).
fn log_failure(
    once: &AtomicBool,
    peer: std::net::SocketAddr,
    step: &str,
    error: &dyn std::fmt::Display,
) {
    if !once.swap(true, Ordering::Relaxed) {
        tracing::warn!(target: "glasshouse::tls", %peer, step, %error,
            "kernel TLS hand-off failed (further failures are logged at debug)");
    } else {
        tracing::debug!(target: "glasshouse::tls", %peer, step, %error, "kernel TLS hand-off failed");
    }
}
static UNSUPPORTED_SEEN: AtomicBool = AtomicBool::new(false);
static ATTACH_FAILED: AtomicBool = AtomicBool::new(false);
static KEYS_FAILED: AtomicBool = AtomicBool::new(false);
static REKEY_FAILED: AtomicBool = AtomicBool::new(false);

/// Gives a finished handshake's keys to the kernel, if its suite uses
/// one of `ciphers` (what the kernel installs: see
/// [`crate::sys::ktls::probe_ciphers`]). `t` must be
/// [`TlsConnection::kernel_ready`]; `fd` is its socket, which outlives
/// the session (the transport keeps both in one place and drops them
/// together).
pub fn hand_off<O: Observer>(
    t: Box<TlsConnection<O>>,
    fd: &impl AsRawFd,
    ciphers: &[u16],
) -> (Session<O>, HandOff) {
    let (Some(suite), Some(version)) = (t.negotiated_suite(), t.protocol_version()) else {
        t.metrics().ktls_handoff(HandOff::UnsupportedSuite);
        return (Session::Tls(t), HandOff::UnsupportedSuite);
    };
    let supported = matches!(version, ProtocolVersion::TLSv1_2 | ProtocolVersion::TLSv1_3)
        && kernel_cipher(suite.suite()).is_some_and(|c| ciphers.contains(&c));
    if !supported {
        if !UNSUPPORTED_SEEN.swap(true, Ordering::Relaxed) {
            tracing::info!(
                target: "glasshouse::tls",
                suite = ?suite.suite(),
                version = ?version,
                "kernel TLS cannot take this suite: userspace rustls serves such connections"
            );
        }
        t.metrics().ktls_handoff(HandOff::UnsupportedSuite);
        return (Session::Tls(t), HandOff::UnsupportedSuite);
    }
    // Until the keys are set, a socket with the ULP attached is plain TCP:
    // a failure here costs nothing but the kernel path.
    if let Err(e) = ktls::attach_ulp(fd) {
        log_failure(&ATTACH_FAILED, t.engine().peer(), "attach TCP_ULP tls", &e);
        t.metrics().ktls_handoff(HandOff::Failed);
        return (Session::Tls(t), HandOff::Failed);
    }
    let (tls, engine, metrics) = (*t).into_parts();
    let peer = engine.peer();
    let fail = |engine, metrics: Arc<TlsMetrics>, step: &str, e: &dyn std::fmt::Display| {
        log_failure(&KEYS_FAILED, peer, step, e);
        metrics.ktls_handoff(HandOff::Failed);
        let s = KernelSession {
            engine,
            state: None,
            fd: fd.as_raw_fd(),
        };
        (Session::Kernel(Box::new(s)), HandOff::Failed)
    };
    let (secrets, conn) = match tls.dangerous_into_kernel_connection() {
        Ok(v) => v,
        Err(e) => return fail(engine, metrics, "extract secrets", &e),
    };
    let (tx_seq, tx) = secrets.tx;
    let (rx_seq, rx) = secrets.rx;
    let (Some(tx_info), Some(rx_info)) = (
        super::ktls::crypto_info(version, tx_seq, &tx),
        super::ktls::crypto_info(version, rx_seq, &rx),
    ) else {
        return fail(
            engine,
            metrics,
            "crypto_info",
            &"no kernel layout for these keys",
        );
    };
    if let Err(e) = ktls::set_keys(fd, Direction::Transmit, &tx_info) {
        return fail(engine, metrics, "set TLS_TX", &e);
    }
    if let Err(e) = ktls::set_keys(fd, Direction::Receive, &rx_info) {
        return fail(engine, metrics, "set TLS_RX", &e);
    }
    let limit = confidentiality_limit(suite);
    metrics.ktls_handoff(HandOff::Ok);
    tracing::debug!(target: "glasshouse::tls", %peer, "TLS keys handed to the kernel");
    let s = KernelSession {
        engine,
        state: Some(KernelState {
            conn,
            version,
            tx: RecordBudget::new(limit, tx_seq),
            rx: RecordBudget::new(limit, rx_seq),
            key_update_owed: false,
            close_notify_sent: false,
            failed: false,
        }),
        fd: fd.as_raw_fd(),
    };
    (Session::Kernel(Box::new(s)), HandOff::Ok)
}

/// What user space still does for a kTLS connection.
struct KernelState {
    conn: KernelConnection<ServerConnectionData>,
    version: ProtocolVersion,
    tx: RecordBudget,
    rx: RecordBudget,
    /// The peer asked for our KeyUpdate: it goes before any more data.
    key_update_owed: bool,
    close_notify_sent: bool,
    failed: bool,
}

/// Our close_notify, once, best effort: a full socket buffer or a gone
/// peer only means the client sees a FIN without it.
fn close_notify(state: &mut Option<KernelState>, fd: RawFd) {
    if let Some(s) = state {
        if !s.close_notify_sent && !s.failed {
            s.close_notify_sent = true;
            let _ = ktls::send_record(&fd, ALERT, &[1, CLOSE_NOTIFY]);
            s.tx.count(1);
        }
    }
}

/// The engine over a kTLS socket.
pub struct KernelSession<O: Observer> {
    engine: Connection<O>,
    /// `None` when the hand-off failed half way: the connection closes.
    state: Option<KernelState>,
    /// The socket (owned by the transport, beside this session).
    fd: RawFd,
}

impl<O: Observer> KernelSession<O> {
    pub fn engine(&self) -> &Connection<O> {
        &self.engine
    }

    fn failed(&self) -> bool {
        self.state.as_ref().is_none_or(|s| s.failed)
    }

    /// A record read by the transport (`recv_record`).
    pub fn receive_record(&mut self, env: &mut Env<'_, O>, record_type: u8, data: &[u8]) {
        let fd = self.fd;
        let peer = self.engine.peer();
        let Some(s) = &mut self.state else {
            return;
        };
        if s.failed {
            return;
        }
        s.rx.count_bytes(data.len());
        if record_type == APPLICATION_DATA {
            self.engine.receive(env, data);
            return;
        }
        match classify(record_type, data) {
            Control::CloseNotify => self.engine.receive_eof(env),
            Control::Ignore => {}
            Control::Fatal(alert) => {
                if let Some(a) = alert {
                    let _ = ktls::send_record(&fd, ALERT, &[2, a]);
                }
                s.failed = true;
            }
            Control::KeyUpdates(requests) => {
                for requested in requests {
                    let installed = s
                        .conn
                        .update_rx_secret()
                        .map_err(|e| e.to_string())
                        .and_then(|(seq, secret)| {
                            super::ktls::crypto_info(s.version, seq, &secret)
                                .ok_or_else(|| "no kernel layout".to_string())
                        })
                        .and_then(|info| {
                            ktls::set_keys(&fd, Direction::Receive, &info)
                                .map_err(|e| e.to_string())
                        });
                    if let Err(e) = installed {
                        log_failure(&REKEY_FAILED, peer, "KeyUpdate: install TLS_RX", &e);
                        s.failed = true;
                        return;
                    }
                    s.rx.renew();
                    s.key_update_owed |= requested;
                }
            }
        }
    }

    /// Sends our KeyUpdate under the old key, then installs the new one.
    /// False while the socket is full (try again on the next drive).
    fn answer_key_update(&mut self) -> bool {
        let fd = self.fd;
        let peer = self.engine.peer();
        let Some(s) = &mut self.state else {
            return true;
        };
        match ktls::send_record(&fd, HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0]) {
            Ok(_) => {}
            Err(e) if crate::sys::socket::would_block(&e) => return false,
            Err(_) => {
                s.failed = true;
                return true;
            }
        }
        let installed = s
            .conn
            .update_tx_secret()
            .map_err(|e| e.to_string())
            .and_then(|(seq, secret)| {
                super::ktls::crypto_info(s.version, seq, &secret)
                    .ok_or_else(|| "no kernel layout".to_string())
            })
            .and_then(|info| {
                ktls::set_keys(&fd, Direction::Transmit, &info).map_err(|e| e.to_string())
            });
        match installed {
            Ok(()) => {
                s.tx.renew();
                s.key_update_owed = false;
            }
            Err(e) => {
                log_failure(&REKEY_FAILED, peer, "KeyUpdate: install TLS_TX", &e);
                s.failed = true;
            }
        }
        true
    }

    // The transport-facing calls, as on `engine::Connection`.

    pub fn receive(&mut self, env: &mut Env<'_, O>, input: &[u8]) {
        self.receive_record(env, APPLICATION_DATA, input);
    }

    pub fn receive_eof(&mut self, env: &mut Env<'_, O>) {
        self.engine.receive_eof(env);
    }

    pub fn poll(&mut self, env: &mut Env<'_, O>) -> Action<'_> {
        if self.failed() {
            return Action::Close;
        }
        if self.state.as_ref().is_some_and(|s| s.key_update_owed) && !self.answer_key_update() {
            return Action::Wait;
        }
        let Some(s) = &self.state else {
            return Action::Close;
        };
        if s.failed {
            return Action::Close;
        }
        let worst = match (s.tx.state(), s.rx.state()) {
            (Budget::Exhausted, _) | (_, Budget::Exhausted) => Budget::Exhausted,
            (Budget::WindDown, _) | (_, Budget::WindDown) => Budget::WindDown,
            _ => Budget::Fresh,
        };
        if worst == Budget::Exhausted || (worst == Budget::WindDown && self.engine.is_idle()) {
            close_notify(&mut self.state, self.fd);
            return Action::Close;
        }
        let fd = self.fd;
        match self.engine.poll(env) {
            // A clean end for the client: our close_notify first (else
            // it cannot tell a close from a truncation).
            Action::Close => {
                close_notify(&mut self.state, fd);
                Action::Close
            }
            Action::ShutdownWrite => {
                close_notify(&mut self.state, fd);
                Action::ShutdownWrite
            }
            other => other,
        }
    }

    pub fn advance(&mut self, env: &mut Env<'_, O>, n: usize) {
        if let Some(s) = &mut self.state {
            s.tx.count_bytes(n);
        }
        self.engine.advance(env, n);
    }

    pub fn take_bytes(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        self.engine.take_bytes(spare)
    }

    pub fn give_back(&mut self, env: &mut Env<'_, O>, buf: Vec<u8>, n: usize) -> Vec<u8> {
        if let Some(s) = &mut self.state {
            s.tx.count_bytes(n);
        }
        self.engine.give_back(env, buf, n)
    }

    pub fn write_shut(&mut self, env: &Env<'_, O>) {
        self.engine.write_shut(env);
    }

    pub fn wants_read(&self, env: &Env<'_, O>) -> bool {
        !self.failed() && self.engine.wants_read(env)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.engine.next_deadline()
    }

    pub fn on_timer(&mut self, env: &mut Env<'_, O>) {
        self.engine.on_timer(env);
    }

    pub fn drain(&mut self, env: &mut Env<'_, O>) -> DrainOutcome {
        self.engine.drain(env)
    }

    pub fn finish(&mut self, env: &mut Env<'_, O>, forced: bool) {
        self.engine.finish(env, forced);
    }

    pub fn take_drained(&mut self) -> u32 {
        self.engine.take_drained()
    }

    pub fn is_closed(&self) -> bool {
        self.failed() || self.engine.is_closed()
    }

    pub fn is_idle(&self) -> bool {
        self.engine.is_idle()
    }

    pub fn shrink(&mut self) {
        self.engine.shrink();
    }
}
