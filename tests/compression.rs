//! On-the-fly compression and validators from the outside: codings chosen
//! by `Accept-Encoding` q-values and decoded by real decoders, `Vary` on
//! every variant (304 and 206 included), a strong ETag per encoding,
//! `Range` from the identity, archives and images left alone, small files
//! left alone, precompressed siblings preferred, the saving counted in
//! `/metrics`, and content-hash ETags for files whose mtime is the epoch.

mod support;

use std::io::Read;
use std::process::Command;
use std::time::Instant;

use support::{prom_value, Client, Server, PATIENCE};

fn script() -> String {
    (0..400)
        .map(|i| format!("export function f{i}(x) {{ return x * {i} + 1; }}\n"))
        .collect()
}

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap(),
        "zstd" => out = zstd::stream::decode_all(body).unwrap(),
        other => panic!("unexpected coding {other}"),
    }
    out
}

#[test]
fn codings_follow_q_values_and_each_variant_has_its_own_etag() {
    let server = Server::start(&[]);
    let js = script();
    server.add_file("app.js", js.as_bytes());
    let mut c = Client::connect(server.addr());
    let mut etags = Vec::new();
    for (accept, want) in [
        ("br;q=1, gzip;q=0.5", "br"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("zstd", "zstd"),
        ("br;q=0, gzip", "gzip"),
        ("*", "br"),
    ] {
        let r = c
            .get_with("/app.js", &[("Accept-Encoding", accept)])
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some(want), "{accept}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(r.body.len() < js.len() / 3, "{accept}: {}", r.body.len());
        assert_eq!(decode(want, &r.body), js.as_bytes(), "{accept}");
        etags.push((want, r.header("etag").unwrap().to_string()));
    }
    let plain = c.get_with("/app.js", &[]).unwrap();
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.body, js.as_bytes());
    let identity = plain.header("etag").unwrap().to_string();
    for (coding, tag) in &etags {
        assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");
        assert_ne!(tag, &identity, "{coding}");
    }
    let br = &etags[0].1;
    assert_ne!(br, &etags[1].1);
    assert_ne!(br, &etags[2].1);

    // 304 for the br variant, with Vary; the identity's tag does not match it.
    let r = c
        .get_with(
            "/app.js",
            &[("Accept-Encoding", "br"), ("If-None-Match", br)],
        )
        .unwrap();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("etag"), Some(br.as_str()));
    let r = c
        .get_with(
            "/app.js",
            &[("Accept-Encoding", "br"), ("If-None-Match", &identity)],
        )
        .unwrap();
    assert_eq!(r.status, 200);

    // Range: from the identity, with Vary.
    let r = c
        .get_with(
            "/app.js",
            &[("Accept-Encoding", "br, gzip"), ("Range", "bytes=0-9")],
        )
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, &js.as_bytes()[..10]);

    let m = server.get("/metrics");
    let saved = prom_value(&m.text(), "glasshouse_compression_saved_bytes_total").unwrap();
    assert!(saved > js.len() as f64, "saved {saved}");
}

#[test]
fn archives_images_and_small_files_are_left_alone() {
    let server = Server::start(&[]);
    let big = vec![b'a'; 64 * 1024];
    server.add_file("bundle.zip", &big);
    server.add_file("picture.png", &big);
    server.add_file("tiny.css", b"body{}");
    let mut c = Client::connect(server.addr());
    for path in ["/bundle.zip", "/picture.png", "/tiny.css"] {
        let r = c
            .get_with(path, &[("Accept-Encoding", "br, gzip, zstd")])
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.header("vary"), None, "{path}");
    }
}

#[test]
fn precompressed_siblings_are_preferred_and_compression_can_be_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[]);
    let js = script();
    server.add_file("lib.js", js.as_bytes());
    server.add_file("lib.js.gz", b"PRECOMPRESSED");
    let mut c = Client::connect(server.addr());
    let r = c
        .get_with("/lib.js", &[("Accept-Encoding", "gzip, br")])
        .unwrap();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, b"PRECOMPRESSED");
    // br asked above gzip: made on the fly.
    let r = c
        .get_with("/lib.js", &[("Accept-Encoding", "gzip;q=0.5, br")])
        .unwrap();
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(decode("br", &r.body), js.as_bytes());

    let cfg = dir.path().join("off.toml");
    std::fs::write(&cfg, "[compression]\nenabled = false\n").unwrap();
    let off = Server::start(&["--config", cfg.to_str().unwrap()]);
    off.add_file("lib.js", js.as_bytes());
    let r = Client::connect(off.addr())
        .get_with("/lib.js", &[("Accept-Encoding", "br, gzip")])
        .unwrap();
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, js.as_bytes());
}

fn touch_epoch(path: &std::path::Path) {
    let ok = Command::new("touch")
        .arg("-d")
        .arg("@1")
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn epoch_mtimes_get_content_etags_and_no_last_modified() {
    let server = Server::start(&[]);
    let path = server.add_file("nix.txt", b"version one\n");
    touch_epoch(&path);
    let mut c = Client::connect(server.addr());
    let first = c.get_with("/nix.txt", &[]).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("last-modified"), None);
    let tag = first.header("etag").unwrap().to_string();
    assert!(tag.starts_with("\"h-"), "{tag}");
    // If-Modified-Since cannot match a file without a trusted date.
    let r = c
        .get_with(
            "/nix.txt",
            &[("If-Modified-Since", "Thu, 01 Jan 2037 00:00:00 GMT")],
        )
        .unwrap();
    assert_eq!(r.status, 200);

    // Changed in place: same size, mtime put back to the epoch.
    std::fs::write(&path, b"version two\n").unwrap();
    touch_epoch(&path);
    let end = Instant::now() + PATIENCE;
    let changed = loop {
        let r = c.get_with("/nix.txt", &[("If-None-Match", &tag)]).unwrap();
        if r.status == 200 && r.body == b"version two\n" {
            break r;
        }
        assert_eq!(r.status, 304, "{r:?}");
        assert!(Instant::now() < end, "the change was never seen");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_ne!(changed.header("etag"), Some(tag.as_str()));
}
