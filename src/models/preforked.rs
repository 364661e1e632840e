//! `--model preforked`: the parent forks `--workers` children at start;
//! each runs the blocking accept loop on the one shared listener (the
//! kernel wakes one blocked `accept` per connection) and serves what it
//! accepted to its end before accepting again, like a pool thread of
//! `prethreaded` but in a process of its own. The parent accepts nothing:
//! it supervises. A child that dies while the server runs (a crash, a
//! signal) is reaped through SIGCHLD and replaced in its slot, so the pool
//! keeps its size. On SIGTERM the parent asks every child to drain (they
//! accept what was queued, finish, and exit), waits for them, and at the
//! drain deadline kills and counts those left. Each child's figures go to
//! the parent's shard of its slot ([`super::figures`]), and the parent
//! sends every child copies of all shards, so the stats a child answers
//! count its siblings' work too.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    for slot in 0..metrics.len() {
        start(&mut children, &listener, &shared, &metrics, &places, slot)?;
    }
    let bell = Arc::new(Bell::new()?);
    children.herald(bell.clone())?;
    let thread = std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            while life.state() == State::Running {
                children.wait();
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
                    tracing::warn!(pid, slot, how = %how, "worker process ended; starting another");
                    let started = start(&mut children, &listener, &shared, &metrics, &places, slot);
                    if let Err(e) = started {
                        tracing::warn!(slot, error = %e, "cannot start a worker process");
                    }
                }
                children.mirror();
            }
            // The children stop accepting when told to drain.
            listener_closed(&life);
            children.stop(|_, _, _| {});
        })?;
    // The herald waits on this bell; the supervisor sees the lifecycle at
    // its tick.
    Ok(vec![WorkerHandle { bell, thread }])
}

/// Forks the worker process of `slot`.
fn start(
    children: &mut Children<usize>,
    listener: &Arc<Listener>,
    shared: &Shared,
    shards: &[Arc<WorkerMetrics>],
    places: &SharedCounters,
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
            |lent, reporter| serve(lent, reporter, listener, places, slot),
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
