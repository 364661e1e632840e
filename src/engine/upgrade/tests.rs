//! Handshake tests: acceptance, refusals, subprotocols, origins and
//! extension negotiation, with header lists built by hand.

use std::net::SocketAddr;

use super::*;
use crate::app::{Header, Request, Version};
use crate::ws::{client, DeflatePolicy, EchoApp};

/// The handshake's answer, flattened for assertions.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    upgrade: Option<crate::ws::Upgrade>,
}

fn answer(h: Handshake) -> Answer {
    Answer {
        status: h.response.status,
        headers: h.response.headers,
        upgrade: h.upgrade,
    }
}

fn request<'a>(method: &'a str, version: Version, headers: &'a [Header<'a>]) -> Request<'a> {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    Request {
        method,
        path: "/ws/echo",
        query: "",
        version,
        headers,
        body: b"",
        peer: addr,
        local: addr,
    }
}

fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
    Header {
        name,
        value: value.as_bytes(),
    }
}

fn good_headers() -> Vec<Header<'static>> {
    vec![
        h("Host", "example.com"),
        h("Upgrade", "websocket"),
        h("Connection", "Upgrade"),
        h("Sec-WebSocket-Key", client::SAMPLE_KEY),
        h("Sec-WebSocket-Version", "13"),
    ]
}

fn with(
    mut headers: Vec<Header<'static>>,
    name: &'static str,
    value: &'static str,
) -> Vec<Header<'static>> {
    headers.retain(|x| !x.name.eq_ignore_ascii_case(name));
    headers.push(h(name, value));
    headers
}

fn without(mut headers: Vec<Header<'static>>, name: &str) -> Vec<Header<'static>> {
    headers.retain(|x| !x.name.eq_ignore_ascii_case(name));
    headers
}

fn handshake(headers: &[Header<'_>], opts: &WsOptions) -> Answer {
    answer(accept(
        &request("GET", Version::Http11, headers),
        opts,
        Box::new(EchoApp),
    ))
}

fn header<'r>(resp: &'r Answer, name: &str) -> Option<&'r str> {
    resp.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn handshake_accepts_rfc_sample() {
    let resp = handshake(&good_headers(), &WsOptions::default());
    assert_eq!(resp.status, 101);
    assert_eq!(
        header(&resp, "Sec-WebSocket-Accept"),
        Some(client::SAMPLE_ACCEPT)
    );
    assert_eq!(header(&resp, "Upgrade"), Some("websocket"));
    assert_eq!(header(&resp, "Connection"), Some("Upgrade"));
    assert_eq!(header(&resp, "Sec-WebSocket-Extensions"), None);
    assert_eq!(header(&resp, "Sec-WebSocket-Protocol"), None);
    let upgrade = resp.upgrade.expect("upgrade");
    assert_eq!(upgrade.config.max_message, 16 << 20);
    assert!(upgrade.config.deflate.is_none());
}

#[test]
fn handshake_token_lists_are_case_insensitive() {
    let headers = with(good_headers(), "Connection", "keep-alive, UPGRADE");
    let headers = with(headers, "Upgrade", "WebSocket");
    assert_eq!(handshake(&headers, &WsOptions::default()).status, 101);
    // Connection tokens spread over two header lines.
    let mut headers = with(good_headers(), "Connection", "keep-alive");
    headers.push(h("connection", "upgrade"));
    assert_eq!(handshake(&headers, &WsOptions::default()).status, 101);
}

#[test]
fn handshake_refusals() {
    let opts = WsOptions::default();
    let cases: Vec<(&str, Vec<Header<'static>>, u16)> = vec![
        ("no upgrade", without(good_headers(), "Upgrade"), 426),
        ("upgrade h2c", with(good_headers(), "Upgrade", "h2c"), 426),
        ("no connection", without(good_headers(), "Connection"), 426),
        (
            "connection close",
            with(good_headers(), "Connection", "close"),
            426,
        ),
        (
            "version 8",
            with(good_headers(), "Sec-WebSocket-Version", "8"),
            426,
        ),
        (
            "no version",
            without(good_headers(), "Sec-WebSocket-Version"),
            426,
        ),
        ("no key", without(good_headers(), "Sec-WebSocket-Key"), 400),
        (
            "key not base64",
            with(good_headers(), "Sec-WebSocket-Key", "not base64!!"),
            400,
        ),
        // base64 of 15 bytes
        (
            "short key",
            with(good_headers(), "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"),
            400,
        ),
        (
            "two keys",
            {
                let mut v = good_headers();
                v.push(h("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="));
                v
            },
            400,
        ),
    ];
    for (name, headers, status) in cases {
        let resp = handshake(&headers, &opts);
        assert_eq!(resp.status, status, "{name}");
        assert!(resp.upgrade.is_none(), "{name}");
        assert_eq!(
            header(&resp, "Content-Type"),
            Some("application/json"),
            "{name}"
        );
        if status == 426 {
            assert_eq!(header(&resp, "Sec-WebSocket-Version"), Some("13"), "{name}");
        }
    }
}

#[test]
fn handshake_refuses_method_and_http10() {
    let headers = good_headers();
    let opts = WsOptions::default();
    let resp = answer(accept(
        &request("POST", Version::Http11, &headers),
        &opts,
        Box::new(EchoApp),
    ));
    assert_eq!(resp.status, 405);
    assert_eq!(header(&resp, "Allow"), Some("GET"));
    let resp = answer(accept(
        &request("GET", Version::Http10, &headers),
        &opts,
        Box::new(EchoApp),
    ));
    assert_eq!(resp.status, 400);
}

#[test]
fn handshake_origin_check() {
    let opts = WsOptions {
        allowed_origins: Some(vec!["https://glasshouse.example".into()]),
        ..WsOptions::default()
    };
    let ok = with(good_headers(), "Origin", "https://GLASSHOUSE.example");
    assert_eq!(handshake(&ok, &opts).status, 101);
    let bad = with(good_headers(), "Origin", "https://evil.example");
    assert_eq!(handshake(&bad, &opts).status, 403);
    // No Origin: not a browser, let through.
    assert_eq!(handshake(&good_headers(), &opts).status, 101);
}

#[test]
fn handshake_subprotocols() {
    let opts = WsOptions {
        protocols: vec!["superchat".into(), "chat".into()],
        ..WsOptions::default()
    };
    let offered = with(good_headers(), "Sec-WebSocket-Protocol", "chat, superchat");
    let resp = handshake(&offered, &opts);
    // The client's order decides among those we speak.
    assert_eq!(header(&resp, "Sec-WebSocket-Protocol"), Some("chat"));
    assert_eq!(
        resp.upgrade.unwrap().config.protocol.as_deref(),
        Some("chat")
    );
    let other = with(good_headers(), "Sec-WebSocket-Protocol", "mqtt");
    let resp = handshake(&other, &opts);
    assert_eq!(resp.status, 101);
    assert_eq!(header(&resp, "Sec-WebSocket-Protocol"), None);

    let hook = WsOptions {
        select_protocol: Some(std::sync::Arc::new(|offered: &[&str]| {
            offered.last().map(|s| s.to_string())
        })),
        ..WsOptions::default()
    };
    let resp = handshake(&offered, &hook);
    assert_eq!(header(&resp, "Sec-WebSocket-Protocol"), Some("superchat"));
    let liar = WsOptions {
        select_protocol: Some(std::sync::Arc::new(|_: &[&str]| Some("other".to_string()))),
        ..WsOptions::default()
    };
    assert_eq!(
        header(&handshake(&offered, &liar), "Sec-WebSocket-Protocol"),
        None
    );
}

#[test]
fn handshake_negotiates_deflate() {
    let offer = with(
        good_headers(),
        "Sec-WebSocket-Extensions",
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
    );
    let on = WsOptions {
        deflate: Some(DeflatePolicy::default()),
        ..WsOptions::default()
    };
    let resp = handshake(&offer, &on);
    assert_eq!(
        header(&resp, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate")
    );
    assert!(resp.upgrade.unwrap().config.deflate.is_some());
    // The default: on, without server context takeover.
    let resp = handshake(&offer, &WsOptions::default());
    assert_eq!(
        header(&resp, "Sec-WebSocket-Extensions"),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // Off.
    let off = WsOptions {
        deflate: None,
        ..WsOptions::default()
    };
    let resp = handshake(&offer, &off);
    assert_eq!(header(&resp, "Sec-WebSocket-Extensions"), None);
    assert!(resp.upgrade.unwrap().config.deflate.is_none());
}
