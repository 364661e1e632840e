//! The engine's upgrade step: the WebSocket opening handshake, server side
//! (RFC 6455 §4.2). An application route only says that it takes WebSocket
//! sessions ([`crate::app::Response::websocket`]); the engine then runs
//! [`accept`] on the request: it checks it, negotiates a subprotocol and
//! permessage-deflate, and answers either `101 Switching Protocols` with the
//! session to start ([`Upgrade`]) or an error in the contract's JSON shape.
//! It lives here, between HTTP and WebSocket, so that neither `ws` nor `app`
//! needs the other's request and response types.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::app::{Request, Response, Version};
use crate::ws::extension;
use crate::ws::{Upgrade, WsApp, WsOptions};

/// The GUID appended to the key (§1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a key (§4.2.2 step 5.4): base64 of the SHA-1
/// of the key followed by the GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// The values of every header named `name` (fields may repeat, §4.1).
fn values<'a, 'r>(req: &'r Request<'a>, name: &'r str) -> impl Iterator<Item = &'a [u8]> + 'r {
    req.headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// All comma-separated tokens of every header named `name`, trimmed.
fn tokens<'a>(req: &Request<'a>, name: &str) -> Vec<&'a str> {
    values(req, name)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn has_token(req: &Request<'_>, name: &str, token: &str) -> bool {
    tokens(req, name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// `426 Upgrade Required`, naming what we speak (§4.4, RFC 9110 §15.5.22).
fn upgrade_required(message: &str) -> Response {
    Response::error(426, message)
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
}

/// A valid `Sec-WebSocket-Key`: exactly one, base64 of 16 bytes (§4.1).
fn valid_key<'a>(req: &Request<'a>) -> Option<&'a str> {
    let mut keys = values(req, "sec-websocket-key");
    let key = keys.next()?;
    if keys.next().is_some() {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?.trim();
    let decoded = BASE64.decode(key).ok()?;
    (decoded.len() == 16).then_some(key)
}

fn select_protocol(req: &Request<'_>, opts: &WsOptions) -> Option<String> {
    let offered = tokens(req, "sec-websocket-protocol");
    if offered.is_empty() {
        return None;
    }
    match &opts.select_protocol {
        Some(select) => select(&offered).filter(|p| offered.contains(&p.as_str())),
        None => offered
            .iter()
            .find(|p| opts.protocols.iter().any(|s| s == *p))
            .map(|p| p.to_string()),
    }
}

/// The answer to an upgrade request: `101` with the session to start, or
/// a refusal (`upgrade` is `None`).
#[derive(Debug)]
pub struct Handshake {
    pub response: Response,
    pub upgrade: Option<Upgrade>,
}

fn refuse(response: Response) -> Handshake {
    Handshake {
        response,
        upgrade: None,
    }
}

/// Answer a WebSocket upgrade request (§4.2.1, §4.2.2): `101` with the
/// session to run, or `405`/`400`/`426`/`403` with a JSON error.
pub fn accept(req: &Request<'_>, opts: &WsOptions, app: Box<dyn WsApp>) -> Handshake {
    if req.method != "GET" {
        return refuse(
            Response::error(405, "WebSocket upgrade requires GET").header("Allow", "GET"),
        );
    }
    if req.version != Version::Http11 {
        return refuse(Response::error(400, "WebSocket upgrade requires HTTP/1.1"));
    }
    if !has_token(req, "upgrade", "websocket") || !has_token(req, "connection", "upgrade") {
        return refuse(upgrade_required(
            "this endpoint requires a WebSocket upgrade",
        ));
    }
    match req.header_str("sec-websocket-version").map(str::trim) {
        Some("13") => {}
        _ => {
            return refuse(upgrade_required(
                "unsupported Sec-WebSocket-Version; use 13",
            ))
        }
    }
    let Some(key) = valid_key(req) else {
        return refuse(Response::error(400, "missing or invalid Sec-WebSocket-Key"));
    };
    if let (Some(allowed), Some(origin)) = (&opts.allowed_origins, req.header("origin")) {
        let ok = allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(origin.trim_ascii()));
        if !ok {
            return refuse(Response::error(403, "origin not allowed"));
        }
    }

    let mut config = opts.session.clone();
    config.protocol = select_protocol(req, opts);
    config.deflate = opts.deflate.as_ref().and_then(|policy| {
        let offers: Vec<&str> = values(req, "sec-websocket-extensions")
            .filter_map(|v| std::str::from_utf8(v).ok())
            .collect();
        extension::negotiate(&offers, policy)
    });

    let mut resp = Response::new(101, crate::app::Body::Empty)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept_key(key));
    if let Some(protocol) = &config.protocol {
        resp = resp.header("Sec-WebSocket-Protocol", protocol.clone());
    }
    if let Some(deflate) = &config.deflate {
        resp = resp.header("Sec-WebSocket-Extensions", deflate.response_header());
    }
    Handshake {
        response: resp,
        upgrade: Some(Upgrade { app, config }),
    }
}

#[cfg(test)]
mod tests;
