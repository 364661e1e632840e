//! Certificates made at test time (rcgen): [`Pki`], a CA and a leaf for
//! `localhost` and 127.0.0.1 as PEM files; [`client_config`], a rustls
//! client trusting that CA; [`tls_connect`], a blocking rustls stream,
//! and [`read_answer`], one answer read off it.
//! Used by tests/tls.rs and, under `GLASSHOUSE_TEST_TLS=1`, by the
//! harness for every server it starts (see `server.rs`).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::server::Server;
use super::PATIENCE;

/// A CA and a leaf for `localhost` and 127.0.0.1, as PEM files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: CertificateDer<'static>,
    /// The leaf, then the CA.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A fresh CA and leaf; `expired` dates the leaf 2020-2021.
    pub fn new(expired: bool) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            ca: CertificateDer::from(Vec::new()),
            dir,
        };
        pki.reissue(expired)
    }

    /// A new CA and leaf written over the same files.
    pub fn reissue(mut self, expired: bool) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "glasshouse test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let leaf = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(&self.cert, leaf.pem() + &ca.pem()).unwrap();
        std::fs::write(&self.key, key.serialize_pem()).unwrap();
        std::fs::write(self.dir.path().join("ca.pem"), ca.pem()).unwrap();
        self.ca = ca.der().clone();
        self
    }

    /// The CA alone, as PEM (for curl `--cacert`, Python `ssl`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `--tls-cert CERT --tls-key KEY`.
    pub fn flags(&self) -> [String; 4] {
        [
            "--tls-cert".to_string(),
            self.cert
                .to_str()
                .expect("UTF-8 temporary path")
                .to_string(),
            "--tls-key".to_string(),
            self.key.to_str().expect("UTF-8 temporary path").to_string(),
        ]
    }

    /// A server with these files and `extra` flags.
    pub fn start(&self, extra: &[&str]) -> Server {
        let flags = self.flags();
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        Server::start(&args)
    }
}

/// A rustls client (ring, TLS 1.2 and 1.3, ALPN `http/1.1`) trusting `ca`.
pub fn client_config(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A TCP connection with read and write timeouts of [`PATIENCE`].
pub fn raw_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// A rustls client stream for `localhost` on a new connection to `addr`
/// (the handshake happens on first use).
pub fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    tls_connect_with(addr, cfg, |_| {})
}

/// [`tls_connect`], with the socket given to `tune` (buffer sizes, say)
/// before the handshake.
pub fn tls_connect_with(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    tune: impl FnOnce(&TcpStream),
) -> StreamOwned<ClientConnection, TcpStream> {
    let sock = raw_tcp(addr);
    tune(&sock);
    let conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, sock)
}

/// Reads one answer with a Content-Length body from a blocking stream;
/// panics if the connection ends inside it.
pub fn read_answer<R: Read>(s: &mut R) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection ended in the head"
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}
