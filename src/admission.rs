//! A connection's place under `--max-connections` and, when counted, under
//! `--max-connections-per-client`: taken when a transport admits the
//! connection, given back when the place is dropped however the
//! connection ends. Every transport admits through this one decision and
//! refuses in its own way (a canned answer on a socket, a reset on the
//! userland stack, nothing readable for a TLS client).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::per_client::{self, ClientPlace, Entry};
use crate::reactor::Lifecycle;

/// A place under the caps, given back when dropped.
pub struct Admission {
    life: Arc<Lifecycle>,
    /// Held for its `Drop`.
    _client: Option<ClientPlace>,
}

/// Why [`Admission::admit`] refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The client address holds its share (429).
    Client,
    /// The server holds `--max-connections` (503).
    Server,
}

impl Admission {
    /// The client's place first, then the server's.
    pub fn admit(life: &Arc<Lifecycle>, max: usize, peer: IpAddr) -> Result<Admission, Full> {
        let client = match per_client::enter(peer, per_client::cap()) {
            Entry::Uncounted => None,
            Entry::Counted(place) => Some(place),
            Entry::Refused => return Err(Full::Client),
        };
        let open = life.open.fetch_add(1, Ordering::AcqRel) + 1;
        let admission = Admission {
            life: life.clone(),
            _client: client,
        };
        if open <= max {
            Ok(admission)
        } else {
            Err(Full::Server)
        }
    }

    /// A place in a process that serves a connection another process
    /// already admitted (a forked child): counted in this process's
    /// figures, never refused.
    pub fn accounted(life: &Arc<Lifecycle>) -> Admission {
        life.open.fetch_add(1, Ordering::AcqRel);
        Admission {
            life: life.clone(),
            _client: None,
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.life.open.fetch_sub(1, Ordering::AcqRel);
    }
}
