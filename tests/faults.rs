//! Faults under the server's feet, against the real binary: a file
//! truncated while it is being sent (the answer is cut and the connection
//! closed, never padded or hung), a file replaced while it is being sent
//! (the old content to the end, never a mix), and the process stopped
//! (SIGSTOP) and continued under load (every request answered).

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{find, get_close, Client, Server, PATIENCE};

const SIZE: usize = 32 << 20;

fn pattern() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 251) as u8).collect()
}

/// Sends a GET for `path` and reads until the head and `n` body bytes.
fn start_download(server: &Server, path: &str, n: usize) -> (Client, Vec<u8>, usize) {
    let mut c = Client::connect(server.addr());
    c.stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0; 64 << 10];
    loop {
        let k = c.stream.read(&mut buf).expect("the download starts");
        assert!(k > 0, "closed before the body");
        got.extend_from_slice(&buf[..k]);
        if let Some(at) = find(&got, b"\r\n\r\n") {
            if got.len() >= at + 4 + n {
                return (c, got, at + 4);
            }
        }
    }
}

fn read_to_end(c: &mut Client, got: &mut Vec<u8>) {
    let mut buf = vec![0; 1 << 20];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => panic!("the connection neither ended nor went on: {e}"),
        }
    }
}

#[test]
fn a_file_truncated_while_sent_cuts_the_answer_and_closes() {
    let server = Server::builder().start();
    let body = pattern();
    let path = server.root().join("shrinks.bin");
    std::fs::write(&path, &body).unwrap();
    let (mut c, mut got, at) = start_download(&server, "/shrinks.bin", 1 << 20);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(0))
        .unwrap();
    read_to_end(&mut c, &mut got);
    let sent = &got[at..];
    assert!(
        sent.len() < SIZE,
        "the whole file arrived: truncation was not noticed"
    );
    assert_eq!(
        sent,
        &body[..sent.len()],
        "what arrived is the file's own prefix, unpadded"
    );
    assert_eq!(get_close(server.addr(), "/healthz").status, 200);
}

#[test]
fn a_file_replaced_while_sent_goes_out_whole_and_unmixed() {
    let server = Server::builder().start();
    let body = pattern();
    let path = server.root().join("replaced.bin");
    std::fs::write(&path, &body).unwrap();
    let (mut c, mut got, at) = start_download(&server, "/replaced.bin", 1 << 20);
    // Replaced the way deployments do it: a new file renamed over the old.
    let fresh = server.root().join("replaced.bin.new");
    std::fs::write(&fresh, vec![b'N'; SIZE]).unwrap();
    std::fs::rename(&fresh, &path).unwrap();
    read_to_end_keep_alive(&mut c, &mut got, at + SIZE);
    assert_eq!(&got[at..at + SIZE], &body[..], "the old content, whole");
    drop(c);
    // Later requests get the new file, once the worker's cache looks at
    // the disk again (it trusts an entry for a second).
    let end = std::time::Instant::now() + PATIENCE;
    loop {
        let next = get_close(server.addr(), "/replaced.bin");
        assert_eq!(next.body.len(), SIZE);
        let new = next.body.iter().all(|b| *b == b'N');
        assert!(new || next.body == body, "a mix of old and new content");
        if new {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the new file was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads until `want` bytes are in `got` (the connection stays open).
fn read_to_end_keep_alive(c: &mut Client, got: &mut Vec<u8>, want: usize) {
    let mut buf = vec![0; 1 << 20];
    while got.len() < want {
        let k = c.stream.read(&mut buf).expect("the rest of the body");
        assert!(k > 0, "closed after {} of {want} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
}

#[test]
fn a_stopped_and_continued_server_answers_everything_under_load() {
    let server = Server::builder().start();
    let addr = server.addr();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut ok = 0;
                for _ in 0..200 {
                    let r = c.get_with("/healthz", &[]).expect("an answer");
                    assert_eq!(r.status, 200);
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid()),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid()),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    let served: u32 = clients
        .into_iter()
        .map(|t| t.join().expect("a client"))
        .sum();
    assert_eq!(served, 8 * 200);
    assert_eq!(get_close(addr, "/healthz").status, 200);
}
