//! A deterministic network between stacks for tests: packets in flight
//! with a delay each, dropped, duplicated or held back (reordered) by a
//! seeded generator, so a failing seed replays exactly. The clock is the
//! simulator's own; nothing sleeps.

use super::{Millis, Stack};

/// What the network does to packets.
#[derive(Debug, Clone, Copy)]
pub struct Impairments {
    /// Per mille of packets dropped.
    pub loss: u32,
    /// Per mille duplicated.
    pub duplicate: u32,
    /// Per mille held back by up to `reorder_by` ms more than the rest.
    pub reorder: u32,
    pub reorder_by: Millis,
    /// One-way delay.
    pub delay: Millis,
}

impl Impairments {
    pub fn clean(delay: Millis) -> Impairments {
        Impairments {
            loss: 0,
            duplicate: 0,
            reorder: 0,
            reorder_by: 0,
            delay,
        }
    }
}

/// splitmix64: small, seedable, good enough to pick packets.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn per_mille(&mut self, p: u32) -> bool {
        (self.next_u64() % 1000) < u64::from(p)
    }
}

/// Two stacks and the wire between them.
pub struct Sim {
    pub now: Millis,
    pub stacks: [Stack; 2],
    pub net: Impairments,
    rng: Rng,
    /// (deliver at, to stack, packet), in no particular order.
    flight: Vec<(Millis, usize, Vec<u8>)>,
    pub delivered: u64,
    pub dropped: u64,
}

impl Sim {
    pub fn new(a: Stack, b: Stack, net: Impairments, seed: u64) -> Sim {
        Sim {
            now: 0,
            stacks: [a, b],
            net,
            rng: Rng::new(seed),
            flight: Vec::new(),
            delivered: 0,
            dropped: 0,
        }
    }

    /// Moves everything the stacks want to send onto the wire.
    fn collect(&mut self) {
        for from in 0..2 {
            self.stacks[from].poll(self.now);
            while let Some(p) = self.stacks[from].transmit() {
                let to = 1 - from;
                if self.rng.per_mille(self.net.loss) {
                    self.dropped += 1;
                    continue;
                }
                let copies = if self.rng.per_mille(self.net.duplicate) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut at = self.now + self.net.delay;
                    if self.rng.per_mille(self.net.reorder) && self.net.reorder_by > 0 {
                        at += 1 + self.rng.next_u64() % self.net.reorder_by;
                    }
                    self.flight.push((at, to, p.clone()));
                }
            }
        }
    }

    /// Advances to the next event (a delivery or a timer) and runs it;
    /// `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.collect();
        let next_packet = self.flight.iter().map(|f| f.0).min();
        let next_timer = self.stacks.iter().filter_map(|s| s.poll_at(self.now)).min();
        let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        // Deliver in send order among those due (a stable partition).
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.flight.len() {
            if self.flight[i].0 <= self.now {
                due.push(self.flight.remove(i));
            } else {
                i += 1;
            }
        }
        for (_, to, p) in due {
            self.delivered += 1;
            self.stacks[to].receive(self.now, &p);
        }
        for s in &mut self.stacks {
            s.poll(self.now);
        }
        true
    }

    /// Steps until `done` holds or the simulated clock passes `limit`.
    pub fn run_until(&mut self, limit: Millis, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        while self.now <= limit {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        false
    }
}
