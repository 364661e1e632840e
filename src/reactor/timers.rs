//! One-shot timers for a worker's connections: each entry is the deadline
//! an engine named. Entries are never removed: a fired entry is checked
//! against its connection's engine, which knows whether anything is due,
//! and a deadline that moved later is re-armed then.

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

    /// Pops the next timer due at or before `now`, with its time.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Token)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((at, t))| (at, Token(t)))
            }
            _ => None,
        }
    }
}
