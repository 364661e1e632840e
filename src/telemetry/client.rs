//! The client address telemetry records (`client.address` on spans, the
//! access log's `client`) and the header rules match (`clients`, `allow`):
//! the socket's peer, or, when the peer is one of the `--trusted-proxy`
//! ranges, whom its `Forwarded`/`X-Forwarded-For` names (parsed by
//! [`crate::http::forwarded`]).
//!
//! The ranges are process-wide and replaced whole by a reload; with none
//! configured (the default) a request costs one atomic load here.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::app::Request;
use crate::http::forwarded::{client_address, Cidr};

static ANY: AtomicBool = AtomicBool::new(false);
static TRUSTED: RwLock<Option<Arc<[Cidr]>>> = RwLock::new(None);

/// Puts `ranges` in force (an empty list trusts nobody).
pub fn set_trusted_proxies(ranges: Vec<Cidr>) {
    let any = !ranges.is_empty();
    *TRUSTED.write().unwrap_or_else(|e| e.into_inner()) = any.then(|| ranges.into());
    ANY.store(any, Ordering::Release);
}

/// Whether `ip` is in a `--trusted-proxy` range.
pub fn is_trusted_proxy(ip: IpAddr) -> bool {
    if !ANY.load(Ordering::Acquire) {
        return false;
    }
    TRUSTED
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_deref()
        .is_some_and(|ranges| ranges.iter().any(|c| c.contains(ip)))
}

/// The headers' lines joined with `,` (a list header may be split).
fn joined(req: &Request<'_>, name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
    {
        let v = String::from_utf8_lossy(h.value);
        match &mut out {
            Some(s) => {
                s.push(',');
                s.push_str(&v);
            }
            None => out = Some(v.into_owned()),
        }
    }
    out
}

/// The client of `req`.
pub fn client_of(req: &Request<'_>) -> IpAddr {
    let peer = req.peer.ip();
    if !ANY.load(Ordering::Acquire) {
        return peer;
    }
    let Some(trusted) = TRUSTED.read().unwrap_or_else(|e| e.into_inner()).clone() else {
        return peer;
    };
    client_address(
        peer,
        &trusted,
        joined(req, "Forwarded").as_deref(),
        joined(req, "X-Forwarded-For").as_deref(),
    )
}
