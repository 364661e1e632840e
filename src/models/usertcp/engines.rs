//! The engines' half of a user-stack driver, the same under both drivers:
//! the main thread of the document, which takes the user calls. It
//! accepts what the listener holds (OPEN), gives each connection an
//! engine, runs the engines through `driver::step` over a [`UserPipe`]
//! when the stack reports them touched or their deadline is due, follows
//! the lifecycle (drain, forced stop), publishes STATUS for `/api/tcp`,
//! and says when a stopping server is done. It never reads the link nor
//! fires the stack's timers: that is the driver's part.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool::{Pool, UserPipe};
use crate::models::driver::{step, Admission, Lent, Step, SCRATCH};
use crate::models::{listener_closed, Shared};
use crate::net::link::Link;
use crate::net::{Handle, Millis};
use crate::reactor::State;
use crate::telemetry::{HttpObserver, Metrics, WorkerMetrics};
use crate::tls::Session;

/// Engine steps per connection per turn.
const STEPS: usize = 64;
/// How often the stack's STATUS is copied out for `/api/tcp`.
const VIEW_EVERY: Duration = Duration::from_millis(200);
/// How long a stopping server keeps the stack running for closes in
/// progress, once every engine has finished.
const LINGER: Duration = Duration::from_secs(2);

struct Conn {
    engine: Session<HttpObserver>,
    _admission: Admission,
    /// How many of its TCP state changes request spans have shown.
    tcp_reported: u32,
}

pub struct Engines<P> {
    /// The whole server's figures, where the stack's STATUS is published.
    figures: Arc<Metrics>,
    pub lent: Lent,
    pub pool: P,
    port: u16,
    conns: HashMap<Handle, Conn>,
    scratch: Vec<u8>,
    file_buf: RefCell<Vec<u8>>,
    seen: State,
    /// The stack's clock counts milliseconds from here.
    start: Instant,
    listening: bool,
    /// When the drain's last engine finished: the stack stops by then.
    linger_until: Option<Instant>,
    /// When the stack's STATUS was last published.
    viewed: Option<Instant>,
}

impl<P: Pool> Engines<P> {
    /// `start` is the instant the stack's clock counts from.
    pub fn new(
        pool: P,
        port: u16,
        start: Instant,
        shared: Shared,
        metrics: Arc<WorkerMetrics>,
    ) -> Engines<P> {
        Engines {
            figures: shared.metrics.clone(),
            lent: Lent::new(0, shared, metrics),
            pool,
            port,
            conns: HashMap::new(),
            scratch: vec![0; SCRATCH],
            file_buf: RefCell::new(Vec::new()),
            seen: State::Running,
            start,
            listening: true,
            linger_until: None,
            viewed: None,
        }
    }

    pub fn now_ms(&self) -> Millis {
        self.lent
            .now
            .saturating_duration_since(self.start)
            .as_millis() as Millis
    }

    /// The stack's clock as an instant.
    pub fn instant(&self, at: Millis) -> Instant {
        self.start + Duration::from_millis(at)
    }

    /// Reads the clock and the lifecycle, and acts on a change of state.
    pub fn refresh(&mut self) {
        self.lent.refresh();
        if self.lent.state != self.seen {
            self.seen = self.lent.state;
            match self.seen {
                State::Draining => self.begin_drain(),
                State::Forced => self.force_close(),
                State::Running => {}
            }
        }
    }

    /// Accepts, then runs every engine the stack touched or whose
    /// deadline has come.
    pub fn serve(&mut self) {
        self.accept();
        let mut touched = self.pool.with(|s| s.take_events());
        touched.extend(
            self.conns
                .iter()
                .filter(|(_, c)| c.engine.next_deadline().is_some_and(|d| d <= self.lent.now))
                .map(|(h, _)| *h),
        );
        touched.sort_unstable();
        touched.dedup();
        for h in touched {
            self.drive(h);
        }
    }

    /// The earliest of `wake` and every engine's deadline.
    pub fn wake(&self, mut wake: Instant) -> Instant {
        for c in self.conns.values() {
            if let Some(d) = c.engine.next_deadline() {
                wake = wake.min(d);
            }
        }
        wake
    }

    /// A copy of the stack's STATUS for `/api/tcp`, every [`VIEW_EVERY`]:
    /// a reader never waits on the stack, and the stack's owner spends
    /// one walk of its table per copy.
    pub fn publish<L: Link + ?Sized>(&mut self, link: &L) {
        if self.viewed.is_some_and(|t| self.lent.now < t + VIEW_EVERY) {
            return;
        }
        self.viewed = Some(self.lent.now);
        let now = self.now_ms();
        let mut view = self.pool.with(|s| s.view(now));
        view.link = link.ether();
        self.figures.tcp.publish(view);
    }

    /// A stopping server is done when every engine has finished and the
    /// closes they began have been acknowledged (a peer left waiting for
    /// an ACK would retransmit into silence: nobody else answers for this
    /// address), or [`LINGER`] after the last engine finished.
    pub fn finished(&mut self) -> bool {
        if self.seen == State::Running || !self.conns.is_empty() {
            return false;
        }
        let linger = *self.linger_until.get_or_insert(self.lent.now + LINGER);
        self.pool.with(|s| s.active()) == 0 || self.lent.now >= linger
    }

    fn accept(&mut self) {
        let max = self.lent.max_connections();
        let port = self.port;
        while let Some((h, local, remote)) = self.pool.with(|s| {
            let h = s.accept(port)?;
            let t = s.tcb(h).expect("an accepted handle is live");
            Some((h, t.local, t.remote))
        }) {
            let peer = IpAddr::V4(*remote.ip());
            let now = self.now_ms();
            let admission = match Admission::enter(self.lent.life(), max, peer, self.lent.metrics())
            {
                Ok(a) => a,
                Err(answer) => {
                    // Told why and closed, as a socket model refuses: the
                    // stack sends the answer and the FIN on its own. The
                    // request that came with the connection is read and
                    // dropped first: released unread, it would turn the
                    // close into a reset that takes the answer with it.
                    let scratch = &mut self.scratch;
                    self.pool.with(|s| {
                        while s.recv(h, scratch).is_ok_and(|n| n > 0) {}
                        if let Some(answer) = answer {
                            let _ = s.send(h, &answer);
                        }
                        s.close(h);
                        s.release(now, h);
                    });
                    continue;
                }
            };
            let Some(mut engine) = self
                .lent
                .connection_at(SocketAddr::V4(remote), SocketAddr::V4(local))
            else {
                self.pool.with(|s| {
                    s.abort(h);
                    s.release(now, h);
                });
                continue;
            };
            if self.seen != State::Running {
                self.lent.drain(&mut engine);
            }
            self.conns.insert(
                h,
                Conn {
                    engine,
                    _admission: admission,
                    tcp_reported: 0,
                },
            );
        }
    }

    fn drive(&mut self, h: Handle) {
        let Some(reported) = self.conns.get(&h).map(|c| c.tcp_reported) else {
            return;
        };
        // The spans of requests this drive finishes record the TCP under
        // them (as of the drive's start: one look at the stack per drive).
        let facts = self.pool.with(|s| s.facts(h));
        let now = self.now_ms();
        self.lent.observer_mut().set_tcp(facts, now, reported);
        self.run_engine(h);
        let reported = self.lent.observer_mut().take_tcp();
        if let (Some(c), Some(r)) = (self.conns.get_mut(&h), reported) {
            c.tcp_reported = r;
        }
    }

    fn run_engine(&mut self, h: Handle) {
        let Some(c) = self.conns.get_mut(&h) else {
            return;
        };
        let mut env = self.lent.env();
        if c.engine.next_deadline().is_some_and(|d| d <= env.now) {
            c.engine.on_timer(&mut env);
        }
        let pipe = UserPipe {
            pool: &self.pool,
            handle: h,
            file_buf: &self.file_buf,
        };
        let mut close = false;
        for _ in 0..STEPS {
            match step(&pipe, &mut c.engine, &mut env, &mut self.scratch, true) {
                Step::Moved | Step::Read(_) => {}
                Step::Blocked { .. } | Step::Idle => break,
                Step::Close => {
                    close = true;
                    break;
                }
            }
        }
        self.lent.collect_drained(&mut c.engine);
        if close {
            self.close(h, false);
        }
    }

    fn close(&mut self, h: Handle, forced: bool) {
        let Some(c) = self.conns.remove(&h) else {
            return;
        };
        let now = self.now_ms();
        // A request cut short by the close ends here: its span still says
        // what the TCP under it was.
        let facts = self.pool.with(|s| s.facts(h));
        self.lent.observer_mut().set_tcp(facts, now, c.tcp_reported);
        // A peer the engine gave up on is reset, as a socket transport does
        // (`driver::let_go`).
        let abort = forced || c.engine.gave_up();
        self.pool.with(|s| {
            if abort {
                s.abort(h);
            } else {
                s.close(h);
            }
            s.release(now, h);
        });
        self.lent.close(c.engine, forced);
        self.lent.observer_mut().take_tcp();
    }

    fn begin_drain(&mut self) {
        if self.listening {
            self.listening = false;
            self.accept();
            let port = self.port;
            self.pool.with(|s| s.unlisten(port));
        }
        let handles: Vec<Handle> = self.conns.keys().copied().collect();
        for h in handles {
            self.drive(h);
            if let Some(c) = self.conns.get_mut(&h) {
                self.lent.drain(&mut c.engine);
            }
            self.drive(h);
        }
        listener_closed(self.lent.life());
    }

    fn force_close(&mut self) {
        let handles: Vec<Handle> = self.conns.keys().copied().collect();
        for h in handles {
            self.close(h, true);
        }
    }
}
