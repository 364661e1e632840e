//! `--metrics-listen`: a plain-HTTP side listener that answers `/metrics`,
//! `/healthz` and `/readyz` and nothing else, beside a plain or an HTTPS
//! `--listen`; the `healthcheck` subcommand probing it; its drain with the
//! rest of the server on SIGTERM.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use support::{get_close, lossy, run_to_exit, send_raw, Server, PATIENCE};

/// The side listener's address, from its log line (its port was 0).
fn metrics_addr(server: &Server) -> SocketAddr {
    const NEEDLE: &str = "/readyz on http://";
    assert!(server.wait_log(NEEDLE, PATIENCE), "{}", server.log());
    let log = server.log();
    let rest = &log[log.find(NEEDLE).unwrap() + NEEDLE.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().expect("metrics address")
}

/// A self-signed certificate for localhost, made with openssl(1).
fn self_signed(dir: &Path) -> (String, String) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .output()
        .expect("openssl");
    assert!(status.status.success(), "{}", lossy(&status.stderr));
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    (p("cert.pem"), p("key.pem"))
}

#[test]
fn the_metrics_listener_answers_only_the_operational_endpoints() {
    let mut server = Server::start(&["--metrics-listen", "127.0.0.1:0"]);
    server.add_file("index.html", b"<p>hello</p>");
    let side = metrics_addr(&server);
    assert_ne!(side, server.addr());

    let m = get_close(side, "/metrics");
    assert_eq!(m.status, 200, "{}", m.text());
    assert!(m
        .text()
        .contains("# TYPE http_server_active_requests gauge"));
    assert_eq!(get_close(side, "/healthz").status, 200);
    assert_eq!(get_close(side, "/readyz").status, 200);

    // Files, APIs and WebSockets are not there: a JSON 404 saying why.
    for path in ["/", "/index.html", "/api/stats", "/api/config"] {
        let r = get_close(side, path);
        r.assert_json_error(404);
        assert!(r.text().contains("only /metrics"), "{path}: {}", r.text());
    }
    let upgrade = send_raw(
        side,
        b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(
        lossy(&upgrade).starts_with("HTTP/1.1 404"),
        "{}",
        lossy(&upgrade)
    );

    // The main listener is unchanged: it still serves files and /metrics.
    assert_eq!(get_close(server.addr(), "/index.html").status, 200);
    assert_eq!(get_close(server.addr(), "/metrics").status, 200);

    // The side listener's own requests are counted under their routes.
    let text = get_close(side, "/metrics").text();
    assert!(
        text.contains("http_server_request_duration_seconds") && text.contains("ops-not-found"),
        "{text}"
    );

    server.signal(nix::libc::SIGTERM);
    assert!(server.wait_exit(PATIENCE).success(), "{}", server.log());
    assert!(
        std::net::TcpStream::connect(side).is_err(),
        "the metrics listener outlived the server"
    );
}

#[test]
fn under_https_the_metrics_listener_is_plain_and_the_healthcheck_probes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let server = Server::start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let side = metrics_addr(&server);
    assert_eq!(get_close(side, "/healthz").status, 200);
    assert!(get_close(side, "/metrics")
        .text()
        .contains("glasshouse_tls_handshakes_total"));

    // The probe takes the same settings as the server (as a container's
    // healthcheck does, from its environment): an unspecified address is
    // probed on loopback.
    let wildcard = format!("0.0.0.0:{}", side.port());
    let (status, err) = run_to_exit(
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--metrics-listen",
            &wildcard,
            "healthcheck",
        ],
        PATIENCE,
    );
    assert_eq!(status.code(), Some(0), "{err}");

    // Without a plain listener it cannot probe an HTTPS one: said, exit 2.
    let (status, err) = run_to_exit(
        &["--tls-cert", &cert, "--tls-key", &key, "healthcheck"],
        PATIENCE,
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--metrics-listen"), "{err}");
}

#[test]
fn a_bad_metrics_address_is_a_configuration_error() {
    let (status, stderr) = Server::builder()
        .args(&["--metrics-listen", "nowhere"])
        .run_to_exit(PATIENCE);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid --metrics-listen"), "{stderr}");
}
