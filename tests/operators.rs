//! Operators' controls from the outside: the config file (`--config`,
//! `glasshouse check`, SIGHUP reloads that apply all or nothing), header
//! rules by path and type, CORS (simple requests and preflights), the
//! `no-store` default on dynamic answers, trusted proxies naming the
//! client in the access log and in spans (`client.address`), dotfiles and
//! symlinks.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::path::PathBuf;

use support::{lossy, run_to_exit, send_raw, Client, Server, PATIENCE};

fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("glasshouse.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

const RULES: &str = r#"
max_body = 2048

[[rules]]
path = "/**"
headers = { "X-Content-Type-Options" = "nosniff", "Content-Security-Policy" = "default-src 'self'" }

[[rules]]
type = "text/plain"
cache_control = "public, max-age=60"
headers = { "X-Rule" = "plain" }

[[rules]]
path = "/api/**"
cors = { origins = ["https://app.example"], methods = ["GET", "POST"], headers = ["content-type", "x-token"], credentials = true, max_age = 600, expose = ["X-Rule"] }
"#;

fn options(server: &Server, path: &str, headers: &[(&str, &str)]) -> support::Response {
    let mut req = format!("OPTIONS {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let raw = send_raw(server.addr(), req.as_bytes());
    support::parse_response(&raw, false)
        .unwrap_or_else(|| panic!("no answer: {:?}", lossy(&raw)))
        .0
}

#[test]
fn rules_set_headers_by_path_and_by_type() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, RULES);
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    let txt = server.get("/digits.txt");
    assert_eq!(txt.status, 200);
    assert_eq!(txt.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        txt.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(txt.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(txt.header("x-rule"), Some("plain"));
    let html = server.get("/");
    assert_eq!(html.status, 200);
    assert_eq!(html.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        html.header("x-rule"),
        None,
        "the type rule is for text/plain"
    );
    assert_eq!(html.header("cache-control"), Some("no-cache"));
    // A rule's Cache-Control never makes an error cacheable.
    server.add_file("gone.txt", b"x");
    let missing = server.get("/missing.txt");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), Some("no-store"));
    // The file's flags apply: max_body = 2048.
    let mut c = Client::connect(server.addr());
    let body = "x".repeat(4096);
    let r = c.request(
        format!(
            "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 413, "{r:?}");
}

#[test]
fn dynamic_answers_are_never_cacheable_by_accident() {
    let server = Server::start(&[]);
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/stats",
        "/api/config",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(r.header_count("cache-control"), 1, "{path}");
    }
    // Files keep their own policy.
    assert_eq!(
        server.get("/digits.txt").header("cache-control"),
        Some("no-cache")
    );
}

#[test]
fn cors_preflights_are_answered_without_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(&dir, RULES);
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    // /api/nothing exists nowhere: the preflight is answered from the rule.
    let ok = options(
        &server,
        "/api/nothing",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "Content-Type, X-Token"),
        ],
    );
    assert_eq!(ok.status, 204, "{ok:?}");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("Content-Type, X-Token")
    );
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert!(ok.header("vary").unwrap_or("").contains("Origin"));
    for (origin, method, headers, why) in [
        ("https://evil.example", "POST", "", "origin"),
        ("https://app.example", "DELETE", "", "method"),
        ("https://app.example", "POST", "X-Other", "header"),
    ] {
        let mut h = vec![
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
        ];
        if !headers.is_empty() {
            h.push(("Access-Control-Request-Headers", headers));
        }
        let refused = options(&server, "/api/stats", &h);
        assert_eq!(refused.status, 403, "{why}: {refused:?}");
        assert!(refused.text().contains(why), "{}", refused.text());
        assert_eq!(refused.header("access-control-allow-origin"), None);
    }
    // A simple request from an allowed origin gets the grant; others do not.
    let mut c = Client::connect(server.addr());
    let r = c
        .get_with("/api/stats", &[("Origin", "https://app.example")])
        .unwrap();
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Rule"));
    let r = c
        .get_with("/api/stats", &[("Origin", "https://evil.example")])
        .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Outside the rule's paths, OPTIONS is what it always was.
    let other = options(
        &server,
        "/digits.txt",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(other.status, 405);
}

#[test]
fn check_validates_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(&dir, RULES);
    let (status, out) = run_to_exit(&["check", "--config", good.to_str().unwrap()], PATIENCE);
    assert_eq!(status.code(), Some(0), "{out}");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let (status, out) = run_to_exit(&["check", "--config", empty.to_str().unwrap()], PATIENCE);
    assert_eq!(status.code(), Some(0), "{out}");
    for (text, needle) in [
        ("max_bdy = 5\n", "unknown key `max_bdy`"),
        ("listen = \"nowhere\"\n", "--listen"),
        ("[[rules]]\npath = \"/x\"\ncolour = \"red\"\n", "colour"),
        ("[[rules]]\npath = \"no-slash\"\n", "rules[0].path"),
        ("max_body = [\n", "line"),
        (
            "[[rules]]\nallow = [\"10.0.0.0/33\"]\n",
            "rules[0].allow[0]",
        ),
        ("[[rules]]\nclients = []\n", "rules[0].clients is empty"),
        (
            "[[rules]]\ntype = \"text/html\"\nallow = [\"10.0.0.0/8\"]\n",
            "allow cannot go with type",
        ),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let (status, out) = run_to_exit(&["check", "--config", bad.to_str().unwrap()], PATIENCE);
        assert_eq!(status.code(), Some(2), "{text}: {out}");
        let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {out}");
        assert!(lines[0].contains(needle), "{text}: {out}");
    }
    // The environment names the file too.
    let bad = dir.path().join("env.toml");
    std::fs::write(&bad, "nonsense = 1\n").unwrap();
    let (status, out) = Server::builder()
        .bare()
        .args(&["check"])
        .env("GLASSHOUSE_CONFIG", bad.to_str().unwrap())
        .run_to_exit(PATIENCE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("nonsense"), "{out}");
}

#[test]
fn sighup_applies_a_valid_file_whole_and_keeps_the_old_one_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = "[[rules]]\npath = \"/**\"\nheaders = { \"X-Version\" = \"1\" }\n";
    let cfg = write_config(&dir, v1);
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(server.get("/digits.txt").header("x-version"), Some("1"));

    // A broken file: nothing changes, and the log says why.
    std::fs::write(
        &cfg,
        "[[rules]]\npath = \"/**\"\nheaders = { \"X-Version\" = \"2\" }\nbogus_key = 1\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_log("not reloaded", PATIENCE),
        "{}",
        server.log()
    );
    assert!(server.log().contains("bogus_key"), "{}", server.log());
    assert_eq!(server.get("/digits.txt").header("x-version"), Some("1"));

    // A good one: applied; a setting that needs a restart is named.
    std::fs::write(
        &cfg,
        "ws_max_message = 4096\n[[rules]]\npath = \"/**\"\nheaders = { \"X-Version\" = \"2\" }\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_log("configuration reloaded", PATIENCE),
        "{}",
        server.log()
    );
    assert!(server.log().contains("need a restart"), "{}", server.log());
    assert_eq!(server.get("/digits.txt").header("x-version"), Some("2"));
    server.assert_healthy();
}

fn access_client(server: &Server) -> Vec<String> {
    server
        .json_lines()
        .into_iter()
        .filter(|v| v["target"] == "glasshouse::access")
        .filter_map(|v| {
            v.get("client")
                .or_else(|| v["fields"].get("client"))
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let trusting = Server::start(&["--access-log", "--trusted-proxy", "127.0.0.1/32"]);
    let mut c = Client::connect(trusting.addr());
    c.get_with(
        "/healthz",
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.9")],
    )
    .unwrap();
    c.get_with("/healthz", &[("Forwarded", "for=\"[2001:db8::7]:1234\"")])
        .unwrap();
    assert!(trusting.wait_log("glasshouse::access", PATIENCE));
    let _ = trusting.wait_log("2001:db8::7", PATIENCE);
    let clients = access_client(&trusting);
    assert_eq!(
        clients,
        ["203.0.113.9", "2001:db8::7"],
        "{}",
        trusting.log()
    );

    let wary = Server::start(&["--access-log", "--trusted-proxy", "10.0.0.0/8"]);
    let mut c = Client::connect(wary.addr());
    c.get_with("/healthz", &[("X-Forwarded-For", "203.0.113.9")])
        .unwrap();
    assert!(wary.wait_log("glasshouse::access", PATIENCE));
    assert_eq!(access_client(&wary), ["127.0.0.1"], "{}", wary.log());

    let (status, out) = Server::builder()
        .args(&["--trusted-proxy", "10.0.0.0/99"])
        .run_to_exit(PATIENCE);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("--trusted-proxy"), "{out}");
}

#[test]
fn dotfiles_are_refused_but_well_known_and_symlinks_are_policy() {
    let server = Server::start(&[]);
    server.add_file(".well-known/security.txt", b"Contact: mailto:sec@example\n");
    server.add_file(".git/config", b"[core]\n");
    server.add_file("docs/.well-known/x", b"x");
    server.add_file("real.txt", b"real\n");
    std::os::unix::fs::symlink("real.txt", server.root().join("link.txt")).unwrap();
    let r = server.get("/.well-known/security.txt");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"Contact: mailto:sec@example\n");
    assert_eq!(server.get("/.git/config").status, 404);
    assert_eq!(server.get("/docs/.well-known/x").status, 404);
    assert_eq!(server.get("/link.txt").body, b"real\n");

    let strict = Server::start(&["--no-symlinks", "--root", server.root().to_str().unwrap()]);
    assert_eq!(strict.get("/real.txt").status, 200);
    let r = strict.get("/link.txt");
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn spans_name_the_client_behind_a_trusted_proxy() {
    use otlp_receiver::{attr, OtlpReceiver};
    let receiver = OtlpReceiver::start();
    let server = Server::builder()
        .args(&["--trusted-proxy", "127.0.0.0/8"])
        .envs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ])
        .start();
    let mut c = Client::connect(server.addr());
    let r = c
        .get_with(
            "/api/stats",
            &[
                ("X-Forwarded-For", "203.0.113.50"),
                ("User-Agent", "proxied"),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let found = receiver.wait_for(PATIENCE * 3, |rec| {
        rec.spans().into_iter().find(|s| {
            s.name == "GET /api/stats"
                && attr(&s.attributes, "user_agent.original").as_deref() == Some("proxied")
        })
    });
    let span = found.unwrap_or_else(|| panic!("no span; log:\n{}", server.log()));
    assert_eq!(
        attr(&span.attributes, "client.address").as_deref(),
        Some("203.0.113.50")
    );
    assert_eq!(
        attr(&span.attributes, "network.peer.address").as_deref(),
        Some("127.0.0.1")
    );
}

#[test]
fn rules_match_and_refuse_by_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        &dir,
        r#"
trusted_proxy = ["127.0.0.1/32"]

[[rules]]
path = "/metrics"
allow = ["10.0.0.0/8", "2001:db8::/32"]

[[rules]]
clients = ["192.0.2.0/24"]
headers = { "X-Office" = "yes" }
"#,
    );
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    let from = |path: &str, client: Option<&str>| {
        let mut c = Client::connect(server.addr());
        let headers: Vec<(&str, &str)> = client
            .map(|ip| vec![("X-Forwarded-For", ip)])
            .unwrap_or_default();
        c.get_with(path, &headers).expect("an answer")
    };
    // Access: the client the trusted proxy names decides, not the proxy.
    assert_eq!(from("/metrics", Some("10.1.2.3")).status, 200);
    assert_eq!(from("/metrics", Some("2001:db8::5")).status, 200);
    let refused = from("/metrics", Some("203.0.113.9"));
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("client address"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert_eq!(
        from("/metrics", None).status,
        403,
        "the proxy itself is not in allow"
    );
    assert_eq!(
        from("/healthz", Some("203.0.113.9")).status,
        200,
        "only /metrics is guarded"
    );
    // Headers by client range.
    assert_eq!(
        from("/digits.txt", Some("192.0.2.7")).header("x-office"),
        Some("yes")
    );
    assert_eq!(
        from("/digits.txt", Some("198.51.100.1")).header("x-office"),
        None
    );
    server.assert_healthy();
}
