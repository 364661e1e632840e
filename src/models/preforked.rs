//! `--model preforked`: the parent forks `--workers` children at start;
//! each runs the blocking accept loop on the one shared listener (the
//! kernel wakes one blocked `accept` per connection) and serves what it
//! accepted to its end before accepting again, like a pool thread of
//! `prethreaded` but in a process of its own. The parent accepts nothing:
//! it supervises. A child that dies while the server runs (a crash, a
//! signal) is reaped through SIGCHLD and replaced in its slot, so the pool
//! keeps its size. On SIGTERM the parent asks every child to drain (they
//! accept what was queued, finish, and exit), waits for them, and at the
//! drain deadline kills and counts those left. A reload (SIGHUP) replaces
//! the children the way nginx replaces its workers: each is asked to
//! drain, finishes what it accepted and ends, and its successor forks
//! with the new configuration (a child holds what it forked with).
//!
//! Each child's figures go to the parent's shard of its slot ([`super::figures`]), and the parent
//! sends every child copies of all shards, so the stats a child answers
//! count its siblings' work too. The pool is up before the server says
//! it listens: each child says so once it is about to accept, and
//! [`spawn`] waits for all of them (bounded), so that no connection made
//! right after start-up waits in the backlog, unaccepted and uncounted,
//! while the pool is still being forked.

use std::collections::HashSet;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::{refuse, Admission, Lent, SCRATCH};
use super::processes::{fork_child, lock, Children, SharedReporter};
use super::{accept, blocking, listener_closed, Done, Shared};
use crate::reactor::{State, WorkerHandle};
use crate::sys::eventfd::Bell;
use crate::sys::process::{Ended, SharedCounters};
use crate::sys::socket::Listener;
use crate::telemetry::WorkerMetrics;

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    accept::blocking(&listener)?;
    shared.life.share_state_with_children()?;
    // `--max-connections` across the worker processes: counter 0 is the
    // connections being served, counter 1 + slot whether that slot's
    // process holds one (so the parent can give back the place of a
    // process that died holding it).
    let places = Arc::new(SharedCounters::new(1 + metrics.len())?);
    let mut children: Children<usize> =
        Children::new(metrics.clone(), shared.life.clone(), shared.metrics.clone())?;
    let (ready, up) = UnixDatagram::pair()?;
    for slot in 0..metrics.len() {
        start(
            &mut children,
            &listener,
            &shared,
            &metrics,
            &places,
            &up,
            slot,
        )?;
    }
    wait_ready(&ready, metrics.len());
    // Children forked from now on say they are up into a closed socket.
    drop((ready, up));
    // A replacement's word that it is up is not awaited.
    let (_, up_later) = UnixDatagram::pair()?;
    let bell = Arc::new(Bell::new()?);
    children.herald(bell.clone())?;
    let thread = std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            let mut generation = shared.cfg.settings.generation();
            // Worker processes asked to end for a reload.
            let mut retiring = HashSet::new();
            let mut replacing = false;
            while life.state() == State::Running {
                children.wait();
                if shared.cfg.settings.generation() != generation {
                    generation = shared.cfg.settings.generation();
                    retiring.extend(children.ask_all_to_drain());
                    replacing = true;
                    tracing::info!(
                        workers = retiring.len(),
                        "SIGHUP: replacing the worker processes, which finish what they accepted, so that their successors fork with the new configuration"
                    );
                }
                let mut ended = Vec::new();
                children.tend(|pid, slot, how| ended.push((pid, slot, how)));
                for (pid, slot, how) in ended {
                    give_back(&places, slot);
                    if life.state() != State::Running {
                        break;
                    }
                    let how = match how {
                        Ended::Exited(code) => format!("exited with {code}"),
                        Ended::Signalled(sig) => format!("killed by signal {sig}"),
                    };
                    if retiring.remove(&pid) {
                        tracing::debug!(pid, slot, how = %how, "worker process retired; starting its successor");
                    } else {
                        tracing::warn!(pid, slot, how = %how, "worker process ended; starting another");
                    }
                    let started = start(
                        &mut children,
                        &listener,
                        &shared,
                        &metrics,
                        &places,
                        &up_later,
                        slot,
                    );
                    if let Err(e) = started {
                        tracing::warn!(slot, error = %e, "cannot start a worker process");
                    }
                }
                if replacing && retiring.is_empty() {
                    replacing = false;
                    tracing::info!("SIGHUP: every worker process replaced");
                }
                children.mirror();
            }
            // The children stop accepting when told to drain.
            listener_closed(&life);
            children.stop(|&slot| places.get(1 + slot).load(Ordering::Acquire) == 1, |_, _, _| {});
        })?;
    // The herald waits on this bell; the supervisor sees the lifecycle at
    // its tick.
    Ok(vec![WorkerHandle { bell, thread }])
}

/// The longest start-up waits for the pool to be up: past it the server
/// starts with what came up, and says so.
const POOL_START: Duration = Duration::from_secs(30);

/// Waits until `n` children said they are up on `ready`, or [`POOL_START`].
fn wait_ready(ready: &UnixDatagram, n: usize) {
    let end = Instant::now() + POOL_START;
    let mut up = 0;
    let mut byte = [0u8; 1];
    while up < n {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || ready.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match ready.recv(&mut byte) {
            Ok(_) => up += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if up < n {
        tracing::warn!(up, workers = n, "not every worker process came up in time");
    }
}

/// Forks the worker process of `slot`, which says on `up` when it is
/// about to accept.
fn start(
    children: &mut Children<usize>,
    listener: &Arc<Listener>,
    shared: &Shared,
    shards: &[Arc<WorkerMetrics>],
    places: &SharedCounters,
    up: &UnixDatagram,
    slot: usize,
) -> io::Result<i32> {
    let outbox = children.outbox.try_clone()?;
    children.fork_mirrored(slot, |mirror| {
        fork_child(
            shared,
            &outbox,
            slot,
            shards,
            Some(mirror),
            |lent, reporter| {
                // Nobody may be listening (a replacement): not an error.
                let _ = up.send(&[1]);
                serve(lent, reporter, listener, places, slot)
            },
        )
    })
}

/// The place `slot`'s process held, if it held one.
fn give_back(places: &SharedCounters, slot: usize) {
    if places.get(1 + slot).swap(0, Ordering::AcqRel) == 1 {
        places.get(0).fetch_sub(1, Ordering::AcqRel);
    }
}

/// A worker process's life: accept, serve to the end, report, again.
fn serve(
    lent: &mut Lent,
    reporter: &SharedReporter,
    listener: &Listener,
    places: &SharedCounters,
    slot: usize,
) {
    let life = lent.life().clone();
    let mut scratch = vec![0; SCRATCH];
    let shard = lent.metrics().clone();
    accept::run(listener, &life, slot, &shard, |stream, peer| {
        let max = lent.max_connections();
        if places.get(0).fetch_add(1, Ordering::AcqRel) >= max {
            places.get(0).fetch_sub(1, Ordering::AcqRel);
            refuse(&stream, lent.metrics());
            return;
        }
        places.get(1 + slot).store(1, Ordering::Release);
        // One connection at a time in this process: the local place always
        // comes.
        let admission = Admission::accounted(&life);
        lock(reporter).announce();
        blocking::serve(lent, &mut scratch, stream, peer, admission);
        // The place first, then the report that the connection closed: who
        // sees it closed in the figures finds its place free.
        give_back(places, slot);
        lock(reporter).report();
    });
}
