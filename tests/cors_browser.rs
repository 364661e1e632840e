//! CORS with a real browser: headless Chromium loads a page from one
//! server (one origin) whose script calls another server (another origin)
//! with a custom header, so the browser sends a preflight first. Allowed
//! when the second server's rule names the page's origin; refused (the
//! fetch fails in the page) when it names another. Skipped, saying so,
//! where Chromium is not installed (`scripts/deps.sh` installs it).

mod support;

use support::{chromium, dump_dom, Server};

fn page(api: std::net::SocketAddr) -> String {
    format!(
        "<!doctype html><body>pending<script>\
         fetch('http://{api}/api/stats', {{headers: {{'X-Token': '1'}}}})\
         .then(r => r.json()).then(j => document.body.textContent = 'allowed ' + j.model)\
         .catch(e => document.body.textContent = 'refused');\
         </script></body>"
    )
}

fn api_server(origin: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cors.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[rules]]\npath = \"/api/**\"\ncors = {{ origins = [\"{origin}\"], methods = [\"GET\"], headers = [\"x-token\"] }}\n"
        ),
    )
    .unwrap();
    (Server::start(&["--config", cfg.to_str().unwrap()]), dir)
}

#[test]
fn a_browser_fetch_from_another_origin_is_allowed_or_refused_by_the_rule() {
    let Some(bin) = chromium() else {
        eprintln!("cors_browser: skipped: chromium is not installed");
        return;
    };
    let site = Server::start(&["--access-log"]);
    let origin = format!("http://{}", site.addr());

    let (allowing, _a) = api_server(&origin);
    site.add_file("allowed.html", page(allowing.addr()).as_bytes());
    let dom = dump_dom(bin, &format!("{origin}/allowed.html"), None);
    assert!(dom.contains("allowed "), "{dom}\n{}", allowing.log());

    let (refusing, _b) = api_server("https://elsewhere.example");
    site.add_file("refused.html", page(refusing.addr()).as_bytes());
    let dom = dump_dom(bin, &format!("{origin}/refused.html"), None);
    assert!(dom.contains("refused"), "{dom}");
}
