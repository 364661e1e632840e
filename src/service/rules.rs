//! Operators' header rules: one engine for `Cache-Control`, arbitrary
//! response headers (security headers included) and CORS, matched by path
//! glob or MIME type, plus the `no-store` default that keeps every dynamic
//! answer out of shared caches.
//!
//! Owns: the `[[rules]]` and `[compression]` sections of the config file
//! (parsed and validated whole into a [`Policy`]), applying a policy to a
//! response, answering CORS preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) without touching the file system, and
//! [`Live`], the policy every worker reads and SIGHUP replaces. Leaves to
//! others: which route answers (the router), file headers (static files),
//! framing (the protocol layer).
//!
//! Matching: a rule with neither `path`, `type` nor `clients` matches every
//! request; `path` is a glob on the request path (`*` any run of characters
//! but `/`, `**` anything, `?` one character but `/`); `type` is a MIME type
//! of the response (`text/html`, or `image/*`); `clients` is a list of
//! address ranges the client must be in (the client as `--trusted-proxy`
//! resolves it, so the same address the access log names). A rule with
//! `allow` is access control: a request it matches from a client outside
//! those ranges is answered `403` before any route runs (`allow = []`
//! refuses everyone). Every matching rule applies, in
//! file order, a later one replacing a header an earlier one set. A rule's
//! `cache_control` applies to successful answers (2xx, 304) only, so a
//! matching `404` never becomes cacheable for a year.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;

use crate::app::{Body, Request, Response};
use crate::http::forwarded::Cidr;

/// What the file's policy sections say, as written (validated by
/// [`Policy::from_file`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub rules: Vec<RuleFile>,
    #[serde(default)]
    pub compression: Option<CompressionFile>,
}

/// One `[[rules]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub path: Option<String>,
    #[serde(rename = "type")]
    pub mime: Option<String>,
    pub cache_control: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub cors: Option<CorsFile>,
    pub clients: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
}

/// A rule's `cors` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFile {
    #[serde(default)]
    pub origins: Vec<String>,
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub expose: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    pub max_age: Option<u32>,
}

/// The `[compression]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    pub enabled: Option<bool>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub codings: Option<Vec<String>>,
}

/// On-the-fly compression settings (see `static_files::compress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    pub enabled: bool,
    /// Smaller files are sent as they are: the saving would not pay for
    /// the headers.
    pub min_size: u64,
    /// Bigger files are sent as they are (with `sendfile`): compressing
    /// them would hold the worker's loop too long.
    pub max_size: u64,
    /// Codings offered, by the server's preference on q-value ties.
    pub codings: Vec<&'static str>,
}

impl Default for Compression {
    fn default() -> Compression {
        Compression {
            enabled: true,
            min_size: 1024,
            max_size: 1024 * 1024,
            codings: vec!["br", "zstd", "gzip"],
        }
    }
}

impl Compression {
    /// Compression switched off (what `StaticFiles::serve` uses).
    pub fn off() -> Compression {
        Compression {
            enabled: false,
            ..Compression::default()
        }
    }
}

/// A validated CORS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins (`https://app.example`), or `*` for any.
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    /// Request headers allowed (lower-case); `*` allows any.
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub credentials: bool,
    pub max_age: Option<u32>,
}

impl Cors {
    fn any_origin(&self) -> bool {
        self.origins.iter().any(|o| o == "*")
    }

    fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin() || self.origins.iter().any(|o| o == origin)
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub path: Option<String>,
    pub mime: Option<String>,
    pub cache_control: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    pub cors: Option<Cors>,
    /// The rule applies only to clients in these ranges.
    pub clients: Option<Vec<Cidr>>,
    /// Clients outside these ranges are refused where the rule matches.
    pub allow: Option<Vec<Cidr>>,
}

impl Rule {
    /// Whether the rule speaks for this request, before any answer (the
    /// `type` condition waits for the answer).
    fn covers(&self, req: &Request<'_>, client: Option<IpAddr>) -> bool {
        self.path.as_deref().is_none_or(|g| glob(g, req.path))
            && self
                .clients
                .as_deref()
                .is_none_or(|ranges| client.is_some_and(|ip| within(ranges, ip)))
    }
}

fn within(ranges: &[Cidr], ip: IpAddr) -> bool {
    ranges.iter().any(|c| c.contains(ip))
}

/// Everything the application layer takes from the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub compression: Compression,
    /// Some rule matches on the client address (`clients` or `allow`):
    /// only then is the client worked out for the rules.
    pub by_client: bool,
}

/// HSTS (RFC 6797) is an ordinary header rule; the file's value is
/// checked, since a browser silently ignores a malformed one.
pub const HSTS: &str = "strict-transport-security";

/// RFC 6797 §6.1: directives separated by `;`, exactly one `max-age` with
/// a decimal value, no directive twice.
fn hsts_value(at: &str, value: &str) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    let mut max_age = false;
    for d in value.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, arg) = match d.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (d, None),
        };
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            return Err(format!("{at}: {name:?} is not an HSTS directive"));
        }
        if seen.contains(&lower) {
            return Err(format!(
                "{at}: the directive {name} is given twice (RFC 6797 6.1)"
            ));
        }
        if lower == "max-age" {
            if !arg.is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())) {
                return Err(format!(
                    "{at}: max-age needs a number of seconds, as in max-age=31536000"
                ));
            }
            max_age = true;
        }
        seen.push(lower);
    }
    if !max_age {
        return Err(format!(
            "{at}: Strict-Transport-Security needs max-age (e.g. \"max-age=31536000; includeSubDomains\")"
        ));
    }
    Ok(())
}

/// Headers the protocol layer or the file server own: a rule may not set them.
const RESERVED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
    "content-encoding",
    "content-range",
    "etag",
    "last-modified",
    "upgrade",
];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Header names must be `&'static str` in a [`Response`]; names from the
/// config file are interned once each, so reloads do not grow memory.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

fn header_value(what: &str, v: &str) -> Result<String, String> {
    if is_value(v) {
        Ok(v.to_owned())
    } else {
        Err(format!("{what}: value {v:?} holds a control character"))
    }
}

impl Policy {
    /// Validates the policy sections; the error names the rule and field.
    pub fn from_file(file: PolicyFile) -> Result<Policy, String> {
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            if let Some(p) = &r.path {
                if !p.starts_with('/') {
                    return Err(format!("{at}.path {p:?} must start with '/'"));
                }
            }
            if let Some(m) = &r.mime {
                let ok = m.split_once('/').is_some_and(|(a, b)| {
                    is_token(a) && (b == "*" || is_token(b)) && !a.contains('*')
                });
                if !ok {
                    return Err(format!(
                        "{at}.type {m:?} is not a MIME type like text/html or image/*"
                    ));
                }
            }
            let cache_control = match &r.cache_control {
                Some(v) => Some(header_value(&format!("{at}.cache_control"), v)?),
                None => None,
            };
            let mut headers = Vec::with_capacity(r.headers.len());
            for (name, value) in &r.headers {
                if !is_token(name) {
                    return Err(format!("{at}.headers: {name:?} is not a header name"));
                }
                if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(format!(
                        "{at}.headers: {name} is set by the server and cannot be a rule"
                    ));
                }
                let value = header_value(&format!("{at}.headers.{name}"), value)?;
                if name.eq_ignore_ascii_case(HSTS) {
                    hsts_value(&format!("{at}.headers.{name}"), &value)?;
                }
                headers.push((intern(name), value));
            }
            let cors = match r.cors {
                Some(c) => Some(cors(&at, c)?),
                None => None,
            };
            let clients = ranges(&format!("{at}.clients"), r.clients)?;
            if clients.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(format!(
                    "{at}.clients is empty: the rule would match nobody (leave it out to match everyone)"
                ));
            }
            let allow = ranges(&format!("{at}.allow"), r.allow)?;
            if allow.is_some() && r.mime.is_some() {
                return Err(format!(
                    "{at}: allow cannot go with type: access is decided before there is an answer to have a type"
                ));
            }
            rules.push(Rule {
                path: r.path,
                mime: r.mime.map(|m| m.to_ascii_lowercase()),
                cache_control,
                headers,
                cors,
                clients,
                allow,
            });
        }
        let mut compression = Compression::default();
        if let Some(c) = file.compression {
            if let Some(e) = c.enabled {
                compression.enabled = e;
            }
            if let Some(n) = c.min_size {
                compression.min_size = n;
            }
            if let Some(n) = c.max_size {
                compression.max_size = n;
            }
            if let Some(list) = c.codings {
                let mut codings = Vec::with_capacity(list.len());
                for name in list {
                    codings.push(match name.as_str() {
                        "br" => "br",
                        "zstd" => "zstd",
                        "gzip" => "gzip",
                        other => {
                            return Err(format!(
                                "compression.codings: unknown coding {other:?} (br, zstd, gzip)"
                            ))
                        }
                    });
                }
                compression.codings = codings;
            }
            if compression.min_size > compression.max_size {
                return Err("compression.min_size is above compression.max_size".into());
            }
        }
        let by_client = rules
            .iter()
            .any(|r| r.clients.is_some() || r.allow.is_some());
        Ok(Policy {
            rules,
            compression,
            by_client,
        })
    }

    /// Whether some rule sets this header (name in any case).
    pub fn sets_header(&self, name: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
    }

    /// The client address the rules need for `req`, if any rule looks at it.
    pub fn client(&self, req: &Request<'_>) -> Option<IpAddr> {
        self.by_client.then(|| crate::telemetry::client_of(req))
    }

    /// Access control: `403` when a rule with `allow` covers the request
    /// and the client is outside its ranges.
    pub fn refuse_client(&self, req: &Request<'_>, client: Option<IpAddr>) -> Option<Response> {
        if !self.by_client {
            return None;
        }
        let ip = client?;
        let refused = self.rules.iter().any(|r| {
            r.allow
                .as_deref()
                .is_some_and(|allow| r.covers(req, client) && !within(allow, ip))
        });
        refused.then(|| refuse("forbidden: the client address is not allowed here"))
    }

    /// Answers a CORS preflight (`OPTIONS` with an `Origin` and an
    /// `Access-Control-Request-Method`) when a rule with `cors` matches the
    /// path: `204` with the grants, or `403` saying what was refused. `None`
    /// when the request is no preflight or no rule speaks for the path.
    pub fn preflight(&self, req: &Request<'_>, client: Option<IpAddr>) -> Option<Response> {
        if req.method != "OPTIONS" || self.rules.is_empty() {
            return None;
        }
        let origin = req.header_str("Origin")?;
        let method = req.header_str("Access-Control-Request-Method")?;
        let cors = self
            .rules
            .iter()
            .rev()
            .filter(|r| r.covers(req, client))
            .find_map(|r| r.cors.as_ref())?;
        if !cors.allows_origin(origin) {
            return Some(refuse("CORS preflight refused: origin not allowed"));
        }
        if !cors.methods.iter().any(|m| m == method) {
            return Some(refuse("CORS preflight refused: method not allowed"));
        }
        let asked = req
            .header_str("Access-Control-Request-Headers")
            .unwrap_or("");
        let any_header = cors.headers.iter().any(|h| h == "*");
        for h in asked.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            if !any_header && !cors.headers.iter().any(|a| a.eq_ignore_ascii_case(h)) {
                return Some(refuse("CORS preflight refused: header not allowed"));
            }
        }
        let mut r = Response::new(204, Body::Empty);
        allow_origin(cors, origin, &mut r);
        r.headers
            .push(("Access-Control-Allow-Methods", cors.methods.join(", ")));
        if !asked.is_empty() {
            r.headers
                .push(("Access-Control-Allow-Headers", asked.to_owned()));
        }
        if let Some(age) = cors.max_age {
            r.headers.push(("Access-Control-Max-Age", age.to_string()));
        }
        r.headers.push(("Cache-Control", "no-store".to_owned()));
        Some(r)
    }

    /// Applies the rules to an answer, then gives any answer still without
    /// `Cache-Control` an explicit `no-store`: dynamic answers (health,
    /// readiness, metrics, the API, errors) are never heuristically cacheable.
    pub fn apply(&self, req: &Request<'_>, client: Option<IpAddr>, resp: &mut Response) {
        if !self.rules.is_empty() {
            self.apply_rules(req, client, resp);
        }
        if resp.status != 101 && !has(resp, "Cache-Control") {
            resp.headers.push(("Cache-Control", "no-store".to_owned()));
        }
    }

    fn apply_rules(&self, req: &Request<'_>, client: Option<IpAddr>, resp: &mut Response) {
        let mime = resp
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let ok = (200..300).contains(&resp.status) || resp.status == 304;
        let origin = req.header_str("Origin");
        for rule in &self.rules {
            if !rule.covers(req, client) {
                continue;
            }
            if let Some(want) = &rule.mime {
                let Some(have) = &mime else { continue };
                if !mime_matches(want, have) {
                    continue;
                }
            }
            if let (Some(cc), true) = (&rule.cache_control, ok) {
                set(resp, "Cache-Control", cc.clone());
            }
            for (name, value) in &rule.headers {
                set(resp, name, value.clone());
            }
            if let (Some(cors), Some(origin)) = (&rule.cors, origin) {
                if cors.allows_origin(origin) {
                    allow_origin(cors, origin, resp);
                    if !cors.expose.is_empty() {
                        set(
                            resp,
                            "Access-Control-Expose-Headers",
                            cors.expose.join(", "),
                        );
                    }
                }
            }
        }
    }
}

fn cors(at: &str, c: CorsFile) -> Result<Cors, String> {
    if c.origins.is_empty() {
        return Err(format!(
            "{at}.cors.origins is empty: name origins, or \"*\""
        ));
    }
    for o in &c.origins {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            return Err(format!(
                "{at}.cors.origins: {o:?} is not an origin like https://app.example"
            ));
        }
        if o.ends_with('/') {
            return Err(format!("{at}.cors.origins: {o:?} must not end with '/'"));
        }
    }
    if c.credentials && c.origins.iter().any(|o| o == "*") {
        return Err(format!(
            "{at}.cors: credentials = true cannot go with origin \"*\" (browsers refuse it)"
        ));
    }
    let methods = c
        .methods
        .unwrap_or_else(|| vec!["GET".into(), "HEAD".into()]);
    for m in methods.iter().chain(&c.headers).chain(&c.expose) {
        if m != "*" && !is_token(m) {
            return Err(format!("{at}.cors: {m:?} is not a token"));
        }
    }
    Ok(Cors {
        origins: c.origins,
        methods,
        headers: c.headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
        expose: c.expose,
        credentials: c.credentials,
        max_age: c.max_age,
    })
}

/// The `clients`/`allow` lists, parsed; the error names the entry.
fn ranges(at: &str, list: Option<Vec<String>>) -> Result<Option<Vec<Cidr>>, String> {
    let Some(list) = list else {
        return Ok(None);
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<Cidr>()
                .map_err(|e| format!("{at}[{i}] {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn refuse(why: &str) -> Response {
    Response::error(403, why).header("Cache-Control", "no-store")
}

fn allow_origin(cors: &Cors, origin: &str, r: &mut Response) {
    if cors.any_origin() && !cors.credentials {
        set(r, "Access-Control-Allow-Origin", "*".to_owned());
    } else {
        set(r, "Access-Control-Allow-Origin", origin.to_owned());
        add_vary(r, "Origin");
    }
    if cors.credentials {
        set(r, "Access-Control-Allow-Credentials", "true".to_owned());
    }
}

fn has(r: &Response, name: &str) -> bool {
    r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Sets a header, replacing any earlier value of it.
fn set(r: &mut Response, name: &'static str, value: String) {
    r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    r.headers.push((name, value));
}

fn add_vary(r: &mut Response, what: &str) {
    if let Some((_, v)) = r
        .headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("Vary"))
    {
        if !v.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)) {
            v.push_str(", ");
            v.push_str(what);
        }
    } else {
        r.headers.push(("Vary", what.to_owned()));
    }
}

fn mime_matches(want: &str, have: &str) -> bool {
    match want.strip_suffix("/*") {
        Some(major) => have.split('/').next() == Some(major),
        None => want == have,
    }
}

/// Glob match on a path: `**` crosses `/`, `*` and `?` do not.
pub fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=s.len()).any(|i| go(rest, &s[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                let mut i = 0;
                loop {
                    if go(rest, &s[i..]) {
                        return true;
                    }
                    if i == s.len() || s[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(b'?') => !s.is_empty() && s[0] != b'/' && go(&p[1..], &s[1..]),
            Some(&c) => s.first() == Some(&c) && go(&p[1..], &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// The policy in force, shared by every worker and replaced whole by a
/// reload; each worker's copy is a [`crate::live::Current`], checked per
/// request.
pub type Live = crate::live::Live<Policy>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("/assets/**", "/assets/a/b.js"));
        assert!(glob("/*.html", "/index.html"));
        assert!(!glob("/*.html", "/a/index.html"));
        assert!(glob("/**.html", "/a/index.html"));
        assert!(glob("/a?c", "/abc"));
        assert!(!glob("/a?c", "/a/c"));
        assert!(glob("/api/*", "/api/stats"));
        assert!(!glob("/api/*", "/apix"));
    }

    fn policy(toml_text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Policy::from_file(file)
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let e = policy("[[rules]]\npath = \"x\"\n").unwrap_err();
        assert!(e.contains("rules[0].path"), "{e}");
        let e = policy("[[rules]]\nheaders = { \"Content-Length\" = \"1\" }\n").unwrap_err();
        assert!(e.contains("Content-Length"), "{e}");
        let e =
            policy("[[rules]]\ncors = { origins = [\"*\"], credentials = true }\n").unwrap_err();
        assert!(e.contains("credentials"), "{e}");
        let e = policy("[[rules]]\nbogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = policy("[compression]\ncodings = [\"lzma\"]\n").unwrap_err();
        assert!(e.contains("lzma"), "{e}");
        assert_eq!(policy("").unwrap(), Policy::default());
    }

    #[test]
    fn hsts_values_are_checked_as_rfc_6797_reads() {
        let rule = |v: &str| {
            policy(&format!(
                "[[rules]]\nheaders = {{ \"Strict-Transport-Security\" = {v:?} }}\n"
            ))
        };
        for good in [
            "max-age=31536000",
            "max-age=63072000; includeSubDomains; preload",
            "max-age=\"0\"",
            "includeSubDomains;max-age=10;",
        ] {
            let p = rule(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(p.sets_header("Strict-Transport-Security"));
        }
        for (bad, why) in [
            ("includeSubDomains", "needs max-age"),
            ("max-age=soon", "number of seconds"),
            ("max-age=", "number of seconds"),
            ("max-age=1; max-age=2", "twice"),
            ("max-age=1; bad directive", "not an HSTS directive"),
        ] {
            let e = rule(bad).unwrap_err();
            assert!(
                e.contains(why) && e.contains("rules[0].headers"),
                "{bad}: {e}"
            );
        }
        assert!(!policy("").unwrap().sets_header(HSTS));
    }
}
