//! The `/ws/stats` application: pushes the `/api/stats` document once a
//! second to each subscriber, skipping a tick for a peer that has not read
//! the previous one rather than queueing behind it.

use std::sync::Arc;
use std::time::Duration;

use super::ServiceState;
use crate::ws::{Message, Outbox, WsApp};

pub struct StatsApp {
    state: Arc<ServiceState>,
    /// Ticks skipped because the peer was slow (reported in the next push).
    skipped: u64,
}

impl StatsApp {
    pub fn new(state: Arc<ServiceState>) -> StatsApp {
        StatsApp { state, skipped: 0 }
    }

    fn push(&mut self, out: &mut Outbox) {
        let mut doc = self.state.stats();
        if self.skipped > 0 {
            doc["skipped_ticks"] = self.skipped.into();
        }
        out.send(Message::Text(doc.to_string()));
    }
}

impl WsApp for StatsApp {
    /// Any message asks for an immediate snapshot.
    fn on_message(&mut self, _msg: Message, out: &mut Outbox) {
        self.push(out);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, out: &mut Outbox, slow_peer: bool) {
        if slow_peer {
            self.skipped += 1;
            return;
        }
        self.push(out);
    }
}
