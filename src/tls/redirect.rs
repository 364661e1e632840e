//! The plaintext listener's application (`--https-redirect`): every
//! request is answered `308 Permanent Redirect` to the same host, path and
//! query over HTTPS, so a browser that typed `http://` lands on the TLS
//! port. Only the host name of `Host` is kept (its port is replaced by the
//! HTTPS one); a request without a usable `Host` gets a `400`.

use crate::app::{Body, Ctx, Handler, Request, Response};

/// Redirects to `https://HOST[:port]/path?query`.
pub struct ToHttps {
    /// The HTTPS port; 443 is left out of the URL.
    pub port: u16,
}

/// The host part of a `Host` value, if it is a plain name or address.
fn host_name(value: &str) -> Option<&str> {
    let host = if let Some(rest) = value.strip_prefix('[') {
        // [v6]:port
        let end = rest.find(']')?;
        &value[..end + 2]
    } else {
        value.split(':').next()?
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    ok.then_some(host)
}

impl Handler for ToHttps {
    fn route(&self, _req: &Request<'_>) -> &'static str {
        "https-redirect"
    }

    fn call(&mut self, req: &Request<'_>, _ctx: &mut Ctx) -> Response {
        let Some(host) = req.header_str("host").and_then(host_name) else {
            return Response::error(400, "a Host header is needed to redirect to HTTPS");
        };
        let mut url = String::from("https://");
        url.push_str(host);
        if self.port != 443 {
            url.push(':');
            url.push_str(itoa::Buffer::new().format(self.port));
        }
        url.push_str(if req.path.is_empty() { "/" } else { req.path });
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(req.query);
        }
        Response::new(308, Body::Empty).header("Location", url)
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_are_kept_and_ports_dropped() {
        assert_eq!(host_name("example.com:8080"), Some("example.com"));
        assert_eq!(host_name("example.com"), Some("example.com"));
        assert_eq!(host_name("[::1]:80"), Some("[::1]"));
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("evil.com/\r\nX: y"), None);
        assert_eq!(host_name("a b"), None);
    }
}
