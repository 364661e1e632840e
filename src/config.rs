//! Command line and environment: the contract's flags, parsed with clap, and
//! their validation into a [`Config`] the rest of the server trusts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::service::static_files::{RootPolicy, DEFAULT_ROOT};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AcceptMode {
    Reuseport,
    Exclusive,
}

/// How `--model prethreaded` hands connections to its pool (the ladder
/// measures both: docs/ladder.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolFeed {
    /// Every pool thread blocks in `accept(2)` on the shared listener.
    Turn,
    /// One acceptor thread accepts and feeds the pool through a bounded queue.
    Queue,
}

/// How connections are served: the rungs of the classic server ladder
/// (contract, "Server models"). Every model drives the same connection
/// engine; they differ only in how sockets reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// One thread, one connection at a time, blocking calls.
    Iterative,
    /// A child process per connection.
    Forking,
    /// `--workers` processes on a shared listener.
    Preforked,
    /// A thread per connection, bounded by `--max-connections`.
    Threaded,
    /// A pool of `--workers` threads accepting in turn.
    Prethreaded,
    /// One thread, non-blocking sockets, poll(2) over all of them.
    Poll,
    /// `--workers` threads, each with its own epoll loop (the default).
    Epoll,
    /// Completion-based I/O: a ring per worker.
    #[value(name = "io_uring")]
    IoUring,
}

impl Model {
    /// The name on the command line and in `/api/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Forking => "forking",
            Model::Preforked => "preforked",
            Model::Threaded => "threaded",
            Model::Prethreaded => "prethreaded",
            Model::Poll => "poll",
            Model::Epoll => "epoll",
            Model::IoUring => "io_uring",
        }
    }
}

/// Whose TCP/IP carries the connections (contract, "Userland TCP/IP").
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StackKind {
    /// The kernel's sockets, served by `--model`.
    Kernel,
    /// glasshouse's own TCP/IP (`net`) on `--link`, one thread.
    User,
}

/// Which driver runs `--stack user` (issue 13; docs/benchmarks.md has
/// both measured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StackDriver {
    /// One thread reads the link, fires the timers and runs the engines.
    Single,
    /// A receive thread, a timer thread and the engines' thread around
    /// one mutex over the stack: the design of the document.
    Threaded,
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Whether HTTPS records go to the kernel after the handshake (kTLS).
/// There is no `always`: even where the kernel has TLS, a connection whose
/// suite it cannot take stays in user space, so no setting could promise
/// the kernel path for every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KtlsMode {
    /// Hand the keys to the kernel when the start-up probe finds its TLS
    /// (and the model is `epoll`); userspace rustls otherwise.
    Auto,
    /// Userspace rustls for every connection.
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// An observable HTTP/1.1 + WebSocket server built on Linux syscalls.
#[derive(Debug, Parser)]
#[command(name = "glasshouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML file with any of these flags (as `snake_case` keys) plus header
    /// rules, CORS and compression; flags and environment win over it.
    #[arg(long, env = "GLASSHOUSE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Refuse every symlink beneath --root (openat2 RESOLVE_NO_SYMLINKS);
    /// by default symlinks that stay inside the root are followed.
    #[arg(long, env = "GLASSHOUSE_NO_SYMLINKS")]
    pub no_symlinks: bool,

    /// Peers (CIDR, repeatable) whose `Forwarded`/`X-Forwarded-For` name
    /// the client address; nobody else's are believed.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxy: Vec<String>,

    /// Address to bind; `127.0.0.1:0` picks a free port; `[::]:8080` for IPv6.
    #[arg(long, env = "GLASSHOUSE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,

    /// Static files served under `/` [default: frontend/dist, which may be
    /// missing until the frontend is built; a root given here must exist].
    #[arg(long, env = "GLASSHOUSE_ROOT")]
    pub root: Option<PathBuf>,

    /// How connections are served: iterative, forking, preforked, threaded,
    /// prethreaded, poll, epoll or io_uring.
    #[arg(long, env = "GLASSHOUSE_MODEL", value_enum, default_value = "epoll")]
    pub model: Model,

    /// Worker threads, each with its own epoll loop (default: number of CPUs);
    /// the pool size of the models that have one (prethreaded, epoll).
    #[arg(long, env = "GLASSHOUSE_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,

    /// Longest graceful drain after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "GLASSHOUSE_DRAIN_TIMEOUT", default_value_t = 10.0)]
    pub drain_timeout: f64,

    /// Connections held at once; more are answered 503 and closed.
    #[arg(long, env = "GLASSHOUSE_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Connections one client address (an IPv4 address, an IPv6 /64) may
    /// hold at once; more are answered 429 and closed. 0: no cap. Peers in
    /// --trusted-proxy ranges are not counted.
    #[arg(
        long,
        env = "GLASSHOUSE_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 0
    )]
    pub max_connections_per_client: u32,

    /// Seconds allowed to receive a request's head (slowloris guard).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,

    /// Keep-alive idle limit in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// Seconds pending output may wait on a peer that reads none of it;
    /// then the connection is closed (a slow-reader guard).
    #[arg(long, default_value_t = 60.0)]
    pub send_timeout: f64,

    /// Request body limit in bytes (413 above it).
    #[arg(long, default_value_t = 1_048_576)]
    pub max_body: u64,

    /// Log lines on stderr.
    #[arg(
        long,
        env = "GLASSHOUSE_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,

    /// Log filter (tracing filter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,

    /// How connections reach workers: one SO_REUSEPORT listener per worker
    /// (the kernel picks), or one listener shared with EPOLLEXCLUSIVE.
    #[arg(
        long,
        env = "GLASSHOUSE_ACCEPT_MODE",
        value_enum,
        default_value = "reuseport"
    )]
    pub accept_mode: AcceptMode,

    /// How `--model prethreaded` feeds its pool: every thread accepting in
    /// turn, or one acceptor thread and a bounded queue.
    #[arg(
        long,
        env = "GLASSHOUSE_PRETHREADED_ACCEPT",
        value_enum,
        default_value = "turn"
    )]
    pub prethreaded_accept: PoolFeed,

    /// One log line per request.
    #[arg(long, env = "GLASSHOUSE_ACCESS_LOG")]
    pub access_log: bool,

    /// Grafana URL shown as a link in the frontend.
    #[arg(long, env = "GLASSHOUSE_GRAFANA_URL")]
    pub grafana_url: Option<String>,

    /// Jaeger URL; the frontend links trace ids to it.
    #[arg(long, env = "GLASSHOUSE_JAEGER_URL")]
    pub jaeger_url: Option<String>,

    /// Prometheus URL shown as a link in the frontend.
    #[arg(long, env = "GLASSHOUSE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,

    /// Largest WebSocket message in bytes (1009 above it).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub ws_max_message: usize,

    /// Seconds between server keepalive pings on idle WebSockets.
    #[arg(long, default_value_t = 30.0)]
    pub ws_ping_interval: f64,

    /// Comma-separated Origins allowed to open WebSockets (default: any).
    #[arg(long, env = "GLASSHOUSE_WS_ALLOWED_ORIGINS")]
    pub ws_allowed_origins: Option<String>,

    /// Serve HTTPS on --listen with this PEM certificate chain (leaf
    /// first). Repeat with --tls-key for several certificates: the
    /// client's SNI picks the first one valid for its name, the first
    /// pair is the default. SIGHUP re-reads the files.
    /// Comma-separated in GLASSHOUSE_TLS_CERT.
    #[arg(
        long,
        value_name = "FILE",
        env = "GLASSHOUSE_TLS_CERT",
        value_delimiter = ','
    )]
    pub tls_cert: Vec<PathBuf>,

    /// The PEM private key (PKCS#8, RSA or EC) of the --tls-cert at the
    /// same position. Comma-separated in GLASSHOUSE_TLS_KEY.
    #[arg(
        long,
        value_name = "FILE",
        env = "GLASSHOUSE_TLS_KEY",
        value_delimiter = ','
    )]
    pub tls_key: Vec<PathBuf>,

    /// With --tls-cert: also listen on this address for plain HTTP and
    /// answer every request with a 308 redirect to the HTTPS URL.
    #[arg(long, value_name = "ADDR", env = "GLASSHOUSE_HTTPS_REDIRECT")]
    pub https_redirect: Option<String>,

    /// Also listen on this address, in plain HTTP, for /metrics, /healthz
    /// and /readyz only (a private port for scrapers and probes, plain
    /// even when --listen serves HTTPS; `glasshouse healthcheck` uses it).
    #[arg(long, value_name = "ADDR", env = "GLASSHOUSE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// With --tls-cert: after each handshake, give the record keys to the
    /// kernel (kTLS) when it has TLS (`auto`), or never (`off`). Only
    /// `--model epoll` hands off; the start-up log says which path serves.
    #[arg(long, env = "GLASSHOUSE_KTLS", value_enum, default_value = "auto")]
    pub ktls: KtlsMode,

    /// With --tls-cert: TLS sessions remembered for resumption (a client
    /// that comes back skips the certificate signature); 0: none, every
    /// handshake a full one.
    #[arg(
        long,
        value_name = "N",
        env = "GLASSHOUSE_TLS_SESSION_CACHE",
        default_value_t = 256
    )]
    pub tls_session_cache: usize,

    /// Whose TCP/IP carries the connections.
    #[arg(long, env = "GLASSHOUSE_STACK", value_enum, default_value = "kernel")]
    pub stack: StackKind,

    /// With `--stack user`: the link, `tun:NAME` (an existing TUN device)
    /// or `packet:IFNAME` (an Ethernet interface through AF_PACKET);
    /// `--listen` is then the stack's own address.
    #[arg(long, env = "GLASSHOUSE_LINK")]
    pub link: Option<String>,

    /// With `--stack user`: which driver runs the stack.
    #[arg(
        long,
        env = "GLASSHOUSE_STACK_DRIVER",
        value_enum,
        default_value = "single"
    )]
    pub stack_driver: StackDriver,

    /// TCP keep-alive on every connection: `IDLE[:INTERVAL[:COUNT]]`, in
    /// seconds (interval 75 and count 9 when left out, as Linux's). A
    /// peer silent for IDLE is probed every INTERVAL; COUNT unanswered
    /// probes and the connection is reset. Off when unset. Applies to
    /// either stack.
    #[arg(long, env = "GLASSHOUSE_TCP_KEEPALIVE")]
    pub tcp_keepalive: Option<String>,

    /// With `--stack user` on a TUN link: let the kernel finish TCP
    /// checksums and cut segments of up to 64 KiB into MSS-sized ones
    /// (`IFF_VNET_HDR`), as a NIC's checksum and segmentation offload;
    /// `off`: one packet per segment, every checksum computed here.
    #[arg(
        long,
        env = "GLASSHOUSE_STACK_OFFLOAD",
        value_enum,
        default_value = "on"
    )]
    pub stack_offload: OnOff,

    /// With `--stack user`: the least retransmission timeout in
    /// milliseconds (RFC 6298 §2.4; 200 as Linux's). The kernel's is set
    /// per route (`ip route ... rto_min`).
    #[arg(long, default_value_t = 200)]
    pub tcp_rto_min: u64,
}

/// `--tcp-keepalive IDLE[:INTERVAL[:COUNT]]`, within the bounds Linux
/// puts on TCP_KEEPIDLE, TCP_KEEPINTVL (1..=32767 s) and TCP_KEEPCNT
/// (1..=127), so that both stacks take the same values.
fn parse_keepalive(v: &str) -> Result<crate::net::tcp::Keepalive, String> {
    let bad = || {
        format!("invalid --tcp-keepalive {v:?}: expected IDLE[:INTERVAL[:COUNT]] in seconds, each 1 to 32767 (COUNT 1 to 127)")
    };
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let num = |i: usize, default: u64, max: u64| -> Result<u64, String> {
        match parts.get(i) {
            None => Ok(default),
            Some(p) => p
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(bad),
        }
    };
    Ok(crate::net::tcp::Keepalive {
        idle: num(0, 0, 32767)? * 1000,
        interval: num(1, 75, 32767)? * 1000,
        probes: num(2, 9, 127)? as u32,
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// GET /healthz on a running server; exit 0 on 200 (for container health checks).
    Healthcheck {
        /// URL to probe (default: http://127.0.0.1:PORT/healthz, PORT from --listen).
        #[arg(long)]
        url: Option<String>,
    },
    /// Validate the configuration (flags, environment, `--config FILE`)
    /// without serving: exit 0 when valid, 2 with one line naming the problem.
    Check,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub root: PathBuf,
    /// Whether the root may be missing: only when none was given.
    pub root_policy: RootPolicy,
    pub model: Model,
    pub workers: usize,
    pub accept_mode: AcceptMode,
    pub prethreaded_accept: PoolFeed,
    pub drain_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: u32,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
    pub max_body: u64,
    pub log_json: bool,
    pub log_level: String,
    pub access_log: bool,
    pub grafana_url: Option<String>,
    pub jaeger_url: Option<String>,
    pub prometheus_url: Option<String>,
    pub ws_max_message: usize,
    pub ws_ping_interval: Duration,
    pub ws_allowed_origins: Option<Vec<String>>,
    /// Symlinks beneath the root are followed (not `--no-symlinks`).
    pub follow_symlinks: bool,
    /// `--trusted-proxy`, parsed.
    pub trusted_proxies: Vec<crate::http::forwarded::Cidr>,
    /// The config file this came from, if any (SIGHUP re-reads it).
    pub config_file: Option<PathBuf>,
    /// Header rules and compression (the config file's sections).
    pub policy: crate::service::rules::Policy,
    /// HTTPS certificate/key pairs; empty for plain HTTP.
    pub tls: Vec<crate::tls::CertPair>,
    /// The plaintext listener that redirects to HTTPS.
    pub https_redirect: Option<SocketAddr>,
    /// The plaintext listener of the operational endpoints.
    pub metrics_listen: Option<SocketAddr>,
    /// `--ktls`.
    pub ktls: KtlsMode,
    /// `--tls-session-cache`.
    pub tls_session_cache: usize,
    /// `--stack user`: the link (`tun:NAME`, `packet:IFNAME`); `listen` is then IPv4 and
    /// the stack's own address.
    pub user_link: Option<String>,
    /// `--stack-driver`.
    pub stack_driver: StackDriver,
    /// `--tcp-keepalive`, parsed (milliseconds).
    pub tcp_keepalive: Option<crate::net::tcp::Keepalive>,
    /// `--tcp-rto-min` (milliseconds).
    pub tcp_rto_min: u64,
    /// `--stack-offload on`.
    pub stack_offload: bool,
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "invalid value {v} for --{name}: expected seconds between 0 and 86400"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

impl Cli {
    /// `--tls-cert` and `--tls-key` paired by position.
    fn tls_pairs(&self) -> Result<Vec<crate::tls::CertPair>, String> {
        if self.tls_cert.len() != self.tls_key.len() {
            return Err(format!(
                "--tls-cert given {} times and --tls-key {} times: give them in pairs",
                self.tls_cert.len(),
                self.tls_key.len()
            ));
        }
        Ok(self
            .tls_cert
            .iter()
            .zip(&self.tls_key)
            .map(|(cert, key)| crate::tls::CertPair {
                cert: cert.clone(),
                key: key.clone(),
            })
            .collect())
    }

    /// Checks values that clap cannot and resolves defaults.
    pub fn validate(&self) -> Result<Config, String> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "invalid --listen address {:?}: expected HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
                self.listen
            )
        })?;
        let workers = match self.workers {
            Some(n) => n as usize,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        if self.model == Model::Preforked && self.max_connections_per_client > 0 {
            return Err(
                "--max-connections-per-client with --model preforked is not built yet: its processes count apart; use another model"
                    .into(),
            );
        }
        if self.max_body > (1 << 32) {
            return Err(format!(
                "invalid value {} for --max-body: at most 4294967296",
                self.max_body
            ));
        }
        let user_link = match (self.stack, &self.link) {
            (StackKind::Kernel, None) => None,
            (StackKind::Kernel, Some(_)) => {
                return Err("--link needs --stack user".to_string());
            }
            (StackKind::User, None) => {
                return Err(
                    "--stack user needs --link tun:NAME or --link packet:IFNAME".to_string()
                );
            }
            (StackKind::User, Some(link)) => {
                // Whether the interface exists is asked when the link
                // opens, in the namespace the server runs in.
                let name = link
                    .strip_prefix("tun:")
                    .or_else(|| link.strip_prefix("packet:"))
                    .unwrap_or("");
                if name.is_empty() || name.len() > 15 || name.contains(['/', '\0']) {
                    return Err(format!(
                        "invalid --link {link:?}: expected tun:NAME or packet:IFNAME (a name of 1 to 15 bytes)"
                    ));
                }
                if !listen.is_ipv4() || listen.port() == 0 || listen.ip().is_unspecified() {
                    return Err(format!(
                        "--stack user needs --listen IPV4:PORT naming the stack's own address (not {listen})"
                    ));
                }
                Some(link.clone())
            }
        };
        let urls = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        Ok(Config {
            listen,
            root: self
                .root
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
            root_policy: if self.root.is_some() {
                RootPolicy::Required
            } else {
                RootPolicy::MayBeMissing
            },
            model: self.model,
            workers,
            accept_mode: self.accept_mode,
            prethreaded_accept: self.prethreaded_accept,
            drain_timeout: seconds("drain-timeout", self.drain_timeout)?,
            max_connections: self.max_connections as usize,
            max_connections_per_client: self.max_connections_per_client,
            header_timeout: seconds("header-timeout", self.header_timeout)?,
            idle_timeout: seconds("idle-timeout", self.idle_timeout)?,
            send_timeout: seconds("send-timeout", self.send_timeout)?,
            max_body: self.max_body,
            log_json: self.log_format == LogFormat::Json,
            log_level: self.log_level.clone(),
            access_log: self.access_log,
            grafana_url: urls(&self.grafana_url),
            jaeger_url: urls(&self.jaeger_url),
            prometheus_url: urls(&self.prometheus_url),
            ws_max_message: self.ws_max_message,
            ws_ping_interval: seconds("ws-ping-interval", self.ws_ping_interval)?,
            tls: self.tls_pairs()?,
            ktls: self.ktls,
            tls_session_cache: self.tls_session_cache,
            https_redirect: match &self.https_redirect {
                None => None,
                Some(_) if self.tls_cert.is_empty() => {
                    return Err("--https-redirect needs --tls-cert and --tls-key".into());
                }
                Some(a) => Some(a.parse().map_err(|_| {
                    format!("invalid --https-redirect address {a:?}: expected HOST:PORT")
                })?),
            },
            metrics_listen: match &self.metrics_listen {
                None => None,
                Some(a) => Some(a.parse().map_err(|_| {
                    format!("invalid --metrics-listen address {a:?}: expected HOST:PORT")
                })?),
            },
            ws_allowed_origins: self.ws_allowed_origins.as_ref().map(|s| {
                s.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            follow_symlinks: !self.no_symlinks,
            trusted_proxies: self
                .trusted_proxy
                .iter()
                .map(|c| {
                    c.parse()
                        .map_err(|e| format!("invalid --trusted-proxy {c:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            config_file: None,
            policy: crate::service::rules::Policy::default(),
            user_link,
            stack_driver: self.stack_driver,
            tcp_keepalive: self
                .tcp_keepalive
                .as_deref()
                .map(parse_keepalive)
                .transpose()?,
            stack_offload: self.stack_offload == OnOff::On,
            tcp_rto_min: match self.tcp_rto_min {
                n @ 1..=60_000 => n,
                n => return Err(format!("invalid --tcp-rto-min {n}: 1 to 60000 ms")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["glasshouse"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn tcp_keepalive_takes_linux_defaults_and_bounds() {
        use crate::net::tcp::Keepalive;
        let k = |v: &str| parse(&["--tcp-keepalive", v]).map(|c| c.tcp_keepalive);
        let want = |idle: u64, interval: u64, probes| {
            Ok(Some(Keepalive {
                idle: idle * 1000,
                interval: interval * 1000,
                probes,
            }))
        };
        assert_eq!(k("600"), want(600, 75, 9));
        assert_eq!(k("30:5"), want(30, 5, 9));
        assert_eq!(k("1:1:2"), want(1, 1, 2));
        assert_eq!(parse(&[]).unwrap().tcp_keepalive, None);
        for bad in ["", "0", "x", "1:0", "1:1:128", "32768", "1:2:3:4", "1:-1"] {
            let e = k(bad).expect_err(bad);
            assert!(e.contains("--tcp-keepalive"), "{bad}: {e}");
        }
        assert_eq!(parse(&[]).unwrap().tcp_rto_min, 200);
        assert!(parse(&["--tcp-rto-min", "0"]).is_err());
        assert_eq!(parse(&["--tcp-rto-min", "5000"]).unwrap().tcp_rto_min, 5000);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.drain_timeout, Duration::from_secs(10));
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_body, 1_048_576);
        assert!(c.root == std::path::Path::new("frontend/dist") && c.log_json);
        assert_eq!(c.root_policy, RootPolicy::MayBeMissing);
    }

    #[test]
    fn an_explicit_root_must_exist_even_when_it_names_the_default() {
        let c = parse(&["--root", "frontend/dist"]).unwrap();
        assert_eq!(c.root_policy, RootPolicy::Required);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        assert!(parse(&["--listen", "nope"])
            .unwrap_err()
            .contains("--listen"));
        assert!(parse(&["--drain-timeout", "-1"]).is_err());
        assert!(parse(&["--workers", "0"]).is_err());
        assert!(parse(&["--log-format", "xml"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--listen", "[::1]:0"]).unwrap().listen.is_ipv6());
    }

    #[test]
    fn models_parse_by_their_contract_names() {
        assert_eq!(parse(&[]).unwrap().model, Model::Epoll);
        for name in [
            "iterative",
            "forking",
            "threaded",
            "prethreaded",
            "poll",
            "epoll",
            "io_uring",
        ] {
            assert_eq!(parse(&["--model", name]).unwrap().model.name(), name);
        }
        assert!(parse(&["--model", "fibers"]).is_err());
    }

    #[test]
    fn user_stack_needs_a_tun_link_and_a_concrete_ipv4_address() {
        let ok = parse(&[
            "--stack",
            "user",
            "--link",
            "tun:tun0",
            "--listen",
            "10.77.0.2:80",
        ])
        .unwrap();
        assert_eq!(ok.user_link.as_deref(), Some("tun:tun0"));
        let packet = parse(&[
            "--stack",
            "user",
            "--link",
            "packet:veth0",
            "--listen",
            "10.77.0.2:80",
        ])
        .unwrap();
        assert_eq!(packet.user_link.as_deref(), Some("packet:veth0"));
        assert_eq!(parse(&[]).unwrap().user_link, None);
        for (args, needle) in [
            (
                &["--stack", "user", "--listen", "10.77.0.2:80"][..],
                "--link",
            ),
            (&["--link", "tun:tun0"][..], "--stack user"),
            (
                &[
                    "--stack",
                    "user",
                    "--link",
                    "eth0",
                    "--listen",
                    "10.77.0.2:80",
                ][..],
                "tun:NAME",
            ),
            (
                &[
                    "--stack",
                    "user",
                    "--link",
                    "packet:",
                    "--listen",
                    "10.77.0.2:80",
                ][..],
                "packet:IFNAME",
            ),
            (
                &[
                    "--stack",
                    "user",
                    "--link",
                    "tun:tun0",
                    "--listen",
                    "0.0.0.0:80",
                ][..],
                "IPV4:PORT",
            ),
            (
                &[
                    "--stack", "user", "--link", "tun:tun0", "--listen", "[::1]:80",
                ][..],
                "IPV4:PORT",
            ),
            (
                &[
                    "--stack",
                    "user",
                    "--link",
                    "tun:tun0",
                    "--listen",
                    "10.0.0.1:0",
                ][..],
                "IPV4:PORT",
            ),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
