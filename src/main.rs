//! The `glasshouse` binary: the only place that wires the layers together.
//! Parses configuration, sets up logging, binds the listeners (one
//! SO_REUSEPORT listener per worker for epoll, one shared listener for the
//! other models), starts the workers of the chosen `--model` and hands the
//! main thread to the controller until the process should exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use glasshouse::app::HandlerFactory;
use glasshouse::config::{AcceptMode, Cli, Command, Config, Model};
use glasshouse::config_file::{self, LoadError};
use glasshouse::controller::{self, Exit, Hooks};
use glasshouse::http::Limits;
use glasshouse::lifecycle::ServerState;
use glasshouse::live::Live;
use glasshouse::reactor::{self, DrainReport, Lifecycle, ReactorConfig, Settings};
use glasshouse::service::rules;
use glasshouse::service::static_files::StaticFiles;
use glasshouse::service::{App, Links, ServiceState};
use glasshouse::sys::signals::{self, Sig, Signals};
use glasshouse::sys::socket::{ListenOptions, Listener};
use glasshouse::telemetry::{logging, Metrics, ShutdownSpan, Telemetry, TelemetryConfig};
use glasshouse::ws::SessionConfig;
use glasshouse::ws::WsOptions;

/// Exit status for configuration errors (contract).
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask.
    if let Err(e) = signals::block_handled() {
        eprintln!("glasshouse: cannot block signals: {e}");
        return ExitCode::from(BAD_CONFIG);
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, config) = match config_file::load(&argv) {
        Ok(loaded) => loaded,
        Err(LoadError::Args(e)) if e.use_stderr() => {
            // One line naming the problem (the contract), not clap's tips.
            let text = e.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!(
                "glasshouse: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(BAD_CONFIG);
        }
        Err(LoadError::Args(e)) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(LoadError::Invalid(msg)) => {
            eprintln!("glasshouse: {msg}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    match &cli.command {
        Some(Command::Healthcheck { url }) => return healthcheck(&cli, url.as_deref()),
        Some(Command::Check) => {
            println!("glasshouse: configuration is valid");
            return ExitCode::SUCCESS;
        }
        None => {}
    }
    match serve(config, argv) {
        Ok(Exit::Graceful) => ExitCode::SUCCESS,
        Ok(Exit::Abrupt) => ExitCode::from(1),
        Err(Fatal::Config(msg)) => {
            eprintln!("glasshouse: {msg}");
            ExitCode::from(BAD_CONFIG)
        }
        Err(Fatal::Runtime(msg)) => {
            tracing::error!("{msg}");
            eprintln!("glasshouse: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Fatal {
    Config(String),
    Runtime(String),
}

/// The listeners the workers accept from: one SO_REUSEPORT listener per
/// worker on the same address (the first resolves port 0, the others bind
/// the port it got), or one listener every worker shares.
fn bind_all(addr: SocketAddr, n: usize, mode: AcceptMode) -> Result<Vec<Arc<Listener>>, String> {
    let reuse_port = mode == AcceptMode::Reuseport;
    let opts = ListenOptions {
        reuse_port,
        backlog: 4096,
    };
    let first = Listener::bind(&addr, opts).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = first.local_addr().map_err(|e| e.to_string())?;
    let first = Arc::new(first);
    let mut all = vec![first.clone()];
    for _ in 1..n {
        let next = if reuse_port {
            Arc::new(
                Listener::bind(&bound, opts)
                    .map_err(|e| format!("cannot listen on {bound}: {e}"))?,
            )
        } else {
            first.clone()
        };
        all.push(next);
    }
    Ok(all)
}

/// systemd socket activation (`sd_listen_fds(3)`): with `LISTEN_PID` naming
/// this process and `LISTEN_FDS` at least 1, the first passed descriptor
/// (3) is the listener and `--listen` is not bound. Anything else passed
/// is left alone.
fn socket_activation() -> Result<Option<Listener>, String> {
    let (Ok(pid), Ok(fds)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    let n: u32 = fds
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS={fds:?}: expected a count of descriptors"))?;
    if n == 0 {
        return Ok(None);
    }
    Listener::inherited(3)
        .map(Some)
        .map_err(|e| format!("socket activation: descriptor 3: {e}"))
}

fn serve(config: Config, argv: Vec<std::ffi::OsString>) -> Result<Exit, Fatal> {
    let reload = logging::init(config.log_json, &config.log_level).map_err(Fatal::Config)?;
    // Panics are caught per request, but their report still belongs in the
    // log stream, as one structured line.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(thread = %thread, panic = %info, "panic");
    }));
    logging::set_access_log(config.access_log);
    glasshouse::telemetry::set_trusted_proxies(config.trusted_proxies.clone());
    warn_hsts_without_tls(&config);
    // From here to "listening on". The OTel span starts at its first entry
    // (below, once Telemetry::init has installed a tracer) but keeps this
    // start time.
    let startup = tracing::info_span!(
        target: "glasshouse::lifecycle",
        "startup",
        workers = config.workers,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
    );
    let files =
        StaticFiles::with_symlinks(&config.root, config.root_policy, config.follow_symlinks)
            .map_err(|e| Fatal::Config(format!("--root: {e}")))?;
    let nofile = glasshouse::sys::rlimit::raise_nofile();
    // Only epoll and io_uring give each worker a listener of its own; the
    // other models share one (accepting in turn, or one thread accepting).
    let n_listeners = if matches!(config.model, Model::Epoll | Model::IoUring) {
        config.workers
    } else {
        1
    };
    // `--stack user`: no kernel listener; the stack answers for --listen.
    let user_stack = match (&config.user_link, config.listen) {
        (Some(link), SocketAddr::V4(addr)) => Some(
            glasshouse::models::usertcp::UserStack::open(
                link,
                addr,
                config.stack_driver,
                config.stack_offload,
            )
            .map_err(|e| Fatal::Config(format!("--link {link}: {e}")))?
            .tuned(config.tcp_keepalive, config.tcp_rto_min),
        ),
        _ => None,
    };
    let (listeners, bound) = if user_stack.is_some() {
        (Vec::new(), config.listen)
    } else {
        let listeners = match socket_activation().map_err(Fatal::Config)? {
            // One passed socket serves every worker (they accept from it in
            // turn, as with --accept-mode exclusive).
            Some(passed) => {
                let passed = Arc::new(passed);
                vec![passed; n_listeners]
            }
            None => {
                bind_all(config.listen, n_listeners, config.accept_mode).map_err(Fatal::Config)?
            }
        };
        if let Some(k) = config.tcp_keepalive {
            let secs = |ms: u64| (ms / 1000) as u32;
            for l in &listeners {
                l.set_keepalive(secs(k.idle), secs(k.interval), k.probes)
                    .map_err(|e| Fatal::Config(format!("--tcp-keepalive: {e}")))?;
            }
        }
        let bound = listeners[0]
            .local_addr()
            .map_err(|e| Fatal::Runtime(e.to_string()))?;
        (listeners, bound)
    };
    let signals = Signals::new().map_err(|e| Fatal::Runtime(format!("signalfd: {e}")))?;

    // The --https-redirect and --metrics-listen listeners' workers have a
    // shard each of their own, after the model's.
    let shards = if user_stack.is_some() {
        1
    } else {
        glasshouse::models::shards(config.model, config.workers)
    };
    let redirect_shard = shards;
    let ops_shard = shards + usize::from(config.https_redirect.is_some());
    let metrics = Metrics::new(ops_shard + usize::from(config.metrics_listen.is_some()));
    let mut telemetry_cfg = TelemetryConfig::from_env().map_err(Fatal::Config)?;
    telemetry_cfg.metrics = Some(metrics.clone());
    let telemetry = Telemetry::init(&telemetry_cfg).map_err(Fatal::Config)?;
    let startup = startup.entered();
    startup.record("server.address", tracing::field::display(bound.ip()));
    startup.record("server.port", bound.port());
    let server_state = Arc::new(ServerState::default());
    let policy = Arc::new(Live::new(config.policy.clone()));
    let state = Arc::new(ServiceState {
        metrics: metrics.clone(),
        lifecycle: server_state.clone(),
        links: Links {
            grafana: config.grafana_url.clone(),
            jaeger: config.jaeger_url.clone(),
            prometheus: config.prometheus_url.clone(),
        },
        ws: Arc::new(WsOptions {
            allowed_origins: config.ws_allowed_origins.clone(),
            session: SessionConfig {
                max_message: config.ws_max_message,
                ping_interval: Some(config.ws_ping_interval),
                ..SessionConfig::default()
            },
            ..WsOptions::default()
        }),
        model: config.model.name(),
        policy: policy.clone(),
    });
    let ops_factory: HandlerFactory = {
        let state = state.clone();
        let files = files.for_worker();
        Arc::new(move |_worker| {
            Box::new(glasshouse::service::ops::OpsOnly(App::new(
                state.clone(),
                files.for_worker(),
            )))
        })
    };
    let factory: HandlerFactory = {
        let state = state.clone();
        Arc::new(move |_worker| Box::new(App::new(state.clone(), files.for_worker())))
    };
    let tls = if config.tls.is_empty() {
        None
    } else {
        // Probed once here: only the epoll reactor hands keys to the kernel.
        let path = glasshouse::tls::choose_path(
            config.ktls,
            config.model == Model::Epoll && config.user_link.is_none(),
        );
        let acceptor = glasshouse::tls::Acceptor::with_kernel(
            config.tls.clone(),
            metrics.process.tls.clone(),
            path.kernel_ciphers,
            config.tls_session_cache,
        )
        .map_err(|e| Fatal::Config(format!("--tls-cert/--tls-key: {e}")))?;
        tracing::info!(
            certificates = config.tls.len(),
            path = %path.describe,
            "HTTPS on --listen"
        );
        Some(Arc::new(acceptor))
    };
    let life = Arc::new(Lifecycle::new(server_state).map_err(|e| Fatal::Runtime(e.to_string()))?);
    let settings = Arc::new(Live::new(live_settings(&config)));
    glasshouse::per_client::set_cap(config.max_connections_per_client);
    let reactor_cfg = Arc::new(ReactorConfig {
        settings: settings.clone(),
        tls: tls.clone(),
    });
    let mut workers = match (user_stack, config.model) {
        (Some(us), _) => glasshouse::models::spawn_user_stack(
            us,
            reactor_cfg.clone(),
            factory,
            metrics.clone(),
            life.clone(),
        ),
        (None, Model::Epoll) => reactor::spawn(
            listeners,
            reactor_cfg.clone(),
            factory,
            metrics.workers.clone(),
            life.clone(),
        ),
        (None, Model::IoUring) => glasshouse::models::spawn_io_uring(
            listeners,
            reactor_cfg.clone(),
            factory,
            metrics.clone(),
            life.clone(),
        ),
        (None, model) => glasshouse::models::spawn(
            model,
            config.prethreaded_accept,
            listeners[0].clone(),
            reactor_cfg.clone(),
            factory,
            metrics.clone(),
            life.clone(),
        ),
    }
    .map_err(|e| match e.kind() {
        // The kernel refused io_uring: a setting to fix, said in one line.
        std::io::ErrorKind::Unsupported => Fatal::Config(e.to_string()),
        _ => Fatal::Runtime(format!("cannot start workers: {e}")),
    })?;
    // The plaintext side listeners: one epoll worker each, drained with the
    // rest on SIGTERM.
    let plain = Arc::new(ReactorConfig {
        tls: None,
        settings: settings.clone(),
    });
    let side = |addr: SocketAddr, app: HandlerFactory, shard: usize, what: &str| {
        let listener = bind_all(addr, 1, AcceptMode::Reuseport).map_err(Fatal::Config)?;
        // The address bound, port 0 resolved: what the log line names.
        let bound = listener[0].local_addr().unwrap_or(addr);
        let handles = reactor::spawn(
            listener,
            plain.clone(),
            app,
            vec![metrics.workers[shard].clone()],
            life.clone(),
        )
        .map_err(|e| Fatal::Runtime(format!("cannot start the {what} worker: {e}")))?;
        Ok::<_, Fatal>((handles, bound))
    };
    if let Some(addr) = config.https_redirect {
        let port = bound.port();
        let redirect: HandlerFactory =
            Arc::new(move |_| Box::new(glasshouse::tls::redirect::ToHttps { port }));
        let (handles, addr) = side(addr, redirect, redirect_shard, "redirect")?;
        workers.extend(handles);
        tracing::info!("redirecting http://{addr} to HTTPS");
    }
    if let Some(addr) = config.metrics_listen {
        let (handles, addr) = side(addr, ops_factory, ops_shard, "metrics")?;
        workers.extend(handles);
        tracing::info!("/metrics, /healthz and /readyz on http://{addr}");
    }
    metrics.set_ready(true);
    // The ready line belongs to no span.
    drop(startup);
    let host = match bound {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let port = bound.port();
    // The contract's ready line; with TLS the URL says https.
    let ready = if tls.is_some() {
        format!("listening on https://{host}:{port}")
    } else {
        format!("listening on http://{host}:{port}")
    };
    tracing::info!(
        model = config.model.name(),
        workers = config.workers,
        max_connections = config.max_connections,
        nofile,
        root = %config.root.display(),
        "{ready}"
    );
    let drain_timeout = config.drain_timeout;
    let mut hooks = MainHooks {
        reload,
        argv,
        running: config,
        policy,
        settings,
        metrics,
        shutdown: None,
        tls,
    };
    let exit = controller::run(signals, life, workers, drain_timeout, &mut hooks);
    // Last: flush traces, logs and metrics so a stopped server's final spans
    // reach the collector (bounded, whatever the collector does).
    let flush_deadline = match exit {
        Ok(Exit::Graceful) => TELEMETRY_FLUSH,
        _ => TELEMETRY_FLUSH_ABRUPT,
    };
    drop(hooks);
    telemetry.shutdown(flush_deadline);
    exit.map_err(|e| Fatal::Runtime(e.to_string()))
}

/// What a reload may change in the transports and the engine.
fn live_settings(config: &Config) -> Settings {
    Settings {
        engine: glasshouse::engine::Config {
            limits: Limits {
                max_body: config.max_body,
                ..Limits::default()
            },
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            send_timeout: config.send_timeout,
            ..glasshouse::engine::Config::default()
        },
        max_connections: config.max_connections,
    }
}

/// Longest wait for the final telemetry flush after a graceful drain.
const TELEMETRY_FLUSH: Duration = Duration::from_secs(5);
/// The same after SIGQUIT or a second signal: best effort, quickly.
const TELEMETRY_FLUSH_ABRUPT: Duration = Duration::from_secs(1);

struct MainHooks {
    reload: logging::LogReload,
    /// The command line, read again (with the environment and the config
    /// file) on SIGHUP.
    argv: Vec<std::ffi::OsString>,
    /// The configuration in force: what started, plus what reloads changed.
    running: Config,
    /// The header rules and compression the workers read.
    policy: Arc<rules::Live>,
    /// The timeouts and limits the transports and engines read.
    settings: Arc<Live<Settings>>,
    metrics: Arc<Metrics>,
    /// The `shutdown` span, from the signal to the end of the drain.
    shutdown: Option<ShutdownSpan>,
    /// Re-read on SIGHUP; new connections get the new certificates.
    tls: Option<Arc<glasshouse::tls::Acceptor>>,
}

/// A header rule may set HSTS, but RFC 6797 (7.2) has a browser ignore it
/// over plain HTTP: without `--tls-cert` it is right only behind a proxy
/// that terminates TLS, which the operator should know they rely on.
fn warn_hsts_without_tls(config: &Config) {
    if config.tls.is_empty() && config.policy.sets_header(rules::HSTS) {
        tracing::warn!(
            "a header rule sets Strict-Transport-Security but there is no --tls-cert: \
             browsers ignore it over plain HTTP (RFC 6797 7.2); right only behind a TLS-terminating proxy"
        );
    }
}

impl Hooks for MainHooks {
    fn reload(&mut self) {
        let _span = tracing::info_span!(target: "glasshouse::lifecycle", "reload").entered();
        // All or nothing: everything is validated before anything changes.
        let new = match config_file::load(&self.argv) {
            Ok((_, new)) => new,
            Err(e) => {
                let reason = match e {
                    LoadError::Args(e) => e.to_string(),
                    LoadError::Invalid(msg) => msg,
                };
                tracing::warn!(reason = %reason, "SIGHUP: configuration not reloaded; the old one stays");
                return;
            }
        };
        if let Err(e) = self.reload.set(&new.log_level) {
            tracing::warn!(error = %e, "SIGHUP: log level not changed; configuration not reloaded, the old one stays");
            return;
        }
        tracing::info!(level = %new.log_level, "SIGHUP: log level reloaded");
        logging::set_access_log(new.access_log);
        glasshouse::telemetry::set_trusted_proxies(new.trusted_proxies.clone());
        self.policy.replace(new.policy.clone());
        warn_hsts_without_tls(&new);
        let settings = live_settings(&new);
        tracing::info!(
            max_connections = settings.max_connections,
            header_timeout = ?settings.engine.header_timeout,
            idle_timeout = ?settings.engine.idle_timeout,
            send_timeout = ?settings.engine.send_timeout,
            max_body = settings.engine.limits.max_body,
            "SIGHUP: timeouts and limits in force"
        );
        glasshouse::per_client::set_cap(new.max_connections_per_client);
        let restart = config_file::needs_restart(&self.running, &new);
        if !restart.is_empty() {
            tracing::warn!(
                settings = %restart.join(", "),
                "SIGHUP: these settings need a restart and were not applied"
            );
        }
        tracing::info!(
            file = %new.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            rules = new.policy.rules.len(),
            "SIGHUP: configuration reloaded"
        );
        self.running.log_level = new.log_level;
        self.running.access_log = new.access_log;
        self.running.trusted_proxies = new.trusted_proxies;
        self.running.policy = new.policy;
        self.running.max_connections = new.max_connections;
        self.running.max_connections_per_client = new.max_connections_per_client;
        self.running.header_timeout = new.header_timeout;
        self.running.idle_timeout = new.idle_timeout;
        self.running.send_timeout = new.send_timeout;
        self.running.max_body = new.max_body;
        self.running.config_file = new.config_file;
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                Err(e) => tracing::warn!(error = %e, "SIGHUP: TLS certificates not changed"),
            }
        }
        // Last, so that a new generation of the settings means the whole
        // reload is done: the preforked supervisor replaces its worker
        // processes when it sees one, and they must fork with all of it.
        self.settings.replace(settings);
    }

    fn drain_started(&mut self, signal: Sig) {
        self.metrics.set_ready(false);
        let span = ShutdownSpan::start(signal.name());
        span.event("signal received", &[]);
        self.shutdown = Some(span);
    }

    fn drain_event(&mut self, name: &'static str, report: &DrainReport, idle_closed: u64) {
        if let Some(span) = &self.shutdown {
            let open = self
                .metrics
                .sum(|w| w.connections_open.load(Ordering::Relaxed));
            span.event(
                name,
                &[
                    ("in_flight", report.in_flight as i64),
                    ("idle_closed", idle_closed as i64),
                    ("connections_open", open),
                ],
            );
        }
    }

    fn drain_finished(&mut self, report: &DrainReport, deadline_hit: bool) {
        self.metrics.record_shutdown(report.drained, report.forced);
        if let Some(span) = self.shutdown.take() {
            let name = if deadline_hit {
                "drain deadline hit"
            } else {
                "drain finished"
            };
            span.event(
                name,
                &[
                    ("drained", report.drained as i64),
                    ("forced", report.forced as i64),
                ],
            );
            span.finish(report.in_flight, report.drained, report.forced);
        }
    }
}

/// `glasshouse healthcheck`: GET /healthz, exit 0 on 200. The default URL
/// is the `--metrics-listen` listener when there is one (plain HTTP even
/// under HTTPS), else `--listen`'s port on loopback.
fn healthcheck(cli: &Cli, url: Option<&str>) -> ExitCode {
    use std::io::{Read, Write};
    let default_url = || match cli.metrics_listen.as_deref().map(str::parse::<SocketAddr>) {
        Some(Ok(mut addr)) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            Ok(format!("http://{addr}/healthz"))
        }
        Some(Err(_)) => Err(format!(
            "invalid --metrics-listen address {:?}",
            cli.metrics_listen.as_deref().unwrap_or_default()
        )),
        None if !cli.tls_cert.is_empty() => Err(
            "--listen serves HTTPS: give --metrics-listen for a plain-HTTP probe, or a URL".into(),
        ),
        None => {
            let port = cli.listen.rsplit(':').next().unwrap_or("8080");
            Ok(format!("http://127.0.0.1:{port}/healthz"))
        }
    };
    let url = match url.map(str::to_string).map(Ok).unwrap_or_else(default_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("healthcheck: only http:// URLs are supported: {url}");
        return ExitCode::from(BAD_CONFIG);
    };
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let result = (|| -> std::io::Result<bool> {
        use std::net::ToSocketAddrs;
        let addr = authority
            .to_socket_addrs()?
            .next()
            .ok_or(std::io::ErrorKind::NotFound)?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: glasshouse-healthcheck\r\n\r\n")?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"HTTP/1.1 200 "))
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("healthcheck: {url} did not answer 200");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("healthcheck: {url}: {e}");
            ExitCode::from(1)
        }
    }
}
