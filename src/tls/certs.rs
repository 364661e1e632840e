//! Certificates and keys: reading the PEM files an operator names (a chain
//! and a PKCS#8, PKCS#1 RSA or SEC1 EC key per pair), choosing a pair by
//! the client's SNI, and the rustls server configuration built from them.
//! Several `--tls-cert`/`--tls-key` pairs are allowed: a client's SNI picks
//! the first pair whose leaf certificate is valid for that name, and a
//! client without SNI (or with a name no certificate covers) gets the first
//! pair. The crypto provider is `ring`: it builds with a C compiler alone
//! (aws-lc-rs needs cmake and a longer build) and covers every suite we
//! offer.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// ALPN protocols we speak, in order of preference (`h2` is reserved for
/// when the engine speaks it). `http/1.0` is what `curl --http1.0` offers,
/// alone: refusing it would refuse a protocol the engine serves.
pub const ALPN: &[&[u8]] = &[b"http/1.1", b"http/1.0"];

/// One certificate chain and its key, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A pair as loaded (the leaf, first in the chain, answers name matching).
struct Loaded {
    key: Arc<CertifiedKey>,
}

/// Picks a certificate by SNI (see the module doc).
pub struct SniResolver {
    pairs: Vec<Loaded>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SniResolver({} certificates)", self.pairs.len())
    }
}

impl SniResolver {
    fn for_name(&self, name: &str) -> Option<&Loaded> {
        let name = ServerName::try_from(name).ok()?;
        self.pairs.iter().find(|p| {
            let Some(leaf) = p.key.cert.first() else {
                return false;
            };
            webpki::EndEntityCert::try_from(leaf)
                .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
        })
    }
}

thread_local! {
    /// The SNI of the handshake this thread is running: rustls' unbuffered
    /// server connection does not expose it, and the resolver runs inside
    /// the layer's own call on the same thread, which takes it right after.
    static SNI: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The SNI the resolver last saw on this thread, if any (taken once).
pub fn take_sni() -> Option<String> {
    SNI.with(|s| s.borrow_mut().take())
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            SNI.with(|s| *s.borrow_mut() = Some(name.to_string()));
        }
        let chosen = hello
            .server_name()
            .and_then(|n| self.for_name(n))
            .or_else(|| self.pairs.first())?;
        Some(chosen.key.clone())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads one PEM chain and its key; checks that they belong together.
fn load_pair(pair: &CertPair, provider: &rustls::crypto::CryptoProvider) -> Result<Loaded, String> {
    let pem = read(&pair.cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", pair.cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block in the file",
            pair.cert.display()
        ));
    }
    webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("{}: not a usable certificate: {e}", pair.cert.display()))?;
    let pem = read(&pair.key)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: {e}", pair.key.display()))?
        .ok_or_else(|| {
            format!(
                "{}: no PRIVATE KEY (PKCS#8, RSA or EC) block in the file",
                pair.key.display()
            )
        })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: unsupported key: {e}", pair.key.display()))?;
    let key = CertifiedKey::new(chain, signer);
    key.keys_match().map_err(|e| {
        format!(
            "{} does not match {}: {e}",
            pair.key.display(),
            pair.cert.display()
        )
    })?;
    Ok(Loaded { key: Arc::new(key) })
}

/// The rustls configuration for these pairs: TLS 1.3 and 1.2 with the
/// provider's default (AEAD-only, forward-secret) suites, ALPN `http/1.1`,
/// no client certificates.
pub fn server_config(pairs: &[CertPair]) -> Result<Arc<ServerConfig>, String> {
    server_config_for(pairs, false, SESSION_CACHE)
}

/// Sessions remembered for resumption unless `--tls-session-cache` says
/// otherwise (rustls' own default).
pub const SESSION_CACHE: usize = 256;

/// [`server_config`], with rustls' secret extraction on when the keys may
/// go to the kernel (`dangerous_into_kernel_connection` refuses otherwise)
/// and `session_cache` sessions remembered for resumption: a TLS 1.2
/// session ID or a TLS 1.3 ticket that names a cache entry (no ticket
/// key to rotate or leak). With 0 every handshake is a full one.
pub fn server_config_for(
    pairs: &[CertPair],
    kernel: bool,
    session_cache: usize,
) -> Result<Arc<ServerConfig>, String> {
    if pairs.is_empty() {
        return Err("no certificate configured".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let loaded = pairs
        .iter()
        .map(|p| load_pair(p, &provider))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { pairs: loaded }));
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    // Several TLS 1.3 tickets invite a client to open parallel connections
    // that resume; one is enough for a server that keeps connections alive.
    cfg.send_tls13_tickets = 1;
    if session_cache == 0 {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    } else {
        cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(session_cache);
    }
    cfg.enable_secret_extraction = kernel;
    Ok(Arc::new(cfg))
}
