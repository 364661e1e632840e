//! What the process models (`forking`, `preforked`) share: the parent's
//! table of live children (reaped through SIGCHLD on a signalfd, with
//! `waitpid(-1, WNOHANG)` in a loop, so that no zombie stays however many
//! end together), the parent's part of the drain (signal every child, wait
//! for them, and at the forced stop kill and count those left), and the
//! child's start: its own metrics shard relayed to the parent
//! ([`super::figures`]), and a thread that turns the signals the parent
//! sends into the child's lifecycle, which its serving code reads exactly
//! as a thread of the threaded models does.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::driver::Lent;
use super::figures::{self, Inbox, Mirror, Reporter};
use super::{Shared, TICK};
use crate::reactor::{Lifecycle, State};
use crate::sys::epoll::{Events, Interest, Poller};
use crate::sys::eventfd::Bell;
use crate::sys::poll::{PollSet, Want};
use crate::sys::process::{self, ChildSignals, Ended, Forked};
use crate::sys::signals::{Sig, Signals};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::WorkerMetrics;

/// The parent's view of its children; `T` is what it keeps for each (a
/// place under `--max-connections`, or a slot to refill).
pub struct Children<T> {
    live: HashMap<i32, T>,
    /// The same pids, for the herald ([`herald`]).
    pids: Arc<Mutex<HashSet<i32>>>,
    sigchld: ChildSignals,
    inbox: Inbox,
    shards: Vec<Arc<WorkerMetrics>>,
    life: Arc<Lifecycle>,
    all: Arc<Metrics>,
    /// Reported by every child: the end the children inherit.
    pub outbox: UnixDatagram,
    /// The parent's end of each child's mirror ([`Mirror`]), when the
    /// model keeps its children's view of the figures up to date.
    mirrors: HashMap<i32, UnixDatagram>,
    mirrored: Instant,
    /// A report arrived since the last copy went out.
    mirror_due: bool,
    mirror: Mirror,
}

impl<T> Children<T> {
    pub fn new(
        shards: Vec<Arc<WorkerMetrics>>,
        life: Arc<Lifecycle>,
        all: Arc<Metrics>,
    ) -> io::Result<Children<T>> {
        let (inbox, outbox) = figures::channel()?;
        Ok(Children {
            live: HashMap::new(),
            pids: Arc::default(),
            sigchld: ChildSignals::new()?,
            inbox,
            shards,
            life,
            all,
            outbox,
            mirrors: HashMap::new(),
            mirrored: Instant::now(),
            mirror_due: false,
            mirror: Mirror::new(),
        })
    }

    /// Forks with `fork` (which returns the child's pid) and keeps `keep`
    /// for the child. The herald's table is held across the fork, so a
    /// child either is in it when the herald signals the drain, or was
    /// forked after the drain began and inherited the draining state.
    pub fn fork(&mut self, keep: T, fork: impl FnOnce() -> io::Result<i32>) -> io::Result<i32> {
        let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
        let pid = fork()?;
        pids.insert(pid);
        self.live.insert(pid, keep);
        Ok(pid)
    }

    /// [`Children::fork`] for a child that keeps a mirror of the parent's
    /// figures: `fork` is given the child's end.
    pub fn fork_mirrored(
        &mut self,
        keep: T,
        fork: impl FnOnce(UnixDatagram) -> io::Result<i32>,
    ) -> io::Result<i32> {
        let (ours, theirs) = UnixDatagram::pair()?;
        ours.set_nonblocking(true)?;
        let pid = self.fork(keep, || fork(theirs))?;
        self.mirrors.insert(pid, ours);
        Ok(pid)
    }

    /// Sends every mirrored child the parent's figures, at most every
    /// [`REPORT_EVERY`].
    pub fn mirror(&mut self) {
        if self.mirrors.is_empty() || self.mirrored.elapsed() < REPORT_EVERY {
            // Not yet: [`Children::wait`] wakes when the copy is due.
            self.mirror_due = !self.mirrors.is_empty();
            return;
        }
        self.mirrored = Instant::now();
        self.mirror_due = false;
        self.mirror.send(
            self.mirrors.values(),
            &self.shards,
            &self.life,
            self.inbox.shares(),
        );
    }

    /// Starts the herald: when `bell` rings (the controller rings it when
    /// the drain begins), every live child is sent SIGTERM at once, so it
    /// drains with the parent rather than when the parent's accepting
    /// thread next looks at the lifecycle.
    pub fn herald(&self, bell: Arc<Bell>) -> io::Result<()> {
        let (pids, life) = (self.pids.clone(), self.life.clone());
        let poll = Poller::new()?;
        poll.add(&*bell, 0, Interest::READ)?;
        std::thread::Builder::new()
            .name("herald".into())
            .spawn(move || {
                let mut events = Events::with_capacity(1);
                while poll.wait(&mut events, None).is_ok() {
                    bell.clear();
                    if life.state() != State::Running {
                        let pids = pids.lock().unwrap_or_else(|p| p.into_inner());
                        for pid in pids.iter() {
                            let _ = process::kill(*pid, libc::SIGTERM);
                        }
                        return;
                    }
                }
            })?;
        Ok(())
    }

    /// Collects the children's reports, then reaps every child that ended
    /// and hands back what was kept for it.
    pub fn tend(&mut self, mut ended: impl FnMut(i32, T, Ended)) {
        self.inbox
            .collect(&self.shards, &self.life, &self.all.process);
        self.sigchld.clear();
        let (live, mirrors) = (&mut self.live, &mut self.mirrors);
        let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
        process::reap(|pid, how| {
            pids.remove(&pid);
            mirrors.remove(&pid);
            if let Some(keep) = live.remove(&pid) {
                ended(pid, keep, how);
            }
        });
        drop(pids);
        // A report sent just before its child ended may arrive after the
        // first collect.
        self.inbox
            .collect(&self.shards, &self.life, &self.all.process);
    }

    /// Waits up to [`TICK`] for a child to end or to report, and no longer
    /// than until a copy of the figures held back by [`Children::mirror`]
    /// is due: the children's view lags by a report interval, not a tick.
    pub fn wait(&self) {
        let mut set = PollSet::default();
        let want = Want {
            read: true,
            write: false,
        };
        set.push(self.sigchld.as_fd(), want);
        set.push(self.inbox.as_fd(), want);
        let wait = if self.mirror_due {
            REPORT_EVERY
                .saturating_sub(self.mirrored.elapsed())
                .min(TICK)
        } else {
            TICK
        };
        let _ = set.wait(Some(wait));
    }

    /// Asks every live child to drain (SIGTERM), as [`Children::stop`]
    /// does, without waiting; returns their pids.
    pub fn ask_all_to_drain(&self) -> Vec<i32> {
        for pid in self.live.keys() {
            let _ = process::kill(*pid, libc::SIGTERM);
        }
        self.live.keys().copied().collect()
    }

    /// The parent's part of the drain: every child is asked to drain
    /// (SIGTERM); once the lifecycle is forced (the drain deadline, or a
    /// second signal), those still alive are killed and counted as forced.
    /// Returns when no child is left.
    /// A child counts as forced when our kill ended it while it held a
    /// connection (`serving`): not one that exited on its own just before
    /// the deadline and was not reaped yet, nor an idle pool process.
    pub fn stop(&mut self, serving: impl Fn(&T) -> bool, mut ended: impl FnMut(i32, T, Ended)) {
        self.ask_all_to_drain();
        let mut killed = false;
        let mut forced = 0u64;
        while !self.live.is_empty() {
            if !killed && self.life.state() == State::Forced {
                killed = true;
                for pid in self.live.keys() {
                    let _ = process::kill(*pid, libc::SIGKILL);
                }
            }
            self.wait();
            self.tend(|pid, keep, how| {
                if killed && how == Ended::Signalled(libc::SIGKILL) && serving(&keep) {
                    forced += 1;
                }
                ended(pid, keep, how);
            });
        }
        self.life.forced.fetch_add(forced, Ordering::AcqRel);
    }
}

/// How often a child reports its figures (when they changed), so that
/// the parent's gauges (requests in progress, connections open) follow
/// the children closely.
const REPORT_EVERY: Duration = Duration::from_millis(20);

/// The longest an idle child waits between looks at its figures.
const IDLE_REPORT: Duration = Duration::from_secs(1);

/// A child's reporter, shared by its serving code and its signal thread.
pub type SharedReporter = Mutex<Reporter>;

/// Forks a child that runs `body` with its own engine lending and
/// lifecycle, counting into `shard` — its copy of the parent's shard for
/// its slot, so that the stats it answers include its own connection —
/// and relaying what changes through `outbox`; then it ends. The parent
/// gets the child's pid.
pub fn fork_child(
    shared: &Shared,
    outbox: &UnixDatagram,
    slot: usize,
    shards: &[Arc<WorkerMetrics>],
    mirror: Option<UnixDatagram>,
    body: impl FnOnce(&mut Lent, &SharedReporter),
) -> io::Result<i32> {
    let shard = shards.get(slot).ok_or(io::ErrorKind::InvalidInput)?;
    let parent = process::pid();
    match process::fork()? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            if !process::die_with_parent(parent) {
                process::exit_child(1);
            }
            let code = match outbox.try_clone() {
                Ok(tx) => {
                    let mirror = mirror.map(|m| (m, shards.to_vec()));
                    child(shared, tx, slot, shard.clone(), mirror, body)
                }
                Err(_) => 1,
            };
            process::exit_child(code)
        }
    }
}

/// A child's end of its mirror, and its copies of the parent's shards.
type MirrorEnd = (UnixDatagram, Vec<Arc<WorkerMetrics>>);

fn child(
    shared: &Shared,
    tx: UnixDatagram,
    slot: usize,
    shard: Arc<WorkerMetrics>,
    mirror: Option<MirrorEnd>,
    body: impl FnOnce(&mut Lent, &SharedReporter),
) -> i32 {
    let life = shared.life.clone();
    if mirror.is_some() {
        // A mirrored child shows its own process-wide counts beside its
        // siblings' shares (`relayed`); the totals it inherited from the
        // parent would count those shares twice.
        for c in shared.metrics.process.counters() {
            c.store(0, Ordering::Relaxed);
        }
    }
    let reporter = Arc::new(Mutex::new(Reporter::new(
        tx,
        slot,
        shard.clone(),
        life.clone(),
        shared.metrics.clone(),
    )));
    if watch(life, reporter.clone(), slot, mirror, shared.metrics.clone()).is_err() {
        return 1;
    }
    let mut lent = Lent::new(slot, shared.clone(), shard);
    // A panic must not unwind into the parent's code the child inherited.
    let served =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut lent, &reporter)));
    lock(&reporter).report();
    if served.is_ok() {
        0
    } else {
        1
    }
}

pub fn lock(reporter: &SharedReporter) -> std::sync::MutexGuard<'_, Reporter> {
    reporter.lock().unwrap_or_else(|p| p.into_inner())
}

/// The child's own thread: reports its figures every [`REPORT_EVERY`]
/// while they change (less often, down to [`IDLE_REPORT`], while idle), and turns the parent's signals into the child's
/// lifecycle: SIGTERM or SIGINT starts the child's drain (the parent may
/// send it twice: from its herald and when it stops accepting), SIGQUIT
/// forces it; the parent's own forced stop is SIGKILL.
fn watch(
    life: Arc<Lifecycle>,
    reporter: Arc<SharedReporter>,
    slot: usize,
    mirror: Option<MirrorEnd>,
    all: Arc<Metrics>,
) -> io::Result<()> {
    let signals = Signals::new()?;
    let poll = Poller::new()?;
    poll.add(&signals, 0, Interest::READ)?;
    if let Some((from, _)) = &mirror {
        from.set_nonblocking(true)?;
        poll.add(from, 1, Interest::READ)?;
    }
    let mut copies = Mirror::new();
    std::thread::Builder::new()
        .name("child-watch".into())
        .spawn(move || {
            let mut events = Events::with_capacity(2);
            // An idle child looks less often, up to once a second.
            let mut wait = REPORT_EVERY;
            loop {
                if poll.wait(&mut events, Some(wait)).is_err() {
                    return;
                }
                while let Ok(Some(sig)) = signals.next() {
                    match sig {
                        Sig::Hup => {}
                        Sig::Term | Sig::Int => life.advance(State::Draining),
                        Sig::Quit => life.advance(State::Forced),
                    }
                }
                if let Some((from, shards)) = &mirror {
                    copies.receive(from, shards, slot, &all.process);
                }
                wait = if lock(&reporter).report() {
                    REPORT_EVERY
                } else {
                    (wait * 2).min(IDLE_REPORT)
                };
            }
        })?;
    Ok(())
}
