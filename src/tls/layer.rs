//! One TLS connection as a sans-I/O layer around the connection engine:
//! ciphertext in, plaintext to [`Connection`]; the engine's output (bytes,
//! and file regions, which userspace TLS must read and encrypt: the engine
//! does not know) out as ciphertext. It speaks to its transport with the
//! engine's own calls (receive, poll → [`Action`], advance, ...), so a
//! transport drives it exactly as it drives a plain connection.
//!
//! rustls' unbuffered API does the record work: records are processed from
//! our input buffer (rustls 0.23 still copies each decrypted record into a
//! chunk of its own before we hand it on: in-place decryption is its TODO)
//! and handshake messages and application data are encrypted straight into
//! our output buffer, which the transport writes in one call per batch.
//! The handshake runs under the engine's head timeout: an engine that wants
//! to answer (a 408) before the handshake is done closes the connection.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{AlertDescription, Error as TlsError};

use crate::engine::{Action, Connection, DrainOutcome, Env, Observer, Send};
use crate::telemetry::metrics::TlsMetrics;

/// Plaintext encrypted per batch before the transport is asked to write:
/// large enough for one write to carry a typical answer, small enough that
/// a connection's output buffer stays modest.
const BATCH: usize = 64 * 1024;
/// Bytes of a file body read per step (four full records).
const FILE_CHUNK: usize = 4 * 16 * 1024;
/// Record framing and AEAD tag per 16 KiB of plaintext, generously.
const RECORD_OVERHEAD: usize = 64;

/// What the handshake agreed, for telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    pub version: String,
    pub suite: String,
    pub alpn: Option<String>,
    pub sni: Option<String>,
}

/// The TLS layer over one engine connection.
pub struct TlsConnection<O: Observer> {
    tls: UnbufferedServerConnection,
    engine: Connection<O>,
    /// Ciphertext received and not yet consumed by rustls (at most a
    /// partial record between calls).
    incoming: Vec<u8>,
    /// Ciphertext for the transport; `sent` of it went already.
    outgoing: Vec<u8>,
    sent: usize,
    /// File bytes read for encryption.
    plain: Vec<u8>,
    established: bool,
    close_notify_queued: bool,
    /// The client's close_notify arrived: the end of its input, handed to
    /// the engine once it has answered what came before (see `poll`).
    eof_pending: bool,
    /// The client's input ended (close_notify handed over, or the FIN).
    peer_eof: bool,
    /// The engine asked for a shutdown while ciphertext waited for the
    /// peer, and was told it happened: our close_notify queued behind the
    /// bytes is as good as a plain transport's FIN queued behind its data.
    /// Its linger runs from then on.
    shut_early: bool,
    /// That shutdown is still the transport's to do, once the bytes are out.
    shut_owed: bool,
    /// A fatal TLS error: the alert (if any) goes out, then the end.
    failed: bool,
    /// Handshake outcome counted (once per connection).
    counted: bool,
    /// `outgoing` is lent to a completion transport (`take_bytes`).
    lent: bool,
    /// The client's SNI, seen by the certificate resolver.
    sni: Option<String>,
    metrics: Arc<TlsMetrics>,
}

impl<O: Observer> TlsConnection<O> {
    pub fn new(
        tls: UnbufferedServerConnection,
        engine: Connection<O>,
        metrics: Arc<TlsMetrics>,
    ) -> TlsConnection<O> {
        TlsConnection {
            tls,
            engine,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            established: false,
            close_notify_queued: false,
            eof_pending: false,
            peer_eof: false,
            shut_early: false,
            shut_owed: false,
            failed: false,
            counted: false,
            lent: false,
            sni: None,
            metrics,
        }
    }

    /// The handshake is done and application data flows.
    pub fn is_established(&self) -> bool {
        self.established
    }

    pub fn engine(&self) -> &Connection<O> {
        &self.engine
    }

    pub fn negotiated_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.tls.negotiated_cipher_suite()
    }

    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.protocol_version()
    }

    pub fn metrics(&self) -> &TlsMetrics {
        &self.metrics
    }

    /// The moment a kernel hand-off may happen: the handshake is done,
    /// every byte rustls produced went to the socket (rustls refuses to
    /// give up its state otherwise) and no partial record waits in our
    /// buffer (the kernel can decrypt only what is still in the socket).
    pub fn kernel_ready(&self) -> bool {
        self.established
            && !self.failed
            && !self.lent
            && !self.close_notify_queued
            // An end of input rustls already read, or a shutdown owed,
            // would be lost in the hand-off: such a connection stays here.
            && !self.eof_pending
            && !self.peer_eof
            && !self.shut_early
            && self.sent >= self.outgoing.len()
            && self.incoming.is_empty()
            && !self.engine.is_closed()
    }

    /// The rustls connection, the engine and the metrics, for a hand-off.
    pub fn into_parts(self) -> (UnbufferedServerConnection, Connection<O>, Arc<TlsMetrics>) {
        (self.tls, self.engine, self.metrics)
    }

    /// Version, suite, ALPN and SNI, once established.
    pub fn info(&self) -> Option<HandshakeInfo> {
        if !self.established {
            return None;
        }
        let name = |s: &str| s.trim_start_matches("TLS_").to_string();
        Some(HandshakeInfo {
            version: self
                .tls
                .protocol_version()
                .map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1."))
                .unwrap_or_default(),
            suite: self
                .tls
                .negotiated_cipher_suite()
                .map(|s| name(&format!("{:?}", s.suite())))
                .unwrap_or_default(),
            alpn: self
                .tls
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            sni: self.sni.clone(),
        })
    }

    fn fail(&mut self, reason: &'static str, error: Option<&TlsError>) {
        if !self.established && !self.counted {
            self.counted = true;
            self.metrics.handshake_failed(reason);
            match error {
                Some(e) => tracing::info!(
                    target: "glasshouse::tls",
                    peer = %self.engine.peer(),
                    reason,
                    error = %e,
                    "TLS handshake failed"
                ),
                None => tracing::info!(
                    target: "glasshouse::tls",
                    peer = %self.engine.peer(),
                    reason,
                    "TLS handshake failed"
                ),
            }
        } else if let Some(e) = error {
            tracing::debug!(target: "glasshouse::tls", peer = %self.engine.peer(), error = %e, "TLS error");
        }
        self.failed = true;
    }

    fn on_established(&mut self) {
        self.established = true;
        self.counted = true;
        let resumed = self.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        self.metrics.handshake_completed(resumed);
        if let Some(info) = self.info() {
            tracing::debug!(
                target: "glasshouse::tls",
                peer = %self.engine.peer(),
                tls.version = %info.version,
                tls.suite = %info.suite,
                tls.alpn = info.alpn.as_deref().unwrap_or(""),
                tls.sni = info.sni.as_deref().unwrap_or(""),
                tls.resumed = resumed,
                "TLS handshake completed"
            );
        }
    }

    /// Runs rustls over what arrived: handshake messages answered into
    /// `outgoing`, application data handed to the engine, until rustls
    /// needs more input or may encrypt.
    fn process(&mut self, env: &mut Env<'_, O>) {
        // Each round consumes input, emits output, or ends the loop; the
        // bound only guards against a library that would do neither.
        for _ in 0..10_000 {
            if self.failed {
                return;
            }
            let UnbufferedStatus { discard, state } =
                self.tls.process_tls_records(&mut self.incoming);
            if !self.established {
                if let Some(name) = super::certs::take_sni() {
                    self.sni = Some(name);
                }
            }
            let mut stop = false;
            let mut error = None;
            let mut became_established = false;
            let mut peer_closed = false;
            match state {
                Err(e) => error = Some(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => {
                    while let Some(record) = r.next_record() {
                        match record {
                            Ok(record) => self.engine.receive(env, record.payload),
                            Err(e) => {
                                error = Some(e);
                                break;
                            }
                        }
                    }
                }
                Ok(ConnectionState::ReadEarlyData(mut r)) => {
                    // Early data is not enabled; nothing should be here.
                    while r.next_record().is_some() {}
                }
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    if let Err(err) = encode(&mut e, &mut self.outgoing) {
                        error = Some(err);
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    // The bytes are in `outgoing`, in order before anything
                    // encrypted later: as good as sent for rustls.
                    t.done();
                }
                Ok(ConnectionState::WriteTraffic(_)) => {
                    became_established = !self.established;
                    stop = true;
                }
                Ok(ConnectionState::PeerClosed) => peer_closed = true,
                Ok(ConnectionState::BlockedHandshake) | Ok(ConnectionState::Closed) => {
                    stop = true;
                }
                Ok(_) => stop = true,
            }
            self.incoming.drain(..discard);
            if let Some(e) = error {
                let reason = reason(&e);
                self.fail(reason, Some(&e));
                self.flush_alert();
                return;
            }
            // The client's Finished, data and close_notify read in one go
            // reach here as ReadTraffic and PeerClosed with no WriteTraffic
            // between: the handshake is over all the same, and the
            // close_notify is the end of an established session's input.
            if !self.established && !self.tls.is_handshaking() {
                became_established = true;
            }
            if became_established {
                self.on_established();
            }
            if peer_closed {
                // close_notify: the end of the client's input, as a FIN.
                // A plain transport reads a FIN only when the engine waits
                // (it has acted on the input before it): so does `poll`.
                // Given now, with the records just handed over, it would
                // close a WebSocket before its answer to them (a Close
                // reply) went out.
                if !self.established {
                    self.fail("closed", None);
                    return;
                }
                self.eof_pending = true;
            }
            if stop {
                return;
            }
        }
    }

    /// After a fatal error rustls has queued its alert: take it for the
    /// transport to send before the close.
    fn flush_alert(&mut self) {
        for _ in 0..4 {
            let UnbufferedStatus { state, .. } = self.tls.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => {
                    if encode(&mut e, &mut self.outgoing).is_err() {
                        return;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
                _ => return,
            }
        }
    }

    fn queue_close_notify(&mut self) -> bool {
        let UnbufferedStatus { discard, state } = self.tls.process_tls_records(&mut self.incoming);
        let ok = match state {
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                let start = self.outgoing.len();
                self.outgoing.resize(start + RECORD_OVERHEAD, 0);
                match w.queue_close_notify(&mut self.outgoing[start..]) {
                    Ok(n) => {
                        self.outgoing.truncate(start + n);
                        true
                    }
                    Err(_) => {
                        self.outgoing.truncate(start);
                        false
                    }
                }
            }
            _ => false,
        };
        self.incoming.drain(..discard);
        ok
    }

    // The transport-facing calls, as on `engine::Connection`.

    pub fn receive(&mut self, env: &mut Env<'_, O>, input: &[u8]) {
        self.incoming.extend_from_slice(input);
        self.process(env);
    }

    pub fn receive_eof(&mut self, env: &mut Env<'_, O>) {
        if !self.established {
            self.fail("closed", None);
        }
        self.eof_pending = false;
        self.peer_eof = true;
        self.engine.receive_eof(env);
    }

    pub fn poll(&mut self, env: &mut Env<'_, O>) -> Action<'_> {
        if self.lent {
            // The ciphertext is with the kernel: nothing else may be
            // encrypted after it until it comes back.
            return Action::Wait;
        }
        if self.sent < self.outgoing.len() {
            self.notice_shutdown(env);
            if (self.shut_early || self.engine.gave_up())
                && self.engine.is_closed()
                && !self.peer_eof
            {
                // Its linger ran out (or the peer sent too much during it),
                // or the engine gave up on a peer that reads nothing, and
                // the peer has not read our last bytes: a plain transport
                // closes now too, and its unread input resets what the
                // kernel still held.
                self.outgoing.clear();
                self.sent = 0;
                return Action::Close;
            }
            return Action::Send(Send::Bytes {
                data: &self.outgoing[self.sent..],
                more: false,
            });
        }
        self.outgoing.clear();
        self.sent = 0;
        if self.failed {
            return Action::Close;
        }
        if std::mem::take(&mut self.shut_owed) && !self.engine.is_closed() {
            return Action::ShutdownWrite;
        }
        if !self.established {
            // The engine speaks first only when the head timeout passed
            // or a drain closed it: either way the handshake is over.
            return match self.engine.poll(env) {
                Action::Wait => Action::Wait,
                Action::Close => {
                    self.fail("closed", None);
                    Action::Close
                }
                _ => {
                    self.fail("timeout", None);
                    Action::Close
                }
            };
        }
        while self.outgoing.len() < BATCH {
            let step = match self.engine.poll(env) {
                Action::Wait => {
                    if self.eof_pending && self.engine.wants_read(env) {
                        self.eof_pending = false;
                        self.peer_eof = true;
                        self.engine.receive_eof(env);
                        continue;
                    }
                    break;
                }
                Action::Close => {
                    // A clean end for the client: our close_notify first
                    // (else it cannot tell a close from a truncation).
                    if !self.close_notify_queued && self.queue_close_notify() {
                        self.close_notify_queued = true;
                    }
                    if self.outgoing.is_empty() {
                        return Action::Close;
                    }
                    break;
                }
                Action::ShutdownWrite => {
                    if self.close_notify_queued || !self.queue_close_notify() {
                        if self.outgoing.is_empty() {
                            return Action::ShutdownWrite;
                        }
                        break;
                    }
                    self.close_notify_queued = true;
                    continue;
                }
                Action::Send(Send::Bytes { data, .. }) => {
                    let take = data.len().min(BATCH);
                    encrypt(
                        &mut self.tls,
                        &mut self.incoming,
                        &mut self.outgoing,
                        &data[..take],
                    )
                    .then_some(take)
                }
                Action::Send(Send::File { file, offset, len }) => {
                    let want = (len.min(FILE_CHUNK as u64)) as usize;
                    self.plain.resize(want, 0);
                    match file.read_at(&mut self.plain[..want], offset) {
                        // The file shrank: the promised length cannot be met.
                        Ok(0) | Err(_) => None,
                        Ok(n) => encrypt(
                            &mut self.tls,
                            &mut self.incoming,
                            &mut self.outgoing,
                            &self.plain[..n],
                        )
                        .then_some(n),
                    }
                }
            };
            let Some(n) = step else {
                self.failed = true;
                break;
            };
            self.engine.advance(env, n);
        }
        if self.outgoing.is_empty() {
            return if self.failed {
                Action::Close
            } else {
                Action::Wait
            };
        }
        Action::Send(Send::Bytes {
            data: &self.outgoing,
            more: false,
        })
    }

    pub fn advance(&mut self, _env: &mut Env<'_, O>, n: usize) {
        self.sent = (self.sent + n).min(self.outgoing.len());
    }

    /// For a completion transport, after `poll` offered bytes: takes the
    /// unsent ciphertext out for the kernel; `spare` takes its place.
    pub fn take_bytes(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        if self.lent || self.sent >= self.outgoing.len() {
            return None;
        }
        let mut buf = std::mem::replace(&mut self.outgoing, spare);
        self.outgoing.clear();
        buf.drain(..self.sent);
        self.sent = 0;
        self.lent = true;
        Some(buf)
    }

    /// The buffer from [`TlsConnection::take_bytes`] comes back with `n`
    /// of its bytes sent; the rest goes first next time. Returns a buffer,
    /// emptied, for reuse.
    pub fn give_back(&mut self, _env: &mut Env<'_, O>, buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.lent = false;
        let mut spare = std::mem::replace(&mut self.outgoing, buf);
        self.sent = n.min(self.outgoing.len());
        spare.clear();
        spare
    }

    pub fn write_shut(&mut self, env: &Env<'_, O>) {
        // After an early shutdown the engine has lingered since.
        if !self.shut_early {
            self.engine.write_shut(env);
        }
    }

    /// While ciphertext waits for the peer, the engine is asked what it
    /// would do next, as a plain transport asks it on every turn: a
    /// WebSocket session that gives up on a peer reading nothing says so
    /// only there. A shutdown it asks for happens at once (see
    /// `shut_early`); what it would send waits for the bytes before it.
    fn notice_shutdown(&mut self, env: &mut Env<'_, O>) {
        if self.shut_early || !self.established || self.failed || self.lent {
            return;
        }
        if !matches!(self.engine.poll(env), Action::ShutdownWrite) {
            return;
        }
        if !self.close_notify_queued && self.queue_close_notify() {
            self.close_notify_queued = true;
        }
        self.shut_early = true;
        self.shut_owed = true;
        self.engine.write_shut(env);
    }

    pub fn wants_read(&self, env: &Env<'_, O>) -> bool {
        if self.failed {
            return false;
        }
        if !self.established {
            return !self.engine.is_closed();
        }
        self.engine.wants_read(env)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.engine.next_deadline()
    }

    pub fn on_timer(&mut self, env: &mut Env<'_, O>) {
        if !self.established && self.engine.next_deadline().is_some_and(|d| d <= env.now) {
            // The head timeout is the handshake's timeout.
            self.fail("timeout", None);
        }
        self.engine.on_timer(env);
    }

    pub fn drain(&mut self, env: &mut Env<'_, O>) -> DrainOutcome {
        self.engine.drain(env)
    }

    pub fn finish(&mut self, env: &mut Env<'_, O>, forced: bool) {
        if !self.established && !self.counted {
            // Reset, or dropped by the transport, mid-handshake.
            self.fail("closed", None);
        }
        self.engine.finish(env, forced);
    }

    pub fn take_drained(&mut self) -> u32 {
        self.engine.take_drained()
    }

    pub fn is_closed(&self) -> bool {
        self.failed && self.sent >= self.outgoing.len() || self.engine.is_closed()
    }

    pub fn is_idle(&self) -> bool {
        self.established && self.outgoing.is_empty() && self.engine.is_idle()
    }

    pub fn shrink(&mut self) {
        if self.is_idle() && self.incoming.is_empty() {
            self.incoming = Vec::new();
            self.outgoing = Vec::new();
            self.plain = Vec::new();
            self.sent = 0;
        }
        self.engine.shrink();
    }
}

/// Encrypts `data` into `outgoing`. False when rustls cannot take
/// application data now (the caller then ends the connection).
fn encrypt(
    tls: &mut UnbufferedServerConnection,
    incoming: &mut Vec<u8>,
    outgoing: &mut Vec<u8>,
    data: &[u8],
) -> bool {
    // `incoming` holds at most a partial record here (receive processed
    // the rest), so rustls goes straight to the write state.
    let UnbufferedStatus { discard, state } = tls.process_tls_records(incoming);
    let ok = match state {
        Ok(ConnectionState::WriteTraffic(mut w)) => {
            let start = outgoing.len();
            let mut room = data.len() + (data.len() / 16384 + 1) * RECORD_OVERHEAD;
            loop {
                outgoing.resize(start + room, 0);
                match w.encrypt(data, &mut outgoing[start..]) {
                    Ok(n) => {
                        outgoing.truncate(start + n);
                        break true;
                    }
                    Err(EncryptError::InsufficientSize(s)) if s.required_size > room => {
                        room = s.required_size;
                    }
                    Err(_) => {
                        outgoing.truncate(start);
                        break false;
                    }
                }
            }
        }
        _ => false,
    };
    incoming.drain(..discard);
    ok
}

/// Appends a handshake chunk to `out`, growing it as rustls asks.
fn encode(
    e: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::server::ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), TlsError> {
    let start = out.len();
    let mut room = 4096;
    loop {
        out.resize(start + room, 0);
        match e.encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(s)) => room = s.required_size,
            Err(EncodeError::AlreadyEncoded) => {
                out.truncate(start);
                return Ok(());
            }
        }
    }
}

/// The failure label for a rustls error (see `TLS_FAILURE_REASONS`).
pub fn reason(e: &TlsError) -> &'static str {
    match e {
        TlsError::PeerIncompatible(_) => "incompatible",
        TlsError::NoApplicationProtocol => "no_alpn",
        TlsError::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate,
        ) => "certificate_rejected",
        TlsError::AlertReceived(_) => "peer_alert",
        TlsError::InvalidMessage(_)
        | TlsError::PeerMisbehaved(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. }
        | TlsError::DecryptError => "protocol",
        _ => "other",
    }
}
