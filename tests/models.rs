//! What each server model (`--model`) must show beyond the shared suites
//! (which `make test-models` runs against every model): a slow client that
//! sends half a head and stalls is cut off at the header timeout — while
//! another client is served, or, in `iterative`, with the other client
//! waiting in the backlog until it is — and SIGTERM under load drains with
//! zero failures among the requests sent before the signal. Each test
//! names its model, so these run once per `cargo test` whatever
//! `GLASSHOUSE_TEST_MODEL` says. No timing assertions: the order of events
//! is read from the server's own counts.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Client, Server, PATIENCE};

/// A slow client in a model that serves connections at once: other
/// clients are answered while the first is still held (the server counts
/// it open), then the first gets its 408 and is closed. Each look at the
/// stats is a new connection, so that a process model's child (which
/// sees the figures as of its fork) reads fresh ones; `min_open` is what
/// that look must count: 2 where a connection counts itself before it is
/// answered, 1 in `forking`, whose child was forked before its own
/// connection was counted.
fn slow_client_is_cut_off_while_others_are_served(model: &str, min_open: u64) {
    slow_client_cut_off(model, &[], min_open);
}

/// [`slow_client_is_cut_off_while_others_are_served`] with more flags.
fn slow_client_cut_off(model: &str, extra: &[&str], min_open: u64) {
    let mut args = vec!["--model", model, "--header-timeout", "3", "--workers", "2"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let mut slow = Client::connect(server.addr());
    slow.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    let end = Instant::now() + PATIENCE;
    loop {
        let mut other = Client::connect(server.addr());
        let stats = other.get("/api/stats");
        assert_eq!(stats.status, 200, "{stats:?}");
        let v = stats.json();
        assert_eq!(v["model"], model, "{v}");
        if v["connections_open"].as_u64() >= Some(min_open) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the slow client never counted open: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = slow.read_response().expect("408 at the header timeout");
    r.assert_json_error(408);
    assert!(r.closes(), "{r:?}");
    assert!(slow.closed_within(PATIENCE), "the slow client is closed");
    assert_eq!(Client::connect(server.addr()).get("/healthz").status, 200);
}

#[test]
fn threaded_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("threaded", 2);
}

#[test]
fn prethreaded_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("prethreaded", 2);
}

#[test]
fn prethreaded_queue_cuts_off_a_slow_client_and_serves_others() {
    slow_client_cut_off("prethreaded", &["--prethreaded-accept", "queue"], 2);
}

#[test]
fn poll_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("poll", 2);
}

#[test]
fn forking_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("forking", 2);
}

#[test]
fn preforked_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("preforked", 2);
}

#[test]
fn io_uring_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("io_uring", 2);
}

/// In `iterative` the slow client holds the only thread: the other client
/// waits in the backlog and is served once the slow one has had its 408
/// and been closed — the stats it gets count only itself open, and the
/// refusal among the requests.
#[test]
fn iterative_serves_the_next_client_once_a_slow_one_is_cut_off() {
    let server = Server::start(&["--model", "iterative", "--header-timeout", "2"]);
    let mut slow = Client::connect(server.addr());
    slow.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    let mut other = Client::connect(server.addr());
    other.send(b"GET /api/stats HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = slow.read_response().expect("408 at the header timeout");
    r.assert_json_error(408);
    assert!(slow.closed_within(PATIENCE), "the slow client is closed");
    let stats = other.read_response().expect("the waiting client is served");
    assert_eq!(stats.status, 200, "{stats:?}");
    let v = stats.json();
    assert_eq!(v["model"], "iterative", "{v}");
    assert_eq!(
        v["connections_open"], 1,
        "served only after the slow one was closed: {v}"
    );
    assert!(v["requests_total"].as_u64() >= Some(1), "{v}");
}

/// Load from several keep-alive clients (quick and held-back answers),
/// SIGTERM in the middle of it: every request fully sent before the signal
/// is answered 200, and the server exits 0. Requests sent after the signal
/// may be refused or cut off; that is the drain.
fn sigterm_under_load(model: &str) {
    sigterm_under_load_with(model, &[]);
}

/// [`sigterm_under_load`] with more flags.
fn sigterm_under_load_with(model: &str, extra: &[&str]) {
    let mut args = vec!["--model", model, "--drain-timeout", "20"];
    args.extend_from_slice(extra);
    let mut server = Server::start(&args);
    let addr = server.addr();
    let signalled = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (signalled, answered, failures) =
                (signalled.clone(), answered.clone(), failures.clone());
            std::thread::spawn(move || {
                let paths = ["/healthz", "/api/slow?ms=20", "/digits.txt"];
                let mut n = 0usize;
                'connections: loop {
                    let before_connect = !signalled.load(Ordering::SeqCst);
                    let Ok(mut c) = Client::try_connect(addr) else {
                        if before_connect {
                            failures.lock().unwrap().push(format!("client {i}: connect refused before the signal"));
                        }
                        return;
                    };
                    loop {
                        let path = paths[(i + n) % paths.len()];
                        n += 1;
                        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
                        let wrote = c.stream.write_all(req.as_bytes()).is_ok();
                        // Read after the write: false means the whole request
                        // was sent before the signal flag was raised, and so
                        // before the signal.
                        let before = wrote && !signalled.load(Ordering::SeqCst);
                        let r = if wrote { c.read_response() } else { None };
                        match r {
                            Some(r) if r.status == 200 => {
                                answered.fetch_add(1, Ordering::SeqCst);
                                if r.closes() {
                                    if signalled.load(Ordering::SeqCst) {
                                        return;
                                    }
                                    continue 'connections;
                                }
                            }
                            other => {
                                if before {
                                    failures.lock().unwrap().push(format!(
                                        "client {i}: GET {path} sent before the signal got {other:?}"
                                    ));
                                }
                                return;
                            }
                        }
                        if signalled.load(Ordering::SeqCst) && !before {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Load first: wait (bounded) until answers flow.
    let end = Instant::now() + PATIENCE * 3;
    while answered.load(Ordering::SeqCst) < 60 {
        assert!(
            Instant::now() < end,
            "no load reached the server; stderr:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signalled.store(true, Ordering::SeqCst);
    server.signal(libc::SIGTERM);
    for c in clients {
        c.join().expect("client thread");
    }
    let status = server.wait_exit(PATIENCE * 3);
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; stderr:\n{}",
        server.log()
    );
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "requests started before SIGTERM failed under --model {model}:\n{}\nstderr:\n{}",
        failures.join("\n"),
        server.log()
    );
}

#[test]
fn iterative_drains_under_load() {
    sigterm_under_load("iterative");
}

#[test]
fn threaded_drains_under_load() {
    sigterm_under_load("threaded");
}

#[test]
fn prethreaded_drains_under_load() {
    sigterm_under_load("prethreaded");
}

#[test]
fn prethreaded_queue_drains_under_load() {
    sigterm_under_load_with("prethreaded", &["--prethreaded-accept", "queue"]);
}

#[test]
fn poll_drains_under_load() {
    sigterm_under_load("poll");
}

#[test]
fn forking_drains_under_load() {
    sigterm_under_load("forking");
}

#[test]
fn preforked_drains_under_load() {
    sigterm_under_load("preforked");
}

#[test]
fn epoll_drains_under_load() {
    sigterm_under_load("epoll");
}

#[test]
fn io_uring_drains_under_load() {
    sigterm_under_load("io_uring");
}

/// The children of `pid` that are zombies (state `Z` in /proc).
fn zombies_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so read
        // after its closing parenthesis.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if state == Some("Z") && ppid == Some(pid.to_string().as_str()) {
            out.push(child);
        }
    }
    out
}

/// Many short connections to `forking`, from several clients at once so
/// that children end together: every one is answered, the figures the
/// children relay reach the parent's `/api/stats`, and no zombie child of
/// the server is left (looked at again, boundedly, while the last ones are
/// reaped).
#[test]
fn forking_leaves_no_zombie_after_many_short_connections() {
    let server = Server::start(&["--model", "forking"]);
    let addr = server.addr();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..40 {
                    let r = support::get_close(addr, "/healthz");
                    assert_eq!(r.status, 200, "{r:?}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    let end = Instant::now() + PATIENCE;
    loop {
        let v = Client::connect(addr).get("/api/stats").json();
        assert_eq!(v["model"], "forking", "{v}");
        if v["requests_total"].as_u64() >= Some(320) {
            break;
        }
        assert!(Instant::now() < end, "figures missing: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // No new connection from here: the children of those above end, and
    // are reaped at the parent's next SIGCHLD look (each accept tick).
    let end = Instant::now() + PATIENCE;
    loop {
        let zombies = zombies_of(server.pid());
        if zombies.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "zombie children {zombies:?} stayed\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = server.metrics_text();
    assert!(
        metrics.contains("glasshouse_worker_requests_total{worker=\"0\"}"),
        "{metrics}"
    );
}

/// `--max-connections` caps the live children of `forking`: with the cap
/// held by idle keep-alive clients, the next connection gets the 503 JSON
/// refusal and is closed; once a held client leaves (and its child is
/// reaped), a new connection is served.
#[test]
fn forking_refuses_over_the_child_cap() {
    let server = Server::start(&["--model", "forking", "--max-connections", "2"]);
    let addr = server.addr();
    let mut held: Vec<Client> = (0..2).map(|_| Client::connect(addr)).collect();
    for c in &mut held {
        assert_eq!(c.get("/healthz").status, 200);
    }
    let r = support::get_close(addr, "/healthz");
    r.assert_json_error(503);
    drop(held.pop());
    let end = Instant::now() + PATIENCE;
    loop {
        let r = support::get_close(addr, "/healthz");
        if r.status == 200 {
            break;
        }
        r.assert_json_error(503);
        assert!(Instant::now() < end, "the freed place never came back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of the live (not zombie) children of `pid`.
fn live_children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next());
        if state != Some("Z") && ppid == Some(pid.to_string().as_str()) {
            out.push(child);
        }
    }
    out.sort();
    out
}

/// `preforked` keeps its pool: a worker process killed with SIGKILL is
/// reaped and replaced (a new pid appears, the pool is back to
/// `--workers`), and the server keeps answering throughout; the stats,
/// answered by whichever child, count the work of all of them.
#[test]
fn preforked_replaces_a_killed_worker_process() {
    let server = Server::start(&["--model", "preforked", "--workers", "3"]);
    let addr = server.addr();
    let end = Instant::now() + PATIENCE;
    let before = loop {
        let kids = live_children_of(server.pid());
        if kids.len() == 3 {
            break kids;
        }
        assert!(Instant::now() < end, "pool never reached 3: {kids:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for _ in 0..30 {
        assert_eq!(support::get_close(addr, "/healthz").status, 200);
    }
    let victim = before[0];
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .expect("kill(1)");
    assert!(killed.success());
    // A connection the victim took just before it died is lost with it;
    // the others are served by the rest of the pool.
    let end = Instant::now() + PATIENCE;
    loop {
        let _ = support::get(addr, "/healthz", &[]);
        let kids = live_children_of(server.pid());
        if kids.len() == 3 && !kids.contains(&victim) {
            assert!(kids.iter().any(|k| !before.contains(k)), "{kids:?}");
            break;
        }
        assert!(
            Instant::now() < end,
            "no new worker process: {kids:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..30 {
        assert_eq!(support::get_close(addr, "/healthz").status, 200);
    }
    assert!(
        server.wait_log("worker process ended; starting another", PATIENCE),
        "{}",
        server.log()
    );
    let end = Instant::now() + PATIENCE;
    loop {
        let v = Client::connect(addr).get("/api/stats").json();
        assert_eq!(v["model"], "preforked", "{v}");
        if v["requests_total"].as_u64() >= Some(30) {
            break;
        }
        assert!(Instant::now() < end, "children's work not counted: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names of the threads of process `pid` (`/proc/PID/task/*/comm`).
fn thread_names(pid: i32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc/PID/task")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim_end().to_string())
        .collect();
    names.sort();
    names
}

/// `--prethreaded-accept` is how the pool is fed: `turn` runs the pool
/// threads alone (each accepts), `queue` an acceptor thread beside them;
/// both serve a burst of short connections from several clients at once,
/// every request answered.
#[test]
fn prethreaded_feeds_its_pool_in_turn_or_through_a_queue() {
    for (feed, acceptor) in [("turn", false), ("queue", true)] {
        let server = Server::start(&[
            "--model",
            "prethreaded",
            "--workers",
            "3",
            "--prethreaded-accept",
            feed,
        ]);
        // A thread names itself once it runs: look again, boundedly.
        let want = ["worker-0", "worker-1", "worker-2"];
        let end = Instant::now() + PATIENCE;
        let names = loop {
            let names = thread_names(server.pid());
            if want.iter().all(|w| names.iter().any(|n| n == w)) {
                break names;
            }
            assert!(Instant::now() < end, "{feed}: {names:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            names.iter().any(|n| n == "acceptor"),
            acceptor,
            "{feed}: {names:?}"
        );
        let addr = server.addr();
        let clients: Vec<_> = (0..6)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let r = support::get_close(addr, "/healthz");
                        assert_eq!(r.status, 200, "{r:?}");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client thread");
        }
        let v = Client::connect(addr).get("/api/stats").json();
        assert!(v["requests_total"].as_u64() >= Some(120), "{feed}: {v}");
    }
}
