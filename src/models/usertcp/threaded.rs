//! The threaded driver (`--stack-driver threaded`): the design of the
//! document glasshouse grew from. A receive thread blocks on the link and
//! feeds each batch of packets to the stack; a timer thread sleeps until
//! the stack's or the link's next deadline and fires it; the main thread takes the user
//! calls (the engines, [`Engines`]). The connection pool — the one stack —
//! sits behind one mutex that each of them holds for one call at a time.
//!
//! Whoever changes the stack under the lock also takes the packets it
//! queued (and sends them after unlocking: no syscall under the lock),
//! rings the main thread when a connection was touched, and rings the
//! timer thread when the stack's next deadline came earlier than the one
//! it sleeps until (that deadline is published under the same lock, so
//! no wake-up is lost between a check and a sleep).

use std::io;
use std::ops::Range;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::engines::Engines;
use super::link::UserLink;
use super::pool::Pool;
use super::MTU_BUF;
use crate::models::TICK;
use crate::net::{Millis, Packet, Stack};
use crate::sys::eventfd::Bell;
use crate::sys::poll::{PollSet, Want};

/// Packets the receive thread reads before it takes the lock once for
/// all of them.
const RX_BATCH: usize = 32;

const READ: Want = Want {
    read: true,
    write: false,
};

/// What the three threads share.
pub struct Wire {
    /// The connection pool, behind the document's one mutex.
    pool: Mutex<Stack>,
    /// The link; it guards its own state, so all three threads use it
    /// without the stack's lock.
    link: Box<dyn UserLink>,
    /// The stack's clock counts milliseconds from here.
    start: Instant,
    /// Wakes the main thread: a connection was touched.
    user: Bell,
    /// Wakes the timer thread: an earlier deadline, or the stop.
    timer: Bell,
    /// Wakes the receive thread for the stop.
    rx_stop: Bell,
    stop: AtomicBool,
    /// A helper thread failed: the main thread ends the driver.
    failed: AtomicBool,
    /// The stack time the timer thread sleeps until; `u64::MAX` for none.
    timer_at: AtomicU64,
}

impl Pool for Wire {
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        self.pool.with(f)
    }
}

impl Wire {
    pub fn new(stack: Stack, link: Box<dyn UserLink>, start: Instant) -> io::Result<Wire> {
        Ok(Wire {
            pool: Mutex::new(stack),
            link,
            start,
            user: Bell::new()?,
            timer: Bell::new()?,
            rx_stop: Bell::new()?,
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            timer_at: AtomicU64::new(u64::MAX),
        })
    }

    fn now_ms(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    /// Under the lock, after a call that changed the stack: its packets
    /// into `out`, and the rings owed to the other threads.
    fn settle(&self, s: &mut Stack, now: Millis, out: &mut Vec<Packet>) {
        while let Some(p) = s.transmit_packet() {
            out.push(p);
        }
        if s.has_events() {
            self.user.ring();
        }
        if s.poll_at(now)
            .is_some_and(|t| t < self.timer_at.load(Ordering::Acquire))
        {
            self.timer.ring();
        }
    }

    fn send_all(&self, out: &mut Vec<Packet>) -> io::Result<()> {
        let now = self.now_ms();
        for p in out.drain(..) {
            self.link.send_packet(now, &p)?;
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// A helper thread's end: a failure is logged and stops the driver.
    fn helper_done(&self, name: &str, r: io::Result<()>) {
        if let Err(e) = r {
            tracing::error!(error = %e, thread = name, "usertcp thread failed");
            self.failed.store(true, Ordering::Release);
            self.user.ring();
        }
    }

    /// The receive thread: blocks on the link, reads a batch, hands it
    /// to the stack under one lock.
    fn receive(&self) -> io::Result<()> {
        let mut slots: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| vec![0; MTU_BUF]).collect();
        // Where in its slot each packet is (a link header may precede it).
        let mut spans: [Range<usize>; RX_BATCH] = std::array::from_fn(|_| 0..0);
        let mut out = Vec::new();
        let mut set = PollSet::default();
        while !self.stopping() {
            set.clear();
            set.push(self.link.as_fd(), READ);
            let stop_ix = set.push(self.rx_stop.as_fd(), READ);
            set.wait(Some(TICK))?;
            if set.ready(stop_ix).any() {
                self.rx_stop.clear();
            }
            loop {
                let mut n = 0;
                let now = self.now_ms();
                while n < RX_BATCH {
                    let slot = &mut slots[n];
                    let base = slot.as_ptr() as usize;
                    match self.link.recv(now, slot)? {
                        Some(p) => {
                            let at = p.as_ptr() as usize - base;
                            spans[n] = at..at + p.len();
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    break;
                }
                let now = self.now_ms();
                self.pool.with(|s| {
                    for (slot, span) in slots.iter().zip(&spans).take(n) {
                        s.receive(now, &slot[span.clone()]);
                    }
                    s.poll(now);
                    self.settle(s, now, &mut out);
                });
                self.send_all(&mut out)?;
                if n < RX_BATCH {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The timer thread: fires what is due (the stack's timers under the
    /// lock, the link's after it), then sleeps until the next deadline or
    /// a ring. A deadline the link gains meanwhile (an address to resolve)
    /// waits at most one tick: ARP's are a second apart.
    fn timers(&self) -> io::Result<()> {
        let mut out = Vec::new();
        let mut set = PollSet::default();
        while !self.stopping() {
            let now = self.now_ms();
            let next = self.pool.with(|s| {
                s.poll(now);
                let next = s.poll_at(now);
                self.timer_at
                    .store(next.unwrap_or(u64::MAX), Ordering::Release);
                while let Some(p) = s.transmit_packet() {
                    out.push(p);
                }
                if s.has_events() {
                    self.user.ring();
                }
                next
            });
            self.send_all(&mut out)?;
            self.link.poll(now)?;
            let next = match (next, self.link.poll_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // The clock is in milliseconds: a deadline of this very
            // millisecond waits for the next one rather than spinning.
            let sleep = next.map_or(TICK, |t| {
                Duration::from_millis(t.saturating_sub(now).max(1)).min(TICK)
            });
            set.clear();
            let ix = set.push(self.timer.as_fd(), READ);
            set.wait(Some(sleep))?;
            if set.ready(ix).any() {
                self.timer.clear();
            }
        }
        Ok(())
    }
}

/// The main thread of the threaded driver.
pub struct Threaded {
    pub engines: Engines<Arc<Wire>>,
    /// The controller's bell.
    pub bell: Arc<Bell>,
    pub set: PollSet,
}

impl Threaded {
    pub fn run(&mut self) -> io::Result<()> {
        let wire = self.engines.pool.clone();
        std::thread::scope(|scope| {
            let rx = wire.clone();
            let tm = wire.clone();
            let started = std::thread::Builder::new()
                .name("usertcp-rx".into())
                .spawn_scoped(scope, move || rx.helper_done("receive", rx.receive()))
                .and_then(|_| {
                    std::thread::Builder::new()
                        .name("usertcp-timer".into())
                        .spawn_scoped(scope, move || tm.helper_done("timer", tm.timers()))
                });
            // Whatever ends the main thread's part (a helper that could
            // not start included) stops the helpers, which the scope joins.
            let r = started.and_then(|_| self.serve(&wire));
            wire.stop.store(true, Ordering::Release);
            wire.rx_stop.ring();
            wire.timer.ring();
            r
        })
    }

    fn serve(&mut self, wire: &Wire) -> io::Result<()> {
        let mut out = Vec::new();
        loop {
            if wire.failed.load(Ordering::Acquire) {
                return Err(io::Error::other("a usertcp helper thread failed"));
            }
            self.engines.refresh();
            self.engines.serve();
            // What the engines wrote goes out now, not at the next timer.
            let now = self.engines.now_ms();
            wire.with(|s| {
                s.poll(now);
                wire.settle(s, now, &mut out);
            });
            wire.send_all(&mut out)?;
            self.engines.publish(&*wire.link);
            if self.engines.finished() {
                return Ok(());
            }
            let wake = self.engines.wake(self.engines.lent.now + TICK);
            self.set.clear();
            let user_ix = self.set.push(wire.user.as_fd(), READ);
            let bell_ix = self.set.push(self.bell.as_fd(), READ);
            self.set
                .wait(Some(wake.saturating_duration_since(Instant::now())))?;
            if self.set.ready(user_ix).any() {
                wire.user.clear();
            }
            if self.set.ready(bell_ix).any() {
                self.bell.clear();
            }
        }
    }
}
