//! What a WebSocket route accepts in a handshake: subprotocols, origins,
//! permessage-deflate and the session settings. The route hands these to
//! the engine with its answer; the engine's upgrade step applies them.

use std::sync::Arc;

use super::extension::DeflatePolicy;
use super::SessionConfig;

/// Chooses a subprotocol among those the client offered (in its order);
/// returning one it did not offer is treated as no choice.
pub type ProtocolSelector = Arc<dyn Fn(&[&str]) -> Option<String> + Send + Sync>;

/// What a route accepts in a handshake.
#[derive(Clone)]
pub struct WsOptions {
    /// Subprotocols the route speaks; the first one the client offers that
    /// is in this list is selected (§4.2.2 step 5.4). Ignored when
    /// `select_protocol` is set.
    pub protocols: Vec<String>,
    /// A custom subprotocol choice.
    pub select_protocol: Option<ProtocolSelector>,
    /// When set, a request whose `Origin` is present and not in this list
    /// (ASCII case-insensitive, e.g. `https://example.com`) gets `403`
    /// (§4.2.1 step 7, §10.2). Requests without `Origin` (non-browser
    /// clients) are let through.
    pub allowed_origins: Option<Vec<String>>,
    /// permessage-deflate policy; `None` leaves the extension off. On by
    /// default, with `server_no_context_takeover` so that an idle session
    /// holds no compressor.
    pub deflate: Option<DeflatePolicy>,
    /// Limits and timers for the sessions; the handshake fills in the
    /// negotiated `deflate` and `protocol`.
    pub session: SessionConfig,
}

impl Default for WsOptions {
    fn default() -> WsOptions {
        WsOptions {
            protocols: Vec::new(),
            select_protocol: None,
            allowed_origins: None,
            deflate: Some(DeflatePolicy {
                server_no_context_takeover: true,
            }),
            session: SessionConfig::default(),
        }
    }
}

impl std::fmt::Debug for WsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsOptions")
            .field("protocols", &self.protocols)
            .field("select_protocol", &self.select_protocol.is_some())
            .field("allowed_origins", &self.allowed_origins)
            .field("deflate", &self.deflate)
            .field("session", &self.session)
            .finish()
    }
}
