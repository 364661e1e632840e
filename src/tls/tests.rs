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
