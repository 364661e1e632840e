//! Who the client is behind a reverse proxy: `Forwarded` (RFC 7239) and
//! `X-Forwarded-For`, believed only from trusted peers.
//!
//! Owns: CIDR ranges ([`Cidr`]) and [`client_address`], which walks the
//! forwarding chain from the nearest hop backwards, skipping hops that are
//! themselves trusted proxies, and stops at the first untrusted one: that
//! is the client. A peer outside every range gets its own address, whatever
//! it sends, so a client cannot forge its address by sending the header.
//! `Forwarded` wins over `X-Forwarded-For` when both are present. Pure:
//! no sockets, no configuration of its own.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range, `10.0.0.0/8`, `::1/128`, or a bare address (`/32`,
/// `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| "expected an address range like 10.0.0.0/8 or ::1/128".to_string())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix length must be 0 to {max}"))?
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    /// Whether `ip` lies in the range (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One `for=` value of `Forwarded`: `192.0.2.1`, `"[2001:db8::1]:443"`,
/// `192.0.2.1:80`; `unknown` and obfuscated names give `None`.
fn node(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    v.rsplit_once(':')?.0.parse().ok()
}

fn forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    value
        .split(',')
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| node(v))
            })?
        })
        .collect()
}

fn x_forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    value.split(',').map(node).collect()
}

/// The client's address. `forwarded` and `xff` are the header values (all
/// lines joined with `,`), `peer` the socket's peer.
pub fn client_address(
    peer: IpAddr,
    trusted: &[Cidr],
    forwarded: Option<&str>,
    xff: Option<&str>,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let chain = match (forwarded, xff) {
        (Some(f), _) => forwarded_for(f),
        (None, Some(x)) => x_forwarded_for(x),
        (None, None) => return peer,
    };
    let mut client = peer;
    for hop in chain.into_iter().rev() {
        // A hop we cannot read ends the walk: what lies before it cannot
        // be vouched for, so the last hop we could read stands.
        let Some(ip) = hop else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8::1")) && !v6.contains(ip("2001:db9::1")));
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let t: Vec<Cidr> = vec!["127.0.0.1/32".parse().unwrap()];
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_address(peer, &t, None, Some("203.0.113.7")),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("127.0.0.2"), &t, None, Some("203.0.113.7")),
            ip("127.0.0.2")
        );
        // The spoofed first entry is ignored: the nearest untrusted hop wins.
        assert_eq!(
            client_address(peer, &t, None, Some("1.1.1.1, 203.0.113.7")),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(
                peer,
                &t,
                Some("for=\"[2001:db8::5]:4711\";proto=https"),
                Some("9.9.9.9")
            ),
            ip("2001:db8::5")
        );
        assert_eq!(
            client_address(peer, &t, Some("for=unknown"), None),
            ip("127.0.0.1")
        );
    }
}
