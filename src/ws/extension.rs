//! `Sec-WebSocket-Extensions` negotiation for permessage-deflate
//! (RFC 6455 §9.1, RFC 7692 §5 and §7.1).
//!
//! Parses the client's offers, picks the first one the server can honour and
//! writes the response parameters. An offer the server cannot honour (an
//! unknown or repeated parameter, a bad value, a `server_max_window_bits` of
//! 8, which zlib cannot produce) is declined and the next one considered;
//! when none fits, the connection simply goes on without compression.

/// permessage-deflate settings agreed for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression window after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its window after each message, so the server may
    /// too when inflating.
    pub client_no_context_takeover: bool,
    /// The window the server compresses with, 9..=15; sent in the response
    /// when the client asked for a limit.
    pub server_max_window_bits: u8,
    /// Whether `server_max_window_bits` appears in the response.
    pub send_server_max_window_bits: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` response value.
    pub fn response_header(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.send_server_max_window_bits {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        s
    }
}

/// The server's policy for permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflatePolicy {
    /// Always reset the compression window after each message, even when
    /// the client did not ask (RFC 7692 §7.1.1.1 allows it). Saves the
    /// compressor's memory between messages at some cost in ratio.
    pub server_no_context_takeover: bool,
}

/// One parsed extension offer: its name and parameters.
#[derive(Debug, PartialEq, Eq)]
struct Offer<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<&'a str>)>,
}

/// Split header values into offers. Parameters are `name` or
/// `name=value`, the value a token or a quoted string (§9.1).
fn parse_offers<'a>(values: &[&'a str]) -> Vec<Offer<'a>> {
    let mut offers = Vec::new();
    for value in values {
        for item in value.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => {
                        let v = v.trim();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or(v);
                        (k.trim(), Some(v))
                    }
                    None => (p, None),
                })
                .collect();
            offers.push(Offer { name, params });
        }
    }
    offers
}

/// A window-bits value: a decimal 8..=15 without leading zeros (§7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    match v.as_bytes() {
        [d] if (b'8'..=b'9').contains(d) => Some(d - b'0'),
        [b'1', d] if (b'0'..=b'5').contains(d) => Some(10 + d - b'0'),
        _ => None,
    }
}

/// Accept one permessage-deflate offer, or decline it with `None`.
fn accept_offer(offer: &Offer<'_>, policy: &DeflatePolicy) -> Option<DeflateParams> {
    let mut params = DeflateParams {
        server_no_context_takeover: policy.server_no_context_takeover,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        send_server_max_window_bits: false,
    };
    let mut seen: Vec<&str> = Vec::new();
    for &(name, value) in &offer.params {
        if seen.contains(&name) {
            return None; // §7.1: a repeated parameter declines the offer.
        }
        seen.push(name);
        match (name, value) {
            ("server_no_context_takeover", None) => params.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => params.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                let bits = window_bits(v)?;
                if bits < 9 {
                    return None; // zlib cannot compress with a 256-byte window.
                }
                params.server_max_window_bits = bits;
                params.send_server_max_window_bits = true;
            }
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                // The client limits itself; we inflate with 15 bits, which
                // reads anything, so the response need not mention it.
                window_bits(v)?;
            }
            _ => return None,
        }
    }
    Some(params)
}

/// Pick the first acceptable permessage-deflate offer among the
/// `Sec-WebSocket-Extensions` values; other extensions are ignored.
pub fn negotiate(values: &[&str], policy: &DeflatePolicy) -> Option<DeflateParams> {
    parse_offers(values)
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case("permessage-deflate"))
        .find_map(|o| accept_offer(o, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(value: &str) -> Option<String> {
        negotiate(&[value], &DeflatePolicy::default()).map(|p| p.response_header())
    }

    #[test]
    fn negotiation_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("permessage-deflate", Some("permessage-deflate")),
            (
                "permessage-deflate; client_max_window_bits",
                Some("permessage-deflate"),
            ),
            (
                "permessage-deflate; client_max_window_bits=10",
                Some("permessage-deflate"),
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                Some("permessage-deflate; server_max_window_bits=10"),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"12\"",
                Some("permessage-deflate; server_max_window_bits=12"),
            ),
            // Declined: zlib cannot honour 8.
            ("permessage-deflate; server_max_window_bits=8", None),
            // Declined: bad values, missing values, unknown or repeated parameters.
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; client_max_window_bits=7", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; foo", None),
            (
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                None,
            ),
            // Other extensions are ignored.
            ("x-webkit-deflate-frame", None),
            ("", None),
            // The first acceptable offer wins.
            (
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9, permessage-deflate",
                Some("permessage-deflate; server_max_window_bits=9"),
            ),
            (
                "foo, permessage-deflate; client_max_window_bits; server_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover"),
            ),
        ];
        for (offer, expect) in cases {
            assert_eq!(neg(offer).as_deref(), *expect, "offer {offer:?}");
        }
    }

    #[test]
    fn offers_across_header_lines() {
        let got = negotiate(
            &[
                "permessage-deflate; bogus",
                "permessage-deflate; client_no_context_takeover",
            ],
            &DeflatePolicy::default(),
        );
        assert_eq!(
            got.map(|p| p.response_header()).as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
    }

    #[test]
    fn policy_forces_no_context_takeover() {
        let policy = DeflatePolicy {
            server_no_context_takeover: true,
        };
        let got = negotiate(&["permessage-deflate"], &policy).map(|p| p.response_header());
        assert_eq!(
            got.as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }
}
