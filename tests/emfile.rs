//! Out of descriptors: with a tiny `ulimit -n`, connections beyond what the
//! process can hold are refused with a 503 (through the reserve descriptor)
//! and counted, the accept loop keeps working, and service recovers once
//! connections close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn request(stream: &mut TcpStream, path: &str) -> String {
    let close = if path == "/metrics" {
        "Connection: close\r\n"
    } else {
        ""
    };
    let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: t\r\n{close}\r\n");
    let mut buf = [0u8; 8192];
    match stream.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

#[test]
fn emfile_refuses_counts_and_recovers() {
    let bin = env!("CARGO_BIN_EXE_glasshouse");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {bin} --listen 127.0.0.1:0 --workers 1 --log-format json"
        ))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut port = None;
    for _ in 0..50 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            port = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .map(|p| p.parse::<u16>().unwrap());
            break;
        }
    }
    let port = port.expect("ready line");
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });

    let mut held = Vec::new();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..120 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            refused += 1;
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let answer = request(&mut s, "/healthz");
        if answer.starts_with("HTTP/1.1 200") {
            ok += 1;
            held.push(s);
        } else {
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
                "unexpected answer: {answer}"
            );
            refused += 1;
        }
    }
    assert!(ok > 10, "some connections are served ({ok})");
    assert!(
        refused > 0,
        "beyond the descriptor limit connections are refused"
    );

    // Free descriptors, then the server serves again and reports the refusals.
    held.clear();
    let mut metrics = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let m = request(&mut s, "/metrics");
            if m.starts_with("HTTP/1.1 200") {
                metrics = m;
                let mut rest = String::new();
                let _ = s.read_to_string(&mut rest);
                metrics.push_str(&rest);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        metrics.starts_with("HTTP/1.1 200"),
        "service recovered: {metrics}"
    );
    let rejected: f64 = metrics
        .lines()
        .find(|l| l.starts_with("glasshouse_connections_rejected_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("rejected counter exposed");
    assert!(rejected >= 1.0, "refusals counted: {rejected}");
    stop(&mut child);
}

fn stop(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}
