//! The TLS layer over memory: a rustls client and our layer in one
//! process, the bytes passed by hand, the engine behind the layer serving
//! the sample application.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;
use crate::engine::memory::DATE;
use crate::engine::sample::SampleApp;
use crate::engine::{Action, Config, Env, Send, Unobserved};

struct Pki {
    dir: tempfile::TempDir,
    ca: rustls::pki_types::CertificateDer<'static>,
}

/// A CA and one leaf per name set, written as PEM files in a fresh dir.
fn pki(leaves: &[&[&str]]) -> (Pki, Vec<CertPair>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for (i, names) in leaves.iter().enumerate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let cert = dir.path().join(format!("leaf{i}.pem"));
        let keyp = dir.path().join(format!("leaf{i}.key"));
        std::fs::write(&cert, leaf.pem() + &ca.pem()).unwrap();
        std::fs::write(&keyp, key.serialize_pem()).unwrap();
        pairs.push(CertPair { cert, key: keyp });
    }
    (
        Pki {
            dir,
            ca: ca.der().clone(),
        },
        pairs,
    )
}

fn client(ca: &rustls::pki_types::CertificateDer<'static>, name: &str) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    ClientConnection::new(
        Arc::new(cfg),
        ServerName::try_from(name.to_string()).unwrap(),
    )
    .unwrap()
}

/// Our layer with the sample app, and a way to run it like a transport.
struct Server {
    tls: TlsConnection<Unobserved>,
    handler: SampleApp,
    observer: Unobserved,
    config: Config,
    now: Instant,
    /// Ciphertext the server wrote.
    wire: Vec<u8>,
    closed: bool,
    shut: bool,
}

impl Server {
    fn new(acceptor: &Acceptor) -> Server {
        let mut handler = SampleApp::new();
        let mut observer = Unobserved;
        let config = Config::default();
        let now = Instant::now();
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let engine = {
            let env = Env {
                handler: &mut handler,
                observer: &mut observer,
                config: &config,
                now,
                date: DATE,
                worker: 0,
                draining: false,
            };
            crate::engine::Connection::new(peer, addr, &env)
        };
        let Session::Tls(tls) = acceptor.session(engine).unwrap() else {
            unreachable!()
        };
        Server {
            tls: *tls,
            handler,
            observer,
            config,
            now,
            wire: Vec::new(),
            closed: false,
            shut: false,
        }
    }

    /// As a completion transport would: poll, take the bytes, "complete"
    /// the send with `n` of them at most, give the buffer back.
    fn step_lent(&mut self, input: Option<&[u8]>, n: usize) {
        let mut env = Env {
            handler: &mut self.handler,
            observer: &mut self.observer,
            config: &self.config,
            now: self.now,
            date: DATE,
            worker: 0,
            draining: false,
        };
        if let Some(b) = input {
            self.tls.receive(&mut env, b);
        }
        let mut spare = Vec::new();
        loop {
            match self.tls.poll(&mut env) {
                Action::Send(Send::Bytes { .. }) => {
                    let buf = self.tls.take_bytes(spare).expect("bytes to take");
                    assert!(matches!(self.tls.poll(&mut env), Action::Wait));
                    let sent = n.min(buf.len());
                    self.wire.extend_from_slice(&buf[..sent]);
                    spare = self.tls.give_back(&mut env, buf, sent);
                }
                Action::Wait => return,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn step(&mut self, input: Option<&[u8]>, eof: bool, timer: bool) {
        let mut env = Env {
            handler: &mut self.handler,
            observer: &mut self.observer,
            config: &self.config,
            now: self.now,
            date: DATE,
            worker: 0,
            draining: false,
        };
        if let Some(b) = input {
            self.tls.receive(&mut env, b);
        }
        if eof {
            self.tls.receive_eof(&mut env);
        }
        if timer {
            self.tls.on_timer(&mut env);
        }
        loop {
            match self.tls.poll(&mut env) {
                Action::Send(Send::Bytes { data, .. }) => {
                    let n = data.len();
                    self.wire.extend_from_slice(data);
                    self.tls.advance(&mut env, n);
                }
                Action::Send(Send::File { .. }) => panic!("TLS must not hand out files"),
                Action::ShutdownWrite => {
                    self.shut = true;
                    self.tls.write_shut(&env);
                }
                Action::Close => {
                    self.closed = true;
                    self.tls.finish(&mut env, false);
                    return;
                }
                Action::Wait => return,
            }
        }
    }
}

/// Moves bytes both ways until neither side has anything to say; the
/// client's bytes go `chunk` at a time.
fn pump(c: &mut ClientConnection, s: &mut Server, chunk: usize) {
    for _ in 0..10_000 {
        let mut out = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut out).unwrap();
        }
        let progressed = !out.is_empty() || !s.wire.is_empty();
        for piece in out.chunks(chunk.max(1)) {
            if s.closed {
                break;
            }
            s.step(Some(piece), false, false);
        }
        if !s.wire.is_empty() {
            let wire = std::mem::take(&mut s.wire);
            let mut rd = wire.as_slice();
            while !rd.is_empty() {
                if c.read_tls(&mut rd).unwrap() == 0 {
                    break;
                }
                if c.process_new_packets().is_err() {
                    // The client's alert still reaches the server.
                    let mut alert = Vec::new();
                    while c.wants_write() {
                        c.write_tls(&mut alert).unwrap();
                    }
                    if !s.closed {
                        s.step(Some(&alert), false, false);
                    }
                    return;
                }
            }
        }
        if !progressed {
            return;
        }
    }
    panic!("pump did not settle");
}

fn read_all(c: &mut ClientConnection) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    got
}

fn acceptor(pairs: Vec<CertPair>) -> Acceptor {
    Acceptor::new(pairs, Arc::new(TlsMetrics::default())).unwrap()
}

#[test]
fn a_request_over_tls_is_answered_and_the_handshake_is_described() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    pump(&mut c, &mut s, usize::MAX);
    let got = String::from_utf8(read_all(&mut c)).unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("hello"), "{got}");
    let info = s.tls.info().unwrap();
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert!(
        info.suite.contains("AES") || info.suite.contains("CHACHA"),
        "{info:?}"
    );
    assert_eq!(
        a.metrics
            .handshakes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_file_body_is_read_and_encrypted_by_the_layer() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    pump(&mut c, &mut s, usize::MAX);
    let got = read_all(&mut c);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length: ")
                .or(l.strip_prefix("Content-Length: "))
        })
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), len);
    assert!(len > 0);
}

#[test]
fn a_handshake_trickled_one_byte_at_a_time_completes() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    pump(&mut c, &mut s, 1);
    let got = String::from_utf8_lossy(&read_all(&mut c)).into_owned();
    assert!(got.starts_with("HTTP/1.1 "), "{got}");
    assert!(s.tls.is_established());
}

#[test]
fn a_completion_transport_borrows_the_ciphertext_and_sends_it_in_pieces() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for _ in 0..100 {
        let mut out = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut out).unwrap();
        }
        s.step_lent(if out.is_empty() { None } else { Some(&out) }, 700);
        if s.wire.is_empty() && out.is_empty() {
            break;
        }
        let wire = std::mem::take(&mut s.wire);
        let mut rd = wire.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
    }
    let got = String::from_utf8_lossy(&read_all(&mut c)).into_owned();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[test]
fn sni_picks_the_certificate_that_names_the_host() {
    let (pki, pairs) = pki(&[&["one.test"], &["two.test", "*.wild.test"]]);
    let a = acceptor(pairs);
    for name in ["one.test", "two.test", "x.wild.test"] {
        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, name);
        c.writer()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        pump(&mut c, &mut s, usize::MAX);
        assert!(!c.is_handshaking(), "{name}: handshake did not finish");
        assert_eq!(s.tls.info().unwrap().sni.as_deref(), Some(name));
    }
    // A name no certificate covers gets the first, which the client refuses.
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "two.wild.test.example");
    pump(&mut c, &mut s, usize::MAX);
    assert!(c.is_handshaking());
    assert!(s.closed);
    let failures: u64 = a
        .metrics
        .failures
        .iter()
        .map(|f| f.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(failures, 1);
    let rejected = a.metrics.failures[3].load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(rejected, 1, "counted as certificate_rejected");
    drop(pki.dir);
}

#[test]
fn close_notify_from_the_client_ends_the_connection_cleanly() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    pump(&mut c, &mut s, usize::MAX);
    assert!(!read_all(&mut c).is_empty());
    c.send_close_notify();
    pump(&mut c, &mut s, usize::MAX);
    // The engine saw the end of input: it shuts (after its own close_notify)
    // or closes.
    assert!(s.shut || s.closed, "shut {} closed {}", s.shut, s.closed);
}

#[test]
fn a_request_followed_by_close_notify_is_still_answered() {
    // close_notify ends the client's direction only (RFC 8446 §6.1), as a
    // FIN does: a request sent before it is owed its answer.
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    // ClientHello in, the server's flight out: the client is done.
    let mut hello = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut hello).unwrap();
    }
    s.step(Some(&hello), false, false);
    let flight = std::mem::take(&mut s.wire);
    let mut rd = flight.as_slice();
    while !rd.is_empty() && c.read_tls(&mut rd).unwrap() > 0 {
        c.process_new_packets().unwrap();
    }
    assert!(!c.is_handshaking());
    // Its Finished, the request, close_notify and the FIN arrive at once.
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    c.send_close_notify();
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).unwrap();
    }
    s.step(Some(&out), true, false);
    let wire = std::mem::take(&mut s.wire);
    let mut rd = wire.as_slice();
    while !rd.is_empty() && c.read_tls(&mut rd).unwrap() > 0 {
        c.process_new_packets().unwrap();
    }
    let got = read_all(&mut c);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_websocket_close_then_close_notify_gets_the_echo_and_the_close_reply() {
    // The frames and the close_notify behind them arrive in one read: the
    // end of input reaches the engine after it has answered the frames, as
    // a FIN read by a plain transport would.
    use crate::ws::client as wsc;
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(wsc::upgrade_request("x", "/ws", "").as_bytes())
        .unwrap();
    pump(&mut c, &mut s, usize::MAX);
    let head = read_all(&mut c);
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    c.writer().write_all(&wsc::text("last")).unwrap();
    c.writer().write_all(&wsc::close(1000, "done")).unwrap();
    c.send_close_notify();
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).unwrap();
    }
    s.step(Some(&out), false, false);
    let wire = std::mem::take(&mut s.wire);
    let mut rd = wire.as_slice();
    while !rd.is_empty() && c.read_tls(&mut rd).unwrap() > 0 {
        c.process_new_packets().unwrap();
    }
    let got = read_all(&mut c);
    let (frames, _) = wsc::decode(&got).unwrap();
    let kinds: Vec<_> = frames.iter().map(|f| (f.opcode, f.payload.len())).collect();
    assert_eq!(frames.len(), 2, "{kinds:?}");
    assert_eq!(frames[0].payload, b"last");
    assert_eq!(frames[1].close_code(), Some(1000));
}

#[test]
fn the_head_timeout_ends_a_stalled_handshake() {
    let (_pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    s.step(Some(&[0x16, 0x03, 0x01]), false, false);
    assert!(!s.closed);
    s.now += Duration::from_secs(11);
    s.step(None, false, true);
    assert!(s.closed);
    assert!(s.wire.is_empty(), "no plaintext 408 goes to a TLS client");
    assert_eq!(
        a.metrics.failures[0].load(std::sync::atomic::Ordering::Relaxed),
        1,
        "counted as a timeout"
    );
}

#[test]
fn garbage_instead_of_a_client_hello_is_refused() {
    let (_pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs);
    let mut s = Server::new(&a);
    s.step(Some(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, false);
    assert!(s.closed);
}

#[test]
fn a_reload_keeps_open_connections_and_serves_new_ones_the_new_certificate() {
    let (pki, pairs) = pki(&[&["localhost"]]);
    let a = acceptor(pairs.clone());
    let mut old = Server::new(&a);
    let mut c = client(&pki.ca, "localhost");
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    pump(&mut c, &mut old, usize::MAX);
    let before = c.peer_certificates().unwrap()[0].clone();
    // A new leaf from a new CA in the same files.
    let (pki2, pairs2) = self::pki(&[&["localhost"]]);
    std::fs::copy(&pairs2[0].cert, &pairs[0].cert).unwrap();
    std::fs::copy(&pairs2[0].key, &pairs[0].key).unwrap();
    a.reload().unwrap();
    // The old connection still works.
    c.writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    pump(&mut c, &mut old, usize::MAX);
    assert!(String::from_utf8_lossy(&read_all(&mut c)).contains("HTTP/1.1 200"));
    let mut fresh = Server::new(&a);
    let mut c2 = client(&pki2.ca, "localhost");
    pump(&mut c2, &mut fresh, usize::MAX);
    assert!(!c2.is_handshaking());
    assert_ne!(c2.peer_certificates().unwrap()[0], before);
    // A broken file: the reload fails and the old configuration stays.
    std::fs::write(&pairs[0].key, "not a key").unwrap();
    assert!(a.reload().is_err());
    let mut third = Server::new(&a);
    let mut c3 = client(&pki2.ca, "localhost");
    pump(&mut c3, &mut third, usize::MAX);
    assert!(!c3.is_handshaking());
}

#[test]
fn bad_files_are_named_in_the_error() {
    let (_pki, pairs) = pki(&[&["localhost"], &["other"]]);
    let mismatched = vec![CertPair {
        cert: pairs[0].cert.clone(),
        key: pairs[1].key.clone(),
    }];
    let e = certs::server_config(&mismatched).unwrap_err();
    assert!(e.contains("does not match"), "{e}");
    let missing = vec![CertPair {
        cert: "/nonexistent/cert.pem".into(),
        key: pairs[0].key.clone(),
    }];
    let e = certs::server_config(&missing).unwrap_err();
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let swapped = vec![CertPair {
        cert: pairs[0].key.clone(),
        key: pairs[0].cert.clone(),
    }];
    assert!(certs::server_config(&swapped).is_err());
}

// Kernel TLS: what can be proved without a kernel that has it.

mod kernel_tls {
    use ring::aead;
    use rustls::{CipherSuite, ConnectionTrafficSecrets};

    use super::*;
    use crate::tls::kernel::{
        classify, kernel_cipher, Budget, Control, HandOff, RecordBudget, HANDOFF_RESULTS,
    };

    fn kernel_acceptor(pairs: Vec<CertPair>) -> Acceptor {
        // All three ciphers, as a kernel with kTLS would take.
        let all = vec![
            crate::sys::ktls::TLS_CIPHER_AES_GCM_128,
            crate::sys::ktls::TLS_CIPHER_AES_GCM_256,
            crate::sys::ktls::TLS_CIPHER_CHACHA20_POLY1305,
        ];
        Acceptor::with_kernel(pairs, Arc::new(TlsMetrics::default()), all, 256).unwrap()
    }

    fn key(secrets: &ConnectionTrafficSecrets) -> (aead::LessSafeKey, [u8; 12]) {
        let (alg, key, iv): (&'static aead::Algorithm, &[u8], &[u8]) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&aead::AES_128_GCM, key.as_ref(), iv.as_ref())
            }
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&aead::AES_256_GCM, key.as_ref(), iv.as_ref())
            }
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key.as_ref(), iv.as_ref())
            }
            _ => panic!("not a kernel cipher"),
        };
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, key).unwrap());
        (key, iv.try_into().unwrap())
    }

    fn nonce(iv: [u8; 12], seq: u64) -> aead::Nonce {
        let mut n = iv;
        for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= s;
        }
        aead::Nonce::assume_unique_for_key(n)
    }

    /// Opens one TLS 1.3 record as the kernel's receive side does: the
    /// inner content type and the plaintext.
    fn open(secrets: &ConnectionTrafficSecrets, seq: u64, record: &[u8]) -> (u8, Vec<u8>) {
        let (key, iv) = key(secrets);
        let header: [u8; 5] = record[..5].try_into().unwrap();
        let mut body = record[5..].to_vec();
        let plain = key
            .open_in_place(nonce(iv, seq), aead::Aad::from(header), &mut body)
            .expect("the record opens with these keys");
        let end = plain.iter().rposition(|&b| b != 0).unwrap();
        (plain[end], plain[..end].to_vec())
    }

    /// Seals one TLS 1.3 record as the kernel's transmit side does.
    fn seal(secrets: &ConnectionTrafficSecrets, seq: u64, kind: u8, data: &[u8]) -> Vec<u8> {
        let (key, iv) = key(secrets);
        let mut inner = data.to_vec();
        inner.push(kind);
        let len = (inner.len() + key.algorithm().tag_len()) as u16;
        let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
        key.seal_in_place_append_tag(nonce(iv, seq), aead::Aad::from(header), &mut inner)
            .unwrap();
        let mut rec = header.to_vec();
        rec.extend_from_slice(&inner);
        rec
    }

    fn records(mut wire: &[u8]) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while wire.len() >= 5 {
            let n = 5 + u16::from_be_bytes([wire[3], wire[4]]) as usize;
            v.push(wire[..n].to_vec());
            wire = &wire[n..];
        }
        assert!(wire.is_empty(), "whole records only");
        v
    }

    #[test]
    fn a_finished_and_sent_handshake_is_ready_for_the_kernel_and_not_before() {
        let (pki, pairs) = pki(&[&["localhost"]]);
        let a = kernel_acceptor(pairs);
        assert!(a.kernel_tls());
        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, "localhost");
        assert!(!s.tls.kernel_ready());
        let mut hello = Vec::new();
        c.write_tls(&mut hello).unwrap();
        s.step(Some(&hello), false, false);
        assert!(!s.tls.kernel_ready(), "mid-handshake");
        pump(&mut c, &mut s, usize::MAX);
        assert!(s.tls.is_established());
        assert!(s.tls.kernel_ready());
        // A partial record in our buffer is not the kernel's to decrypt.
        s.step(Some(&[0x17, 0x03]), false, false);
        assert!(!s.tls.kernel_ready());
    }

    #[test]
    fn without_kernel_tls_rustls_keeps_its_secrets() {
        let (pki, pairs) = pki(&[&["localhost"]]);
        let a = acceptor(pairs);
        assert!(!a.kernel_tls());
        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, "localhost");
        pump(&mut c, &mut s, usize::MAX);
        let (tls, _, _) = s.tls.into_parts();
        assert!(tls.dangerous_into_kernel_connection().is_err());
    }

    /// The whole KeyUpdate exchange with the kernel played by hand: the
    /// client's KeyUpdate (update_requested) opens under the receive key
    /// handed off, the data after it under the key rustls derives next,
    /// and our KeyUpdate and answer sealed under the old and the next
    /// transmit keys are read by the client.
    #[test]
    fn key_updates_both_ways_use_the_secrets_rustls_derives() {
        let (pki, pairs) = pki(&[&["localhost"]]);
        let a = kernel_acceptor(pairs);
        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, "localhost");
        pump(&mut c, &mut s, usize::MAX);
        assert!(s.tls.kernel_ready());
        let version = s.tls.protocol_version().unwrap();
        assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
        let suite = s.tls.negotiated_suite().unwrap().suite();
        assert!(kernel_cipher(suite).is_some(), "{suite:?}");
        let (tls, _, _) = s.tls.into_parts();
        let (secrets, mut kernel) = tls.dangerous_into_kernel_connection().unwrap();
        let (rx_seq, rx) = secrets.rx;
        let (tx_seq, tx) = secrets.tx;
        assert!(crate::tls::ktls::crypto_info(version, rx_seq, &rx).is_some());
        assert!(crate::tls::ktls::crypto_info(version, tx_seq, &tx).is_some());

        c.refresh_traffic_keys().unwrap();
        c.writer().write_all(b"after the update").unwrap();
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        let recs = records(&wire);
        assert_eq!(recs.len(), 2);
        let (kind, body) = open(&rx, rx_seq, &recs[0]);
        assert_eq!(kind, 22);
        assert_eq!(classify(kind, &body), Control::KeyUpdates(vec![true]));
        let (seq, next_rx) = kernel.update_rx_secret().unwrap();
        assert_eq!(
            open(&next_rx, seq, &recs[1]),
            (23, b"after the update".to_vec())
        );

        let mut reply = seal(&tx, tx_seq, 22, &[24, 0, 0, 1, 0]);
        let (seq, next_tx) = kernel.update_tx_secret().unwrap();
        reply.extend(seal(&next_tx, seq, 23, b"answered under the new key"));
        let mut rd = reply.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets().unwrap();
        }
        let mut got = vec![0; 64];
        let n = c.reader().read(&mut got).unwrap();
        assert_eq!(&got[..n], b"answered under the new key");
    }

    #[test]
    fn records_are_counted_against_the_limit_with_room_to_spare() {
        let limit = 1 << 24;
        let mut b = RecordBudget::new(limit, 0);
        assert_eq!(b.state(), Budget::Fresh);
        b.count(limit / 4 * 3 - 1);
        assert_eq!(b.state(), Budget::Fresh);
        b.count(1);
        assert_eq!(b.state(), Budget::WindDown);
        b.count(limit / 4 - limit / 16 - 1);
        assert_eq!(b.state(), Budget::WindDown);
        b.count(1);
        assert_eq!(b.state(), Budget::Exhausted);
        b.renew();
        assert_eq!(b.state(), Budget::Fresh);
        // What went before the hand-off counts.
        assert_eq!(
            RecordBudget::new(limit, limit / 4 * 3).state(),
            Budget::WindDown
        );
        // A write counts the records its bytes could fill, plus one.
        let mut w = RecordBudget::new(8, 0);
        w.count_bytes(16 * 1024 * 5);
        assert_eq!(w.state(), Budget::WindDown);
        w.count_bytes(1);
        assert_eq!(w.state(), Budget::WindDown);
        w.count_bytes(1);
        assert_eq!(w.state(), Budget::Exhausted);
        // The count saturates rather than wrapping round to fresh.
        let mut u = RecordBudget::new(u64::MAX, u64::MAX - 1);
        u.count(10);
        assert_eq!(u.state(), Budget::Exhausted);
    }

    #[test]
    fn control_records_are_read_as_a_server_must() {
        assert_eq!(classify(21, &[1, 0]), Control::CloseNotify);
        assert_eq!(classify(21, &[1, 90]), Control::Ignore);
        assert_eq!(classify(21, &[2, 40]), Control::Fatal(None));
        assert_eq!(classify(21, &[1]), Control::Fatal(None));
        assert_eq!(
            classify(22, &[24, 0, 0, 1, 0]),
            Control::KeyUpdates(vec![false])
        );
        assert_eq!(
            classify(22, &[24, 0, 0, 1, 1, 24, 0, 0, 1, 0]),
            Control::KeyUpdates(vec![true, false])
        );
        // A bad request_update value, a truncated message, a message a
        // server never receives (NewSessionTicket), an empty record.
        for bad in [
            &[24, 0, 0, 1, 2][..],
            &[24, 0, 0, 1][..],
            &[4, 0, 0, 1, 0][..],
            &[][..],
        ] {
            assert_eq!(classify(22, bad), Control::Fatal(Some(10)), "{bad:?}");
        }
        assert_eq!(classify(20, &[1]), Control::Fatal(Some(10)));
    }

    #[test]
    fn the_kernel_takes_the_aead_suites_only() {
        use crate::sys::ktls::*;
        assert_eq!(
            kernel_cipher(CipherSuite::TLS13_AES_128_GCM_SHA256),
            Some(TLS_CIPHER_AES_GCM_128)
        );
        assert_eq!(
            kernel_cipher(CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
            Some(TLS_CIPHER_AES_GCM_256)
        );
        assert_eq!(
            kernel_cipher(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
            Some(TLS_CIPHER_CHACHA20_POLY1305)
        );
        assert_eq!(kernel_cipher(CipherSuite::TLS13_AES_128_CCM_SHA256), None);
        // Every suite the server offers has a kernel cipher.
        for s in rustls::crypto::ring::default_provider().cipher_suites {
            assert!(kernel_cipher(s.suite()).is_some(), "{:?}", s.suite());
        }
    }

    #[test]
    fn hand_off_results_are_labelled_in_order() {
        for (r, label) in [HandOff::Ok, HandOff::UnsupportedSuite, HandOff::Failed]
            .into_iter()
            .zip(HANDOFF_RESULTS)
        {
            assert_eq!(r.label(), label);
        }
        let m = TlsMetrics::default();
        m.ktls_handoff(HandOff::UnsupportedSuite);
        assert_eq!(m.handoffs[1].load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn the_path_follows_the_flag_the_model_and_the_probe() {
        use crate::config::KtlsMode;
        let p = choose_path(KtlsMode::Off, true);
        assert!(p.kernel_ciphers.is_empty());
        assert_eq!(p.describe, "userspace rustls (--ktls off)");
        let p = choose_path(KtlsMode::Auto, false);
        assert!(p.kernel_ciphers.is_empty());
        assert!(p.describe.starts_with("userspace rustls"), "{}", p.describe);
        let available = crate::sys::ktls::probe().unwrap() == crate::sys::ktls::Support::Available;
        let p = choose_path(KtlsMode::Auto, true);
        assert_eq!(!p.kernel_ciphers.is_empty(), available);
        assert_eq!(
            p.describe.starts_with("kernel TLS"),
            available,
            "{}",
            p.describe
        );
        if !available {
            assert!(p.describe.contains("ENOENT"), "{}", p.describe);
        }
    }

    /// The hand-off itself on a real socket: on a kernel without a TLS
    /// ULP attaching fails and the connection stays with rustls (and
    /// still serves); where the kernel has one, the keys install. A suite
    /// whose cipher the kernel lacks is never tried.
    #[test]
    fn a_hand_off_that_cannot_happen_leaves_the_connection_with_rustls() {
        let (pki, pairs) = pki(&[&["localhost"]]);
        let a = kernel_acceptor(pairs);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _peer = l.accept().unwrap();
        let has_tls = crate::sys::ktls::probe().unwrap() == crate::sys::ktls::Support::Available;

        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, "localhost");
        pump(&mut c, &mut s, usize::MAX);
        let session = Session::Tls(Box::new(s.tls));
        let (session, r) = session.hand_off(&sock, &[]);
        assert_eq!(r, Some(HandOff::UnsupportedSuite));
        let Session::Tls(t) = session else {
            panic!("an unsupported suite stays in user space");
        };
        assert_eq!(
            t.metrics().handoffs[1].load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        let mut s = Server::new(&a);
        let mut c = client(&pki.ca, "localhost");
        pump(&mut c, &mut s, usize::MAX);
        let ciphers = a.kernel_ciphers().to_vec();
        let (session, r) = Session::Tls(Box::new(s.tls)).hand_off(&sock, &ciphers);
        if has_tls {
            assert_eq!(r, Some(HandOff::Ok));
            assert!(session.is_kernel());
            return;
        }
        assert_eq!(r, Some(HandOff::Failed));
        let Session::Tls(t) = session else {
            panic!("a failed attach stays in user space");
        };
        assert_eq!(
            t.metrics().handoffs[2].load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        // And it still serves: the same connection answers a request.
        s.tls = *t;
        c.writer()
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        pump(&mut c, &mut s, usize::MAX);
        let got = String::from_utf8_lossy(&read_all(&mut c)).into_owned();
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    }
}
