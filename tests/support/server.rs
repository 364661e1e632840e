//! The real `glasshouse` binary as a child process: [`Server`], started
//! through a [`Builder`] (flags, environment, descriptor limit).
//!
//! The child's environment is the test's own minus everything that would
//! configure it ([`scrubbed`]), plus what the builder sets. Its stderr is
//! read on a thread for the server's whole life (the pipe never fills) and
//! kept; the `listening on http://HOST:PORT` line gives the address. The
//! child is killed (SIGKILL) when the handle is dropped, so a failing test
//! leaves nothing running. Every wait is bounded; none measures time.
//!
//! With `GLASSHOUSE_TEST_TLS=1` in the test's environment ([`test_tls`]),
//! [`Builder::start`] serves HTTPS: it makes a test CA and leaf ([`Pki`]),
//! gives `--tls-cert/--tls-key`, and registers the address so that the
//! support clients ([`connect`](super::connect) and everything built on
//! it) speak TLS to it. Not for a [`Builder::bare`] server, one given
//! `--tls-cert` by the test, or one built with [`Builder::plaintext`].

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::http::{get_close, Response};
use super::netns::{test_user_stack, Netns};
use super::pki::{client_config, Pki};
use super::wire::{forget_tls, register_tls};

/// Longest wait for the `listening on` line (the machine may be busy
/// compiling next to us).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Files every test root holds.
pub const INDEX_HTML: &str = "<!doctype html><title>glasshouse test</title>\n";
pub const DIGITS_TXT: &str = "0123456789abcdefghijklmnopqrstuvwxyz\n";

/// Path of the binary under test, built by cargo for integration tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_glasshouse")
}

/// True for a variable of the test's own environment that would change
/// the child's behaviour: `RUST_LOG`, every `GLASSHOUSE_*` and every
/// `OTEL_*`. They are all removed, so that only what a test sets applies.
pub fn scrubbed(name: &str) -> bool {
    name == "RUST_LOG" || name.starts_with("GLASSHOUSE_") || name.starts_with("OTEL_")
}

/// The server model the suites run against: `GLASSHOUSE_TEST_MODEL` in
/// the test's own environment (`make test-models` sets it per model), else
/// `epoll`. Read here, never passed through: the child's `GLASSHOUSE_*`
/// are scrubbed, and the harness gives `--model` itself.
/// A variant after a colon (`prethreaded:queue`) is not part of the
/// model's name: see [`pool_feed`].
pub fn model() -> String {
    let spec = model_spec();
    spec.split_once(':')
        .map_or(spec.clone(), |(m, _)| m.to_string())
}

/// `--prethreaded-accept` of a `prethreaded:FEED` test model.
pub fn pool_feed() -> Option<String> {
    model_spec().split_once(':').map(|(_, f)| f.to_string())
}

fn model_spec() -> String {
    std::env::var("GLASSHOUSE_TEST_MODEL")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "epoll".to_string())
}

/// True when the suites run over TLS: `GLASSHOUSE_TEST_TLS` is set and
/// neither empty nor `0` (`make test-tls-suites` sets it). Read here, never
/// passed through, like [`model`].
pub fn test_tls() -> bool {
    std::env::var("GLASSHOUSE_TEST_TLS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// False for the model that serves one connection at a time
/// (`iterative`): a test that needs two connections served at once does
/// not apply to it, and says so instead of running.
pub fn serves_concurrently() -> bool {
    model() != "iterative"
}

/// Skips the calling test (returns true, with a note on stderr) when the
/// model under test serves one connection at a time.
pub fn needs_concurrency(test: &str) -> bool {
    if serves_concurrently() {
        return false;
    }
    eprintln!(
        "{test}: skipped for --model {}: it serves one connection at a time",
        model()
    );
    true
}

/// How to start the binary. Unless [`Builder::bare`] is asked for, each
/// of `--listen 127.0.0.1:0`, `--workers 2` (256 for `prethreaded`),
/// `--log-format json`,
/// `--model` [`model()`] and `--root TMP` (a temporary directory holding
/// [`INDEX_HTML`] and [`DIGITS_TXT`]) is added when the test's own flags
/// do not give it.
#[derive(Default)]
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// No default flags: the test gives every one itself (or configures
    /// the server through the environment).
    bare: bool,
    /// `RLIMIT_NOFILE` (soft and hard) for the child.
    fd_limit: Option<u64>,
    /// Plain HTTP even under `GLASSHOUSE_TEST_TLS`.
    plaintext: bool,
    /// Under `GLASSHOUSE_TEST_STACK=user`: the namespace to serve in, made
    /// by the test (which may have started something of its own in it),
    /// instead of a fresh one.
    netns: Option<Netns>,
}

impl Builder {
    pub fn arg(mut self, arg: &str) -> Builder {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Builder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Builder {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Builder {
        self.env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Exactly the test's flags, no defaults.
    pub fn bare(mut self) -> Builder {
        self.bare = true;
        self
    }

    /// Plain HTTP even when the suites run over TLS ([`test_tls`]): for a
    /// test whose point is what a plaintext client sees.
    pub fn plaintext(mut self) -> Builder {
        self.plaintext = true;
        self
    }

    /// Whether [`Builder::start`] serves this one over TLS with a test
    /// certificate.
    fn adds_tls(&self) -> bool {
        test_tls() && !self.bare && !self.plaintext && !self.gives("--tls-cert")
    }

    /// Serves in `ns` (see the field) rather than a namespace of its own.
    pub fn netns(mut self, ns: Netns) -> Builder {
        self.netns = Some(ns);
        self
    }

    /// Limits the child's open descriptors (`ulimit -n`).
    pub fn fd_limit(mut self, n: u64) -> Builder {
        self.fd_limit = Some(n);
        self
    }

    /// Starts the server and waits for its ready line; panics (with its
    /// stderr) if it exits or stays silent instead.
    pub fn start(mut self) -> Server {
        let pki = self.adds_tls().then(|| Pki::new(false));
        let mut extra: Vec<String> = pki.as_ref().map(|p| p.flags().to_vec()).unwrap_or_default();
        let user = test_user_stack() && !self.bare && !self.gives("--listen");
        let netns = user.then(|| self.netns.take().unwrap_or_else(Netns::create));
        if let Some(ns) = &netns {
            // The server is born in the namespace; so is every client this
            // thread (or a thread or process it starts) makes from now on.
            ns.enter();
            extra.extend(
                [
                    "--stack",
                    "user",
                    "--link",
                    "tun:tun0",
                    "--listen",
                    &ns.addr.to_string(),
                ]
                .map(String::from),
            );
        }
        let (child, pipe, root) = self.spawn(&extra);
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let shared = Arc::clone(&stderr);
        // Keeps reading stderr for the server's whole life so the pipe
        // never fills, and reports the address from the ready line. The
        // sender is dropped at EOF: a server that exits early is seen at
        // once.
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut pipe = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match pipe.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&raw);
                let line = text.trim_end_matches(['\r', '\n']);
                // Kept before the address is reported: a test that reads the
                // log right after start must find the ready line in it.
                {
                    let mut log = shared.lock().expect("stderr lock");
                    log.push_str(line);
                    log.push('\n');
                }
                if let Some(addr) = ready_addr(line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            root,
            stderr,
            reader: Some(reader),
            exited: None,
            tls: None,
            netns,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                let _ = server.child.kill();
                let status = server.child.wait();
                server.join_reader();
                panic!(
                    "glasshouse did not print its ready line (status {status:?}); stderr:\n{}",
                    server.log()
                );
            }
        }
        if let Some(ns) = &server.netns {
            ns.register();
        }
        if let Some(pki) = pki {
            let cfg = client_config(&pki.ca);
            register_tls(server.addr, Arc::clone(&cfg));
            server.tls = Some((pki, cfg));
        }
        server
    }

    /// Runs the binary until it exits by itself (for configuration errors
    /// and subcommands). Returns the status and stderr; panics (after
    /// killing it) if it is still running after `timeout`.
    pub fn run_to_exit(self, timeout: Duration) -> (ExitStatus, String) {
        let (mut child, mut pipe, _root) = self.spawn(&[]);
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        });
        let end = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("glasshouse {:?} did not exit within {timeout:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, reader.join().expect("stderr reader"))
    }

    /// Spawns the child with its stderr piped, `extra` flags before the
    /// test's own; the temporary root must outlive it.
    fn spawn(&self, extra: &[String]) -> (Child, ChildStderr, tempfile::TempDir) {
        let root = test_root();
        let mut child = self
            .command(root.path(), extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn glasshouse");
        let pipe = child.stderr.take().expect("stderr pipe");
        (child, pipe, root)
    }

    fn gives(&self, flag: &str) -> bool {
        self.args
            .iter()
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    }

    fn command(&self, root: &Path, extra: &[String]) -> Command {
        let mut cmd = Command::new(bin());
        if !self.bare {
            let root = root.to_str().expect("UTF-8 temporary path");
            let model = model();
            // A prethreaded pool thread serves one connection at a time:
            // the pool must be larger than any test's concurrency (200
            // keep-alive connections at once in http_raw).
            // So must a preforked pool of worker processes.
            let pool = model == "prethreaded" || model == "preforked";
            let workers = if pool { "256" } else { "2" };
            // Over the user stack the harness's `extra` names the listener,
            // and there is neither a model nor workers to choose.
            let user = extra.iter().any(|a| a == "--stack");
            for (flag, value) in [
                ("--listen", "127.0.0.1:0"),
                ("--workers", workers),
                ("--log-format", "json"),
                ("--model", model.as_str()),
                ("--root", root),
            ] {
                let moot = user && flag != "--log-format" && flag != "--root";
                if !self.gives(flag) && !moot {
                    cmd.arg(flag).arg(value);
                }
            }
            if let Some(feed) = pool_feed().filter(|_| !self.gives("--prethreaded-accept")) {
                cmd.arg("--prethreaded-accept").arg(feed);
            }
        }
        cmd.args(extra)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(scrubbed) {
                cmd.env_remove(name);
            }
        }
        for (name, value) in &self.env {
            cmd.env(name, value);
        }
        if let Some(n) = self.fd_limit {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: the hook runs in the forked child before exec and only
            // calls setrlimit(2), which is async-signal-safe, on a struct
            // it owns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        cmd
    }
}

/// The address in a `listening on http://HOST:PORT` (or `https://`) line.
/// An unspecified host (`0.0.0.0`) means loopback for a test.
pub fn ready_addr(line: &str) -> Option<SocketAddr> {
    const READY: &str = "listening on http://";
    const READY_TLS: &str = "listening on https://";
    let rest = match line.find(READY) {
        Some(at) => &line[at + READY.len()..],
        None => &line[line.find(READY_TLS)? + READY_TLS.len()..],
    };
    // HOST:PORT ends at the first character that cannot be part of it
    // (a quote in JSON logs, a space in text logs).
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || ".:[]".contains(c)))
        .unwrap_or(rest.len());
    let mut addr: SocketAddr = rest[..end].parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}

/// A temporary static root with the standard files.
fn test_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temporary root");
    write_file(root.path(), "index.html", INDEX_HTML.as_bytes());
    write_file(root.path(), "digits.txt", DIGITS_TXT.as_bytes());
    root
}

fn write_file(root: &Path, rel: &str, contents: &[u8]) -> PathBuf {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create dir under root");
    }
    std::fs::write(&path, contents).expect("write file under root");
    path
}

/// A running server process. Killed on drop.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// The temporary static root (`--root` unless the test chose its own),
    /// removed on drop.
    root: tempfile::TempDir,
    /// Everything the server wrote on stderr so far.
    stderr: Arc<Mutex<String>>,
    /// The thread reading stderr; joined once the process has exited.
    reader: Option<JoinHandle<()>>,
    exited: Option<ExitStatus>,
    /// The test certificate and the client trusting it, when the harness
    /// made this one serve TLS ([`test_tls`]).
    tls: Option<(Pki, Arc<ClientConfig>)>,
    /// Its namespace, under `GLASSHOUSE_TEST_STACK=user`; deleted after the
    /// process is gone.
    netns: Option<Netns>,
}

impl Server {
    /// Starts the binary with the default flags and `args`
    /// (`Server::builder().args(args).start()`).
    pub fn start(args: &[&str]) -> Server {
        Server::builder().args(args).start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// True when the harness made this server speak TLS ([`test_tls`]):
    /// the support clients connect to it over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The client configuration trusting this server's test certificate.
    pub fn tls_config(&self) -> Option<Arc<ClientConfig>> {
        self.tls.as_ref().map(|(_, cfg)| Arc::clone(cfg))
    }

    /// The test CA's PEM file (curl `--cacert`, Python `ssl`).
    pub fn tls_ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|(pki, _)| pki.ca_file())
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The temporary static root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates (or replaces) a file under the root.
    pub fn add_file(&self, rel: &str, contents: &[u8]) -> PathBuf {
        write_file(self.root.path(), rel, contents)
    }

    /// Sends a signal (`libc::SIGTERM`, ...) to the server process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid, which is not reaped
        // before `wait_exit` (so it cannot name another process).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(
            rc,
            0,
            "kill({}, {sig}): {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// Everything the server logged so far (all of it once
    /// [`Server::wait_exit`] has returned).
    pub fn log(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// The stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.log().lines().map(str::to_string).collect()
    }

    /// The stderr lines, parsed as JSON where they are JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until the log contains `needle`, looking every 20 ms; false
    /// after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.stderr.lock().expect("stderr lock").contains(needle) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit and for the rest of its stderr;
    /// panics (after killing it) on timeout, with its stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                // The pipe is closed now: let the reader catch up.
                self.join_reader();
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.join_reader();
                panic!(
                    "server did not exit within {timeout:?}; stderr:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then asserts a graceful exit (status 0) within `timeout`;
    /// returns every stderr line.
    pub fn stop(mut self, timeout: Duration) -> Vec<String> {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(timeout);
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIGTERM; stderr:\n{}",
            self.log()
        );
        self.stderr_lines()
    }

    /// `GET path` on a fresh connection with `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        get_close(self.addr, path)
    }

    /// Asserts the server still answers `/healthz` with 200.
    pub fn assert_healthy(&self) {
        let r = self.get("/healthz");
        assert_eq!(r.status, 200, "healthz after the case: {r:?}");
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {r:?}");
        r.text()
    }

    fn join_reader(&mut self) {
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((_, cfg)) = &self.tls {
            forget_tls(self.addr, cfg);
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_reader();
    }
}

/// Runs the binary with exactly `args` (no default flags, the scrubbed
/// environment) until it exits; see [`Builder::run_to_exit`].
pub fn run_to_exit(args: &[&str], timeout: Duration) -> (ExitStatus, String) {
    Server::builder().bare().args(args).run_to_exit(timeout)
}
