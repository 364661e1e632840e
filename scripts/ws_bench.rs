//! WebSocket load client for scripts/ws_bench.sh (std only; build with
//! `rustc -O --edition 2021 scripts/ws_bench.rs -o target/ws_bench`).
//!
//!   ws_bench echo HOST:PORT PATH CONNS SECONDS SIZE
//!       CONNS connections, each a thread doing send-one/receive-one
//!       round trips of SIZE-byte binary messages for SECONDS; prints
//!       `round_trips N seconds S rt_per_sec R` (plus p50/p99 latency).
//!   ws_bench idle HOST:PORT PATH N
//!       opens N WebSockets (one thread), prints `open N`, then holds them
//!       until stdin closes, answering the server's pings.
//!
//! Only for 127.0.0.1 targets; every loop is bounded by time or count.

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn handshake(addr: &str, path: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    // Read byte-wise up to the end of the head, so no frame byte is lost.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 || head.len() > 8192 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "no 101"));
        }
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(String::from_utf8_lossy(&head).into_owned()));
    }
    Ok(s)
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// Reads one server frame; returns (opcode, payload).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let mut len = (h[1] & 0x7f) as u64;
    if len == 126 {
        let mut e = [0u8; 2];
        s.read_exact(&mut e)?;
        len = u16::from_be_bytes(e) as u64;
    } else if len == 127 {
        let mut e = [0u8; 8];
        s.read_exact(&mut e)?;
        len = u64::from_be_bytes(e);
    }
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload)?;
    Ok((h[0] & 0x0f, payload))
}

fn echo(addr: &str, path: &str, conns: usize, seconds: f64, size: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(std::sync::Barrier::new(conns + 1));
    let mut threads = Vec::new();
    for _ in 0..conns {
        let (addr, path, stop, start) = (addr.to_string(), path.to_string(), stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            let s = handshake(&addr, &path);
            start.wait();
            let mut s = s.expect("handshake");
            let msg = frame(0x2, &vec![0xab; size]);
            let mut lat = Vec::with_capacity(1 << 16);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                s.write_all(&msg).expect("write");
                loop {
                    let (op, p) = read_frame(&mut s).expect("read");
                    match op {
                        0x2 => {
                            assert_eq!(p.len(), size);
                            break;
                        }
                        0x9 => s.write_all(&frame(0xA, &p)).expect("pong"),
                        _ => {}
                    }
                }
                lat.push(t.elapsed().as_micros() as u32);
            }
            let _ = s.write_all(&frame(0x8, &1000u16.to_be_bytes()));
            lat
        }));
    }
    start.wait();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "round_trips {} seconds {:.2} rt_per_sec {:.0} p50_us {} p99_us {}",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}

fn idle(addr: &str, path: &str, n: usize) {
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        match handshake(addr, path) {
            Ok(s) => socks.push(s),
            Err(e) => {
                eprintln!("connection {i}: {e}");
                break;
            }
        }
    }
    for s in &socks {
        s.set_nonblocking(true).unwrap();
    }
    println!("open {}", socks.len());
    std::io::stdout().flush().unwrap();
    // Hold them until stdin closes; answer pings on a separate thread so
    // the server's keepalive does not drop them.
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        d.store(true, Ordering::Relaxed);
    });
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
        for s in socks.iter_mut() {
            if let Ok(n) = s.read(&mut buf) {
                // A ping is small and arrives whole: 0x89, len, payload.
                if n >= 2 && buf[0] == 0x89 {
                    let len = (buf[1] & 0x7f) as usize;
                    let _ = s.write_all(&frame(0xA, &buf[2..(2 + len).min(n)]));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ws_bench echo ADDR PATH CONNS SECONDS SIZE | ws_bench idle ADDR PATH N";
    match args.get(1).map(String::as_str) {
        Some("echo") if args.len() == 7 => echo(
            &args[2],
            &args[3],
            args[4].parse().expect("CONNS"),
            args[5].parse().expect("SECONDS"),
            args[6].parse().expect("SIZE"),
        ),
        Some("idle") if args.len() == 5 => idle(&args[2], &args[3], args[4].parse().expect("N")),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
