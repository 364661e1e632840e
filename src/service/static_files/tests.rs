//! Tests of the static-file service against real temporary directories.

use std::fs;
use std::os::unix::fs::{symlink, FileExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use super::cache::Limits;
use super::encoding::{choose, Coding};
use super::path::{clean, Clean};
use super::range::{evaluate, Ranged};
use super::{builtin, RootPolicy, StaticFiles};
use crate::app::{Body, Header, Request, Response, Version};
use crate::sys::fs::{Confinement, Kind, Root};

const INDEX: &[u8] = b"<!doctype html><title>app</title>";
const DIGITS: &[u8] = b"0123456789";

/// A root with a typical built frontend in it.
fn site() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("index.html"), INDEX).unwrap();
    fs::write(root.join("digits.txt"), DIGITS).unwrap();
    fs::write(root.join("data.json"), b"{}").unwrap();
    fs::write(root.join("logo.png"), b"\x89PNG").unwrap();
    fs::write(root.join("blob.unknownext"), b"?").unwrap();
    fs::write(root.join(".env"), b"SECRET=1").unwrap();
    fs::create_dir(root.join("assets")).unwrap();
    fs::write(root.join("assets/app-1a2b3c.js"), b"console.log(1)").unwrap();
    fs::write(root.join("assets/app-1a2b3c.js.br"), b"BR").unwrap();
    fs::write(root.join("assets/app-1a2b3c.js.gz"), b"GZIP").unwrap();
    fs::write(root.join("assets/only-gz.css"), b"body{}").unwrap();
    fs::write(root.join("assets/only-gz.css.gz"), b"GZ").unwrap();
    fs::create_dir(root.join("docs")).unwrap();
    fs::write(root.join("docs/index.html"), b"docs").unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/b"), b"a-slash-b").unwrap();
    dir
}

/// The [`site`] and a service over it (keep the directory alive).
fn served() -> (TempDir, StaticFiles) {
    let dir = site();
    let sf = serve_in(dir.path());
    (dir, sf)
}

fn serve_in(root: &Path) -> StaticFiles {
    StaticFiles::new(root, RootPolicy::Required).unwrap()
}

fn addr() -> std::net::SocketAddr {
    "127.0.0.1:1".parse().unwrap()
}

fn call(sf: &mut StaticFiles, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    call_at(sf, method, path, headers, Instant::now())
}

fn call_at(
    sf: &mut StaticFiles,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    now: Instant,
) -> Response {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let headers: Vec<Header<'_>> = headers
        .iter()
        .map(|(name, value)| Header {
            name,
            value: value.as_bytes(),
        })
        .collect();
    let req = Request {
        method,
        path,
        query,
        version: Version::Http11,
        headers: &headers,
        body: b"",
        peer: addr(),
        local: addr(),
    };
    sf.serve(&req, now)
}

fn get(sf: &mut StaticFiles, path: &str, headers: &[(&str, &str)]) -> Response {
    call(sf, "GET", path, headers)
}

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn body(response: &Response) -> Vec<u8> {
    match &response.body {
        Body::Empty => Vec::new(),
        Body::Static(b) => b.to_vec(),
        Body::Bytes(b) => b.clone(),
        Body::Shared(b) => b.to_vec(),
        Body::File { file, offset, len } => {
            let mut buf = vec![0; *len as usize];
            file.read_exact_at(&mut buf, *offset).unwrap();
            buf
        }
        Body::Stream(_) => panic!("static files never stream"),
    }
}

fn assert_not_found(response: &Response) {
    assert_eq!(response.status, 404, "headers {:?}", response.headers);
    assert_eq!(body(response), br#"{"error":"not found"}"#);
}

// ---- methods -------------------------------------------------------------

#[test]
fn other_methods_get_405_with_allow() {
    let (_dir, mut sf) = served();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
        let r = call(&mut sf, method, "/index.html", &[]);
        assert_eq!(r.status, 405);
        assert_eq!(header(&r, "Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn head_has_the_get_headers_and_body_length() {
    let (_dir, mut sf) = served();
    let g = get(&mut sf, "/digits.txt", &[]);
    let h = call(&mut sf, "HEAD", "/digits.txt", &[]);
    assert_eq!(h.status, 200);
    assert_eq!(h.headers, g.headers);
    assert_eq!(h.body.len(), Some(10));
    // Range is defined for GET only.
    let h = call(&mut sf, "HEAD", "/digits.txt", &[("Range", "bytes=0-1")]);
    assert_eq!(h.status, 200);
}

// ---- headers -------------------------------------------------------------

#[test]
fn content_types() {
    let (_dir, mut sf) = served();
    let cases = [
        ("/index.html", "text/html; charset=utf-8"),
        ("/digits.txt", "text/plain; charset=utf-8"),
        ("/data.json", "application/json; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/assets/app-1a2b3c.js", "text/javascript; charset=utf-8"),
        ("/blob.unknownext", "application/octet-stream"),
    ];
    for (path, expected) in cases {
        let r = get(&mut sf, path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(header(&r, "Content-Type"), Some(expected), "{path}");
    }
}

#[test]
fn validators_and_caching_headers() {
    let (dir, mut sf) = served();
    let r = get(&mut sf, "/digits.txt", &[]);
    assert_eq!(body(&r), DIGITS);
    let etag = header(&r, "ETag").unwrap();
    assert!(etag.starts_with("\"a-") && etag.ends_with('"'), "{etag}");
    let modified = fs::metadata(dir.path().join("digits.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        header(&r, "Last-Modified"),
        Some(httpdate::fmt_http_date(modified).as_str())
    );
    assert_eq!(header(&r, "Accept-Ranges"), Some("bytes"));
    assert_eq!(header(&r, "Cache-Control"), Some("no-cache"));
    assert_eq!(header(&r, "Vary"), None);
    assert_eq!(
        header(&r, "Content-Length"),
        None,
        "the protocol layer adds it"
    );
    let r = get(&mut sf, "/assets/app-1a2b3c.js", &[]);
    assert_eq!(
        header(&r, "Cache-Control"),
        Some("public, max-age=31536000, immutable")
    );
}

// ---- conditional requests ------------------------------------------------

/// The `ETag` and `Last-Modified` a plain `GET` of `path` answers with.
fn validators_of(sf: &mut StaticFiles, path: &str) -> (String, String) {
    let r = get(sf, path, &[]);
    let value = |name| header(&r, name).unwrap().to_owned();
    (value("ETag"), value("Last-Modified"))
}

/// An HTTP date long before any test file was written.
fn long_ago() -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
}

#[test]
fn if_none_match_gives_304() {
    let (_dir, mut sf) = served();
    let (etag, _) = validators_of(&mut sf, "/digits.txt");
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    for value in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
        let r = get(&mut sf, "/digits.txt", &[("If-None-Match", value)]);
        assert_eq!(r.status, 304, "{value}");
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "ETag"), Some(etag.as_str()));
        assert!(header(&r, "Cache-Control").is_some());
    }
    let r = get(&mut sf, "/digits.txt", &[("If-None-Match", "\"other\"")]);
    assert_eq!(r.status, 200);
    let r = call(&mut sf, "HEAD", "/digits.txt", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
}

#[test]
fn if_modified_since_and_its_precedence() {
    let (_dir, mut sf) = served();
    let (etag, last_modified) = validators_of(&mut sf, "/digits.txt");
    let past = long_ago();
    let r = get(
        &mut sf,
        "/digits.txt",
        &[("If-Modified-Since", &last_modified)],
    );
    assert_eq!(r.status, 304);
    let r = get(&mut sf, "/digits.txt", &[("If-Modified-Since", &past)]);
    assert_eq!(r.status, 200);
    let r = get(&mut sf, "/digits.txt", &[("If-Modified-Since", "garbage")]);
    assert_eq!(r.status, 200);
    // If-None-Match wins over If-Modified-Since, both ways (RFC 9110 §13.2.2).
    let r = get(
        &mut sf,
        "/digits.txt",
        &[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", &last_modified),
        ],
    );
    assert_eq!(r.status, 200);
    let r = get(
        &mut sf,
        "/digits.txt",
        &[("If-None-Match", &etag), ("If-Modified-Since", &past)],
    );
    assert_eq!(r.status, 304);
}

#[test]
fn if_match_and_if_unmodified_since_give_412() {
    let (_dir, mut sf) = served();
    let (etag, _) = validators_of(&mut sf, "/digits.txt");
    let past = long_ago();
    assert_eq!(
        get(&mut sf, "/digits.txt", &[("If-Match", &etag)]).status,
        200
    );
    assert_eq!(
        get(&mut sf, "/digits.txt", &[("If-Match", "*")]).status,
        200
    );
    let weak = format!("W/{etag}");
    assert_eq!(
        get(&mut sf, "/digits.txt", &[("If-Match", &weak)]).status,
        412
    );
    assert_eq!(
        get(&mut sf, "/digits.txt", &[("If-Match", "\"x\"")]).status,
        412
    );
    let r = get(&mut sf, "/digits.txt", &[("If-Unmodified-Since", &past)]);
    assert_eq!(r.status, 412);
}

// ---- ranges --------------------------------------------------------------

#[test]
fn single_ranges() {
    let (_dir, mut sf) = served();
    let cases: [(&str, &[u8], &str); 6] = [
        ("bytes=0-4", b"01234", "bytes 0-4/10"),
        ("bytes=5-", b"56789", "bytes 5-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=-100", DIGITS, "bytes 0-9/10"),
        ("bytes=8-999", b"89", "bytes 8-9/10"),
        ("Bytes = 3-3", b"3", "bytes 3-3/10"),
    ];
    for (range, expected, content_range) in cases {
        let r = get(&mut sf, "/digits.txt", &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(body(&r), expected, "{range}");
        assert_eq!(header(&r, "Content-Range"), Some(content_range), "{range}");
        assert!(header(&r, "ETag").is_some());
    }
}

#[test]
fn unsatisfiable_and_ignored_ranges() {
    let (_dir, mut sf) = served();
    for range in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
        let r = get(&mut sf, "/digits.txt", &[("Range", range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(header(&r, "Content-Range"), Some("bytes */10"));
    }
    // Several ranges, other units, nonsense: the whole file.
    for range in [
        "bytes=0-1,3-4",
        "items=0-1",
        "bytes=5-2",
        "bytes=x-",
        "bytes",
    ] {
        let r = get(&mut sf, "/digits.txt", &[("Range", range)]);
        assert_eq!(r.status, 200, "{range}");
        assert_eq!(body(&r), DIGITS);
        assert_eq!(header(&r, "Content-Range"), None);
    }
}

#[test]
fn if_range() {
    let (_dir, mut sf) = served();
    let (etag, date) = validators_of(&mut sf, "/digits.txt");
    let weak = format!("W/{etag}");
    let old_date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
    for (if_range, status) in [
        (etag.as_str(), 206),
        (date.as_str(), 206),
        ("\"stale\"", 200),
        (weak.as_str(), 200),
        (old_date.as_str(), 200),
    ] {
        let r = get(
            &mut sf,
            "/digits.txt",
            &[("Range", "bytes=0-1"), ("If-Range", if_range)],
        );
        assert_eq!(r.status, status, "{if_range}");
    }
}

#[test]
fn range_parser() {
    assert_eq!(
        evaluate(b"bytes=0-0", 1),
        Ranged::Partial { start: 0, len: 1 }
    );
    assert_eq!(evaluate(b"bytes=0-", 0), Ranged::Unsatisfiable);
    assert_eq!(evaluate(b"bytes=-5", 0), Ranged::Unsatisfiable);
    assert_eq!(evaluate(b"bytes=-", 10), Ranged::Full);
    assert_eq!(evaluate(b"bytes=+1-2", 10), Ranged::Full);
    assert_eq!(evaluate(b"bytes=1-+2", 10), Ranged::Full);
    assert_eq!(
        evaluate(b"bytes=0-18446744073709551615", 10),
        Ranged::Partial { start: 0, len: 10 }
    );
    assert_eq!(evaluate(b"bytes=99999999999999999999-", 10), Ranged::Full);
    assert_eq!(evaluate(b"\xff", 10), Ranged::Full);
}

// ---- directories and the SPA fallback -------------------------------------

#[test]
fn directories_serve_index_html() {
    let (_dir, mut sf) = served();
    let r = get(&mut sf, "/", &[]);
    assert_eq!((r.status, body(&r)), (200, INDEX.to_vec()));
    assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
    let r = get(&mut sf, "/docs/", &[]);
    assert_eq!((r.status, body(&r)), (200, b"docs".to_vec()));
    let r = get(&mut sf, "//docs//", &[]);
    assert_eq!((r.status, body(&r)), (200, b"docs".to_vec()));
    // No listings.
    assert_not_found(&get(&mut sf, "/empty/", &[]));
}

#[test]
fn directories_without_slash_redirect() {
    let (dir, mut sf) = served();
    let r = get(&mut sf, "/docs", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(header(&r, "Location"), Some("/docs/"));
    let r = get(&mut sf, "/docs?tab=2", &[]);
    assert_eq!(header(&r, "Location"), Some("/docs/?tab=2"));
    // Never a protocol-relative `//host/` location.
    let r = get(&mut sf, "//docs", &[]);
    assert_eq!(header(&r, "Location"), Some("/docs/"));
    fs::create_dir(dir.path().join("with space")).unwrap();
    let r = get(&mut sf, "/with%20space", &[]);
    assert_eq!(header(&r, "Location"), Some("/with%20space/"));
}

#[test]
fn spa_fallback() {
    let (_dir, mut sf) = served();
    let html = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    for path in ["/app/settings", "/users/42", "/deep/route/"] {
        let r = get(&mut sf, path, &html);
        assert_eq!((r.status, body(&r)), (200, INDEX.to_vec()), "{path}");
        assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
    }
    assert_eq!(call(&mut sf, "HEAD", "/app/settings", &html).status, 200);
    // Paths with an extension, or not asked for as HTML, stay 404.
    assert_not_found(&get(&mut sf, "/x.js", &html));
    assert_not_found(&get(&mut sf, "/app/settings", &[]));
    assert_not_found(&get(
        &mut sf,
        "/app/settings",
        &[("Accept", "application/json")],
    ));
    // Refused paths never fall back.
    assert_not_found(&get(&mut sf, "/../etc/passwd", &html));
    assert_not_found(&get(&mut sf, "/.git", &html));
}

// ---- precompressed siblings ----------------------------------------------

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let (_dir, mut sf) = served();
    let js = "/assets/app-1a2b3c.js";
    let cases: [(Option<&str>, &[u8], Option<&str>); 9] = [
        (Some("gzip, deflate, br"), b"BR", Some("br")),
        (Some("br;q=0, gzip"), b"GZIP", Some("gzip")),
        (Some("gzip;q=0.5, br;q=0.4"), b"GZIP", Some("gzip")),
        (Some("gzip;q=1.0, br;q=1"), b"BR", Some("br")),
        (Some("*"), b"BR", Some("br")),
        (Some("*;q=0, gzip"), b"GZIP", Some("gzip")),
        (Some("identity"), b"console.log(1)", None),
        (Some("br;q=0.000, gzip;q=0"), b"console.log(1)", None),
        (None, b"console.log(1)", None),
    ];
    let mut etags = std::collections::HashSet::new();
    for (accept, expected, encoding) in cases {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let r = get(&mut sf, js, &headers);
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(body(&r), expected, "{accept:?}");
        assert_eq!(header(&r, "Content-Encoding"), encoding, "{accept:?}");
        assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"), "{accept:?}");
        assert_eq!(
            header(&r, "Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        etags.insert(header(&r, "ETag").unwrap().to_owned());
    }
    assert_eq!(etags.len(), 3, "one ETag per representation: {etags:?}");
    // Only a .gz sibling: br asked first still gets gzip.
    let r = get(
        &mut sf,
        "/assets/only-gz.css",
        &[("Accept-Encoding", "br, gzip")],
    );
    assert_eq!(body(&r), b"GZ");
    assert_eq!(header(&r, "Content-Encoding"), Some("gzip"));
    let r = get(&mut sf, "/assets/only-gz.css", &[("Accept-Encoding", "br")]);
    assert_eq!(header(&r, "Content-Encoding"), None);
    assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"));
}

#[test]
fn ranges_come_from_the_identity_and_validators_from_the_chosen_representation() {
    let (_dir, mut sf) = served();
    let js = "/assets/app-1a2b3c.js";
    let br = [("Accept-Encoding", "br")];
    let r = get(
        &mut sf,
        js,
        &[("Accept-Encoding", "br"), ("Range", "bytes=1-")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(body(&r), b"onsole.log(1)");
    assert_eq!(header(&r, "Content-Range"), Some("bytes 1-13/14"));
    assert_eq!(header(&r, "Content-Encoding"), None);
    assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"));
    let br_etag = header(&get(&mut sf, js, &br), "ETag").unwrap().to_owned();
    let (plain_etag, _) = validators_of(&mut sf, js);
    let r = get(
        &mut sf,
        js,
        &[("Accept-Encoding", "br"), ("If-None-Match", &br_etag)],
    );
    assert_eq!(r.status, 304);
    assert_eq!(header(&r, "Vary"), Some("Accept-Encoding"));
    let r = get(
        &mut sf,
        js,
        &[("Accept-Encoding", "br"), ("If-None-Match", &plain_etag)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(body(&r), b"BR");
}

#[test]
fn accept_encoding_parser() {
    assert_eq!(choose(Some(b"br"), false, false), Coding::Identity);
    assert_eq!(choose(Some(b"BR"), true, true), Coding::Brotli);
    assert_eq!(choose(Some(b"x-gzip"), true, true), Coding::Gzip);
    assert_eq!(choose(Some(b"gzip;q=0.001"), true, true), Coding::Gzip);
    assert_eq!(choose(Some(b"br;q=2"), true, true), Coding::Identity);
    assert_eq!(
        choose(Some(b"br ; q=0.9, gzip ; q=0.95"), true, true),
        Coding::Gzip
    );
    assert_eq!(choose(Some(b"\xff"), true, true), Coding::Identity);
}

// ---- path safety ---------------------------------------------------------

#[test]
fn traversal_and_odd_encodings_are_refused() {
    let (_dir, mut sf) = served();
    // `a/b` exists, so `%2f` not being a slash is what makes it 404.
    assert_eq!(get(&mut sf, "/a/b", &[]).status, 200);
    for path in [
        "/../etc/passwd",
        "/docs/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/docs/%2e%2e/index.html",
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a\\b",
        "/..\\etc\\passwd",
        "/index.html%00",
        "/index.html%00.png",
        "/%ff",
        "/.env",
        "/%2eenv",
        "/docs/.hidden",
        "/a%0ab",
        "relative",
        "",
    ] {
        assert_not_found(&get(&mut sf, path, &[]));
    }
}

#[test]
fn path_cleaning() {
    let ok = |rel: &str, trailing_slash| {
        Some(Clean {
            rel: rel.to_owned(),
            trailing_slash,
        })
    };
    assert_eq!(clean("/"), ok("", true));
    assert_eq!(clean("//a///b/"), ok("a/b", true));
    assert_eq!(clean("/./a/./b"), ok("a/b", false));
    assert_eq!(clean("/caf%C3%A9.txt"), ok("café.txt", false));
    assert_eq!(clean("/a%20b"), ok("a b", false));
    assert_eq!(clean("/100%"), ok("100%", false));
    assert_eq!(clean("/a/.."), None);
    assert_eq!(clean("/%c3"), None);
}

fn symlinked_site() -> TempDir {
    let dir = site();
    let root = dir.path();
    symlink("/etc", root.join("etc-link")).unwrap();
    symlink("/etc/passwd", root.join("passwd")).unwrap();
    symlink("../../../../../../../../etc/passwd", root.join("climb")).unwrap();
    symlink("digits.txt", root.join("alias.txt")).unwrap();
    symlink("docs", root.join("docs-link")).unwrap();
    symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();
    dir
}

fn check_symlinks(sf: &mut StaticFiles) {
    for path in [
        "/etc-link/passwd",
        "/etc-link/",
        "/passwd",
        "/climb",
        "/magic",
    ] {
        assert_not_found(&get(sf, path, &[]));
    }
    let r = get(sf, "/alias.txt", &[]);
    assert_eq!((r.status, body(&r)), (200, DIGITS.to_vec()));
    let r = get(sf, "/docs-link/", &[]);
    assert_eq!((r.status, body(&r)), (200, b"docs".to_vec()));
}

#[test]
fn symlinks_inside_the_root_work_and_escapes_are_refused() {
    let dir = symlinked_site();
    check_symlinks(&mut serve_in(dir.path()));
}

#[test]
fn the_proc_fallback_refuses_the_same_escapes() {
    let dir = symlinked_site();
    let mut sf = StaticFiles::open(
        dir.path(),
        RootPolicy::Required,
        Limits::default(),
        Confinement::ProcCheck,
    )
    .unwrap();
    check_symlinks(&mut sf);
}

#[test]
fn absolute_symlinks_back_inside_depend_on_the_confinement() {
    let dir = site();
    symlink(dir.path().join("digits.txt"), dir.path().join("abs.txt")).unwrap();
    // openat2 RESOLVE_BENEATH refuses every absolute symlink...
    let mut sf = serve_in(dir.path());
    if Root::new(dir.path(), Confinement::Auto)
        .unwrap()
        .uses_openat2()
    {
        assert_not_found(&get(&mut sf, "/abs.txt", &[]));
    }
    // ...the /proc fallback judges only where it lands.
    let mut sf = StaticFiles::open(
        dir.path(),
        RootPolicy::Required,
        Limits::default(),
        Confinement::ProcCheck,
    )
    .unwrap();
    assert_eq!(get(&mut sf, "/abs.txt", &[]).status, 200);
}

#[test]
fn a_root_reached_through_a_symlink_works() {
    let dir = site();
    let outer = tempfile::tempdir().unwrap();
    let link = outer.path().join("dist");
    symlink(dir.path(), &link).unwrap();
    for confinement in [Confinement::Auto, Confinement::ProcCheck] {
        let mut sf =
            StaticFiles::open(&link, RootPolicy::Required, Limits::default(), confinement).unwrap();
        assert_eq!(get(&mut sf, "/digits.txt", &[]).status, 200);
    }
}

#[test]
fn the_root_reports_escapes_as_exdev() {
    let dir = symlinked_site();
    for confinement in [Confinement::Auto, Confinement::ProcCheck] {
        let root = Root::new(dir.path(), confinement).unwrap();
        if confinement == Confinement::ProcCheck {
            assert!(!root.uses_openat2());
        }
        for rel in [
            "..",
            "../../etc/passwd",
            "etc-link/passwd",
            "passwd",
            "climb",
            "/etc/passwd",
        ] {
            let err = root.open(rel, Kind::Any).unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EXDEV),
                "{rel} {confinement:?}"
            );
        }
        assert!(root.open("alias.txt", Kind::Any).is_ok());
        assert!(root.open(".", Kind::Directory).is_ok());
        let err = root.open("digits.txt", Kind::Directory).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    }
}

#[test]
fn fifos_are_not_served() {
    let dir = site();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !status.is_ok_and(|s| s.success()) {
        return; // no mkfifo here; nothing to check
    }
    let mut sf = serve_in(dir.path());
    assert_not_found(&get(&mut sf, "/pipe", &[]));
}

#[test]
fn workers_share_the_root_and_keep_their_own_cache() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let dir = site();
    let template = serve_in(dir.path());
    send_sync(&template);
    let mut workers: Vec<StaticFiles> = (0..2).map(|_| template.for_worker()).collect();
    let handles: Vec<_> = workers
        .drain(..)
        .map(|mut sf| {
            std::thread::spawn(move || {
                let r = get(&mut sf, "/digits.txt", &[]);
                (r.status, body(&r), sf.cache.len())
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), (200, DIGITS.to_vec(), 1));
    }
    assert_eq!(template.cache.len(), 0);
}

// ---- the root itself ------------------------------------------------------

#[test]
fn a_missing_root_is_an_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("dist");
    let err = StaticFiles::new(&missing, RootPolicy::Required).unwrap_err();
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = StaticFiles::new(&file, RootPolicy::MayBeMissing).unwrap_err();
    assert!(err.contains("file"), "{err}");
}

#[test]
fn a_missing_root_serves_the_built_in_page_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dist");
    let mut sf = StaticFiles::new(&root, RootPolicy::MayBeMissing).unwrap();
    assert!(!sf.has_root());
    let t0 = Instant::now();
    let r = call_at(&mut sf, "GET", "/", &[], t0);
    assert_eq!(r.status, 200);
    assert_eq!(body(&r), builtin::NOT_BUILT);
    assert!(String::from_utf8_lossy(&body(&r))
        .contains("cd frontend &amp;&amp; npm ci &amp;&amp; npm run build"));
    assert_eq!(header(&r, "Content-Type"), Some("text/html; charset=utf-8"));
    let html = [("Accept", "text/html")];
    assert_eq!(
        body(&call_at(&mut sf, "GET", "/app/route", &html, t0)),
        builtin::NOT_BUILT
    );
    assert_not_found(&call_at(&mut sf, "GET", "/x.js", &html, t0));
    // The frontend gets built while the server runs.
    fs::create_dir(&root).unwrap();
    fs::write(root.join("index.html"), INDEX).unwrap();
    let later = t0 + Duration::from_secs(2);
    let r = call_at(&mut sf, "GET", "/", &[], later);
    assert_eq!(body(&r), INDEX);
    assert!(sf.has_root());
}

#[test]
fn a_root_without_index_html_serves_the_built_in_page() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("other.txt"), b"x").unwrap();
    let mut sf = serve_in(dir.path());
    let r = get(&mut sf, "/", &[]);
    assert_eq!((r.status, body(&r)), (200, builtin::NOT_BUILT.to_vec()));
    let r = get(&mut sf, "/some/route", &[("Accept", "text/html")]);
    assert_eq!((r.status, body(&r)), (200, builtin::NOT_BUILT.to_vec()));
    assert_eq!(get(&mut sf, "/other.txt", &[]).status, 200);
}

#[test]
fn a_replaced_root_is_picked_up() {
    let outer = tempfile::tempdir().unwrap();
    let dist = outer.path().join("dist");
    fs::create_dir(&dist).unwrap();
    fs::write(dist.join("index.html"), b"old").unwrap();
    let mut sf = serve_in(&dist);
    let t0 = Instant::now();
    assert_eq!(body(&call_at(&mut sf, "GET", "/", &[], t0)), b"old");
    // A build tool deletes and recreates the directory.
    fs::rename(&dist, outer.path().join("dist.old")).unwrap();
    fs::create_dir(&dist).unwrap();
    fs::write(dist.join("index.html"), b"new").unwrap();
    let later = t0 + Duration::from_secs(2);
    assert_eq!(body(&call_at(&mut sf, "GET", "/", &[], later)), b"new");
    // A symlink swap, as in `current -> releases/N` deploys.
    let releases = [outer.path().join("r1"), outer.path().join("r2")];
    for (i, release) in releases.iter().enumerate() {
        fs::create_dir(release).unwrap();
        fs::write(release.join("index.html"), format!("release {i}")).unwrap();
    }
    let current = outer.path().join("current");
    symlink(&releases[0], &current).unwrap();
    let mut sf = serve_in(&current);
    assert_eq!(body(&call_at(&mut sf, "GET", "/", &[], t0)), b"release 0");
    let next = outer.path().join("current.next");
    symlink(&releases[1], &next).unwrap();
    fs::rename(&next, &current).unwrap();
    assert_eq!(
        body(&call_at(&mut sf, "GET", "/", &[], later)),
        b"release 1"
    );
    // The path vanishing keeps the last good directory.
    fs::remove_file(&current).unwrap();
    let much_later = later + Duration::from_secs(2);
    assert_eq!(
        body(&call_at(&mut sf, "GET", "/", &[], much_later)),
        b"release 1"
    );
}

// ---- cache and big files --------------------------------------------------

#[test]
fn cached_files_are_revalidated_once_a_second() {
    let dir = site();
    let path = dir.path().join("digits.txt");
    let mut sf = serve_in(dir.path());
    let t0 = Instant::now();
    let first = call_at(&mut sf, "GET", "/digits.txt", &[], t0);
    assert!(matches!(first.body, Body::Shared(_)));
    // Same size, different content and mtime.
    fs::write(&path, b"abcdefghij").unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(file);
    let cached = call_at(
        &mut sf,
        "GET",
        "/digits.txt",
        &[],
        t0 + Duration::from_millis(500),
    );
    assert_eq!(
        body(&cached),
        DIGITS,
        "served from memory within the second"
    );
    let fresh = call_at(
        &mut sf,
        "GET",
        "/digits.txt",
        &[],
        t0 + Duration::from_secs(2),
    );
    assert_eq!(body(&fresh), b"abcdefghij");
    assert_ne!(header(&fresh, "ETag"), header(&first, "ETag"));
    // A deleted file disappears at the next revalidation.
    fs::remove_file(&path).unwrap();
    assert_not_found(&call_at(
        &mut sf,
        "GET",
        "/digits.txt",
        &[],
        t0 + Duration::from_secs(4),
    ));
}

#[test]
fn unchanged_files_keep_their_cached_bytes() {
    let (_dir, mut sf) = served();
    let t0 = Instant::now();
    let Body::Shared(a) = call_at(&mut sf, "GET", "/digits.txt", &[], t0).body else {
        panic!("small files come from the cache");
    };
    let Body::Shared(b) = call_at(
        &mut sf,
        "GET",
        "/digits.txt",
        &[],
        t0 + Duration::from_secs(5),
    )
    .body
    else {
        panic!("small files come from the cache");
    };
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

#[test]
fn big_files_go_out_with_sendfile() {
    let dir = site();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(dir.path().join("big.bin"), &big).unwrap();
    let mut sf = serve_in(dir.path());
    for _ in 0..2 {
        // a miss, then a cache hit that reuses the open descriptor
        let r = get(&mut sf, "/big.bin", &[]);
        match &r.body {
            Body::File { offset, len, .. } => assert_eq!((*offset, *len), (0, 200_000)),
            other => panic!("expected a file body, got {other:?}"),
        }
        assert_eq!(body(&r), big);
    }
    let r = get(&mut sf, "/big.bin", &[("Range", "bytes=100000-100009")]);
    assert_eq!(r.status, 206);
    match &r.body {
        Body::File { offset, len, .. } => assert_eq!((*offset, *len), (100_000, 10)),
        other => panic!("expected a file body, got {other:?}"),
    }
    assert_eq!(body(&r), &big[100_000..100_010]);
    // Replaced on disk (new inode): like a small file, the entry notices at
    // its next revalidation, and the old descriptor is let go.
    fs::write(dir.path().join("big.new"), vec![7u8; 70_000]).unwrap();
    fs::rename(dir.path().join("big.new"), dir.path().join("big.bin")).unwrap();
    let later = Instant::now() + Duration::from_secs(2);
    let r = call_at(&mut sf, "GET", "/big.bin", &[], later);
    assert_eq!(r.body.len(), Some(70_000));
    assert_eq!(body(&r), vec![7u8; 70_000]);
}

#[test]
fn the_cache_is_bounded() {
    let dir = site();
    for i in 0..10 {
        fs::write(dir.path().join(format!("f{i}.txt")), vec![b'x'; 100]).unwrap();
    }
    let limits = Limits {
        small_file: 1024,
        max_entries: 4,
        max_bytes: 250,
    };
    let mut sf = StaticFiles::with_limits(dir.path(), RootPolicy::Required, limits).unwrap();
    let t0 = Instant::now();
    for i in 0..10u64 {
        let path = format!("/f{i}.txt");
        let r = call_at(&mut sf, "GET", &path, &[], t0 + Duration::from_millis(i));
        assert_eq!(r.body.len(), Some(100));
        assert!(sf.cache.len() <= 4);
        assert!(sf.cache.bytes() <= 250);
    }
    assert_eq!(sf.cache.bytes(), 200);
    // The most recent ones stayed.
    assert!(sf.cache.get_mut("/f9.txt").is_some());
    assert!(sf.cache.get_mut("/f0.txt").is_none());
}

/// Hot-path cost of a cached 1 KiB file: many hits in a row, each a `200`
/// from memory. For the figure, run in release with `--nocapture`
/// (`cargo test --release --lib static_files::tests::hot_path -- --nocapture`),
/// and under `strace -f -e trace=openat2,openat,statx,fstat` to see that the
/// loop makes no syscalls.
#[test]
fn hot_path_timing() {
    let dir = site();
    fs::write(dir.path().join("1k.txt"), vec![b'x'; 1024]).unwrap();
    let mut sf = serve_in(dir.path());
    let headers = [
        ("Host", "localhost"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate, br"),
    ];
    let now = Instant::now();
    assert_eq!(
        call_at(&mut sf, "GET", "/1k.txt", &headers, now).status,
        200
    );
    let n = 20_000u32;
    let start = Instant::now();
    for _ in 0..n {
        let r = call_at(&mut sf, "GET", "/1k.txt", &headers, now);
        assert_eq!(r.status, 200);
    }
    let per = start.elapsed() / n;
    println!("cached 1 KiB GET: {per:?} per request");
}
