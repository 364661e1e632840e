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

/// How connections are served: the rungs of the classic server ladder
/// (contract, "Server models"). Every model drives the same connection
/// engine; they differ only in how sockets reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// One thread, one connection at a time, blocking calls.
    Iterative,
    /// A child process per connection (not built yet).
    Forking,
    /// `--workers` processes on a shared listener (not built yet).
    Preforked,
    /// A thread per connection, bounded by `--max-connections`.
    Threaded,
    /// A pool of `--workers` threads accepting in turn.
    Prethreaded,
    /// One thread, non-blocking sockets, poll(2) over all of them.
    Poll,
    /// `--workers` threads, each with its own epoll loop (the default).
    Epoll,
    /// Completion-based I/O (not built yet).
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

    /// Models named by the contract that this build cannot run yet.
    pub fn is_built(self) -> bool {
        !matches!(self, Model::Forking | Model::Preforked)
    }
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
    pub drain_timeout: Duration,
    pub max_connections: usize,
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
        if !self.model.is_built() {
            return Err(format!(
                "--model {} is not built yet: use iterative, threaded, prethreaded, poll or epoll",
                self.model.name()
            ));
        }
        if self.max_body > (1 << 32) {
            return Err(format!(
                "invalid value {} for --max-body: at most 4294967296",
                self.max_body
            ));
        }
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
            drain_timeout: seconds("drain-timeout", self.drain_timeout)?,
            max_connections: self.max_connections as usize,
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
            "threaded",
            "prethreaded",
            "poll",
            "epoll",
            "io_uring",
        ] {
            assert_eq!(parse(&["--model", name]).unwrap().model.name(), name);
        }
        for name in ["forking", "preforked"] {
            let err = parse(&["--model", name]).unwrap_err();
            assert!(err.contains("not built yet") && err.contains(name), "{err}");
        }
        assert!(parse(&["--model", "fibers"]).is_err());
    }
}
