//! Kernel TLS end to end: the real binary with `--ktls auto|off`, rustls
//! clients, and the start-up log and `/metrics` saying which record path
//! served. On a kernel without `CONFIG_TLS` (ours) `auto` must fall back
//! to userspace rustls and still serve; the tests that need the kernel
//! path itself (a file body through `sendfile` over kTLS, a client
//! KeyUpdate, close_notify from the kernel side) say why they skip and
//! return where the probe finds no TLS ULP or the model is not epoll.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use glasshouse::sys::ktls::{probe, Support};
use rustls::pki_types::CertificateDer;
use support::{client_config, read_answer, tls_connect, tls_connect_with, Pki, Server};

const T: Duration = Duration::from_secs(10);

/// One request on a new connection; the answer's head and body.
fn get(server: &Server, ca: &CertificateDer<'static>, path: &str) -> (String, Vec<u8>) {
    let mut s = tls_connect(server.addr(), client_config(ca));
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_answer(&mut s)
}

/// A hand-off counter as `/metrics` shows it (read over a connection of
/// its own, which may itself be handed off).
fn handoffs(server: &Server, ca: &CertificateDer<'static>, result: &str) -> f64 {
    let (_, body) = get(server, ca, "/metrics");
    let name = format!("glasshouse_tls_ktls_handoffs_total{{result=\"{result}\"}}");
    support::prom_value(&String::from_utf8_lossy(&body), &name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

fn kernel_has_tls() -> bool {
    probe().expect("the TCP_ULP probe answers") == Support::Available
}

/// Whether this run can exercise the kernel path; prints why not.
/// A `--ktls auto` server and a connection to it that has been answered
/// once (so its keys have gone to the kernel).
fn kernel_served(
    pki: &Pki,
) -> (
    Server,
    rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
) {
    let server = pki.start(&["--ktls", "auto"]);
    let mut s = tls_connect(server.addr(), client_config(&pki.ca));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, _) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (server, s)
}

fn kernel_path_or_skip(test: &str) -> bool {
    if !kernel_has_tls() {
        eprintln!(
            "skipped {test}: this kernel has no TLS ULP (TCP_ULP \"tls\" gives ENOENT): \
             userspace rustls is the only path here"
        );
        return false;
    }
    if support::model() != "epoll" {
        eprintln!(
            "skipped {test}: only --model epoll hands off to kernel TLS (model {})",
            support::model()
        );
        return false;
    }
    true
}

#[test]
fn auto_names_the_path_it_took_and_serves_https_either_way() {
    let pki = Pki::new(false);
    let server = pki.start(&["--ktls", "auto"]);
    let kernel = kernel_has_tls() && support::model() == "epoll";
    let log = server.log();
    if kernel {
        assert!(
            log.contains("kernel TLS after a userspace rustls handshake"),
            "{log}"
        );
    } else if !kernel_has_tls() {
        assert!(log.contains("userspace rustls (no kernel TLS"), "{log}");
    } else {
        assert!(log.contains("only --model epoll hands off"), "{log}");
    }
    let (head, _) = get(&server, &pki.ca, "/healthz");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, body) = get(&server, &pki.ca, "/digits.txt");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, support::DIGITS_TXT.as_bytes());
    // Two connections served: each handed off where the kernel path is
    // on, none where it is not.
    let ok = handoffs(&server, &pki.ca, "ok");
    if kernel {
        assert!(ok >= 2.0, "ok = {ok}");
    } else {
        assert_eq!(ok, 0.0);
        assert_eq!(handoffs(&server, &pki.ca, "failed"), 0.0);
    }
}

#[test]
fn off_keeps_every_connection_in_user_space() {
    let pki = Pki::new(false);
    let server = pki.start(&["--ktls", "off"]);
    let log = server.log();
    assert!(log.contains("userspace rustls (--ktls off)"), "{log}");
    let (head, body) = get(&server, &pki.ca, "/digits.txt");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, support::DIGITS_TXT.as_bytes());
    for result in ["ok", "unsupported_suite", "failed"] {
        assert_eq!(handoffs(&server, &pki.ca, result), 0.0, "{result}");
    }
}

#[test]
fn the_environment_sets_the_mode_and_an_unknown_mode_is_refused() {
    let pki = Pki::new(false);
    let flags = pki.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::builder()
        .args(&flags)
        .env("GLASSHOUSE_KTLS", "off")
        .start();
    assert!(
        server.log().contains("userspace rustls (--ktls off)"),
        "{}",
        server.log()
    );
    drop(server);
    // `always` is not offered: a suite the kernel lacks could never keep
    // that promise (docs/tls.md).
    let (status, stderr) = Server::builder()
        .args(&[&flags[..], &["--ktls", "always"]].concat())
        .run_to_exit(T);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--ktls"), "{stderr}");
}

#[test]
fn a_large_file_goes_out_by_sendfile_over_kernel_tls() {
    if !kernel_path_or_skip("a_large_file_goes_out_by_sendfile_over_kernel_tls") {
        return;
    }
    let pki = Pki::new(false);
    let server = pki.start(&["--ktls", "auto"]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    server.add_file("big.bin", &big);
    // A small receive buffer: the kernel's sendfile stops at EAGAIN over
    // and over, and every resumption must continue the record stream.
    let mut s = tls_connect_with(server.addr(), client_config(&pki.ca), |sock| {
        nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
    });
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == big, "body differs ({} bytes)", body.len());
    // The same connection still carries requests.
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, _) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(handoffs(&server, &pki.ca, "ok") >= 1.0);
}

#[test]
fn a_client_key_update_is_followed_on_the_kernel_path() {
    if !kernel_path_or_skip("a_client_key_update_is_followed_on_the_kernel_path") {
        return;
    }
    let pki = Pki::new(false);
    let (_server, mut s) = kernel_served(&pki);
    // rustls asks for our KeyUpdate too (update_requested): both
    // directions change keys, and the next answer must still read.
    s.conn.refresh_traffic_keys().unwrap();
    s.write_all(b"GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_answer(&mut s);
    // A kernel without rekey support refuses the new receive key: the
    // connection then closes (read_answer panics), which is the test's
    // failure to report on such a kernel.
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, support::DIGITS_TXT.as_bytes());
}

#[test]
fn close_notify_is_answered_from_the_kernel_path() {
    if !kernel_path_or_skip("close_notify_is_answered_from_the_kernel_path") {
        return;
    }
    let pki = Pki::new(false);
    let (_server, mut s) = kernel_served(&pki);
    s.conn.send_close_notify();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut s.sock).unwrap();
    }
    // Our close_notify, sent as an alert record by the kernel, makes a
    // clean end: read returns 0, not an "unexpected EOF" error.
    let mut rest = Vec::new();
    let r = s.read_to_end(&mut rest);
    assert!(r.is_ok(), "{r:?}");
}
