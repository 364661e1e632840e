//! HTTPS: TLS as a sans-I/O layer between any transport and the connection
//! engine. The engine sees plaintext and never knows TLS is there; a
//! transport holds a [`Session`] (plain or TLS) and drives it with the
//! engine's own calls. rustls' unbuffered API does the records, into and
//! out of our buffers, with no thread and no runtime of its own.
//!
//! Code map: `certs` (PEM files, SNI choice, the rustls configuration),
//! `layer` (one TLS connection around one engine connection), `session`
//! (what a transport holds). [`Acceptor`] is what a server shares among
//! its workers: the current configuration, swapped whole on SIGHUP so that
//! new connections use the new certificate while open ones keep theirs.

use std::sync::{Arc, RwLock};

use rustls::server::UnbufferedServerConnection;
use rustls::ServerConfig;

use crate::engine::{Connection, Observer};
use crate::telemetry::metrics::TlsMetrics;

pub mod certs;
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
    current: RwLock<Arc<ServerConfig>>,
    metrics: Arc<TlsMetrics>,
}

impl Acceptor {
    /// Reads the certificate and key files; an error names the file.
    pub fn new(pairs: Vec<CertPair>, metrics: Arc<TlsMetrics>) -> Result<Acceptor, String> {
        let cfg = certs::server_config(&pairs)?;
        Ok(Acceptor {
            pairs,
            current: RwLock::new(cfg),
            metrics,
        })
    }

    /// Re-reads every file; on any error the old configuration stays.
    /// Connections already open keep the keys they shook hands with.
    pub fn reload(&self) -> Result<(), String> {
        let cfg = certs::server_config(&self.pairs)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = cfg;
        Ok(())
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

/// Which record path serves HTTPS, for the start-up log: kernel TLS is
/// probed once; until the kernel hand-off is built (and on kernels without
/// `CONFIG_TLS`, like ours) rustls encrypts in user space.
pub fn ktls_path() -> &'static str {
    match crate::sys::ktls::probe() {
        Ok(crate::sys::ktls::Support::Available) => {
            "userspace rustls (kernel TLS available, hand-off not built yet)"
        }
        Ok(crate::sys::ktls::Support::Absent) => {
            "userspace rustls (no kernel TLS: TCP_ULP tls gives ENOENT)"
        }
        Err(_) => "userspace rustls (kernel TLS probe failed)",
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
