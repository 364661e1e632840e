//! Precise one-shot timers for a worker (delayed responses, WebSocket
//! pings). Cancelled timers are not removed: a fired entry is checked
//! against its connection, which knows whether it still wants it.
//! Coarse deadlines (head, idle, linger) are swept once a second instead.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::slab::Token;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, token: Token) {
        self.heap.push(Reverse((at, token.0)));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Token> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| Token(t)),
            _ => None,
        }
    }
}
