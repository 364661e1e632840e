//! systemd socket activation, the way systemd does it: a wrapper binds and
//! listens, a client connects before the server exists (its attempt waits
//! in the backlog), then the wrapper puts the socket at descriptor 3, sets
//! `LISTEN_FDS=1` and `LISTEN_PID` to its own pid and execs the server. The
//! server must answer that early client from the passed socket without
//! binding `--listen` (here an address it could not bind at all).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use support::{parse_response, PATIENCE};

const WRAPPER: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
s.listen(128)
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[test]
fn a_passed_socket_is_served_and_nothing_is_bound() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "hello").unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", WRAPPER, support::bin()])
        // TEST-NET-1: not an address of this machine, so binding it fails;
        // the server must not try.
        .args(["--listen", "192.0.2.1:80", "--workers", "2"])
        .args(["--model", &support::model(), "--log-format", "json"])
        .arg("--root")
        .arg(root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if support::scrubbed(&name) || name.starts_with("LISTEN_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd.spawn().expect("python3");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("port from the wrapper");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // Before the server runs: the kernel queues the connection.
    let mut early = TcpStream::connect(addr).unwrap();
    early.set_read_timeout(Some(PATIENCE)).unwrap();
    early
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();

    let mut raw = Vec::new();
    let _ = early.read_to_end(&mut raw);
    let (r, _) = parse_response(&raw, false).expect("an answer on the passed socket");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{log}"
    );
}
