//! HTTPS: TLS as a sans-I/O layer between any transport and the connection
//! engine. The engine sees plaintext and never knows TLS is there; a
//! transport holds a [`Session`] (plain or TLS) and drives it with the
//! engine's own calls. rustls' unbuffered API does the records, into and
//! out of our buffers, with no thread and no runtime of its own.
//!
//! Code map: `certs` (PEM files, SNI choice, the rustls configuration),
//! `layer` (one TLS connection around one engine connection), `kernel`
//! (a connection after its keys went to the kernel), `ktls` (rustls' keys
//! in the kernel's layout), `session` (what a transport holds). [`Acceptor`] is what a server shares among
//! its workers: the current configuration, swapped whole on SIGHUP so that
//! new connections use the new certificate while open ones keep theirs.

use std::sync::{Arc, RwLock};

use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;

use crate::engine::{Connection, Observer};
use crate::telemetry::metrics::TlsMetrics;

pub mod certs;
pub mod kernel;
pub mod ktls;
pub mod layer;
pub mod redirect;
pub mod session;

pub use certs::CertPair;
pub use layer::{HandshakeInfo, TlsConnection};
pub use session::Session;

/// The server side of TLS, shared by every worker.
pub struct Acceptor {
    pairs: Vec<CertPair>,
    /// The kernel ciphers connections may hand their keys off with after
    /// the handshake (none: kTLS is off).
    kernel: Vec<u16>,
    /// Sessions remembered for resumption (0: none; see `certs`).
    session_cache: usize,
    current: RwLock<Arc<ServerConfig>>,
    metrics: Arc<TlsMetrics>,
}

impl Acceptor {
    /// Reads the certificate and key files; an error names the file.
    pub fn new(pairs: Vec<CertPair>, metrics: Arc<TlsMetrics>) -> Result<Acceptor, String> {
        Acceptor::with_kernel(pairs, metrics, Vec::new(), certs::SESSION_CACHE)
    }

    /// An acceptor whose connections go to kernel TLS after the handshake
    /// when their suite uses one of `kernel` ciphers (the caller probed:
    /// see [`choose_path`]), remembering `session_cache` sessions for
    /// resumption.
    pub fn with_kernel(
        pairs: Vec<CertPair>,
        metrics: Arc<TlsMetrics>,
        kernel: Vec<u16>,
        session_cache: usize,
    ) -> Result<Acceptor, String> {
        let cfg = certs::server_config_for(&pairs, !kernel.is_empty(), session_cache)?;
        Ok(Acceptor {
            pairs,
            kernel,
            session_cache,
            current: RwLock::new(cfg),
            metrics,
        })
    }

    /// Re-reads every file; on any error the old configuration stays.
    /// Connections already open keep the keys they shook hands with.
    pub fn reload(&self) -> Result<(), String> {
        let cfg =
            certs::server_config_for(&self.pairs, !self.kernel.is_empty(), self.session_cache)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = cfg;
        Ok(())
    }

    /// Whether a transport should hand each connection's keys to the
    /// kernel once its handshake is done.
    pub fn kernel_tls(&self) -> bool {
        !self.kernel.is_empty()
    }

    /// The kernel ciphers a hand-off may use.
    pub fn kernel_ciphers(&self) -> &[u16] {
        &self.kernel
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wraps a new engine connection in TLS with the current certificates.
    pub fn session<O: Observer>(&self, engine: Connection<O>) -> Result<Session<O>, String> {
        let tls = UnbufferedServerConnection::new(self.config()).map_err(|e| e.to_string())?;
        Ok(Session::Tls(Box::new(TlsConnection::new(
            tls,
            engine,
            self.metrics.clone(),
        ))))
    }
}

/// Which record path serves HTTPS, decided once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPath {
    /// The kernel ciphers (`sys::ktls::TLS_CIPHER_*`) connections may be
    /// handed off with; empty: userspace rustls for every connection.
    pub kernel_ciphers: Vec<u16>,
    /// For the start-up log.
    pub describe: String,
}

/// Probes kernel TLS (the ULP, then which ciphers install) unless `mode`
/// is off or the model cannot hand off (`hands_off`: only the epoll
/// reactor does).
pub fn choose_path(mode: crate::config::KtlsMode, hands_off: bool) -> RecordPath {
    use crate::sys::ktls::{probe, probe_ciphers, Support};
    let user = |why: &str| RecordPath {
        kernel_ciphers: Vec::new(),
        describe: format!("userspace rustls ({why})"),
    };
    if mode == crate::config::KtlsMode::Off {
        return user("--ktls off");
    }
    match probe() {
        Ok(Support::Available) if hands_off => match probe_ciphers() {
            Ok(c) if !c.is_empty() => RecordPath {
                describe: format!(
                    "kernel TLS after a userspace rustls handshake (TCP_ULP tls; ciphers {}; \
                     userspace rustls for other suites)",
                    c.iter()
                        .map(|c| kernel::cipher_name(*c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                kernel_ciphers: c,
            },
            Ok(_) => user("kernel TLS installs none of our ciphers"),
            Err(e) => user(&format!("kernel TLS cipher probe failed: {e}")),
        },
        Ok(Support::Available) => user("kernel TLS available, but only --model epoll hands off"),
        Ok(Support::Absent) => user("no kernel TLS: TCP_ULP tls gives ENOENT"),
        Err(e) => user(&format!("kernel TLS probe failed: {e}")),
    }
}

/// A transport's way to wrap each accepted connection: in TLS when the
/// server has an acceptor, plain otherwise.
pub fn wrap<O: Observer>(
    acceptor: Option<&Acceptor>,
    engine: Connection<O>,
) -> Result<Session<O>, String> {
    match acceptor {
        Some(a) => a.session(engine),
        None => Ok(Session::Plain(engine)),
    }
}

#[cfg(test)]
mod tests;
