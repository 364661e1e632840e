//! `--model forking`: the parent accepts with blocking calls and forks a
//! child per connection, which serves it to its end and exits; the parent
//! closes its copy of the connection at once. Children are reaped through
//! SIGCHLD (a signalfd) with `waitpid(-1, WNOHANG)` in a loop, between
//! accepts and at every accept tick. `--max-connections` caps the live
//! children: a connection over the cap is answered with the engine's 503
//! by the parent and closed, as in the other models. On SIGTERM the parent
//! stops accepting (after the connections already queued), asks every
//! child to drain, waits for them, and at the drain deadline kills and
//! counts those left. Figures reach the parent as [`super::figures`] says.

use std::io;
use std::sync::Arc;

use super::driver::{Admission, Lent, SCRATCH};
use super::processes::{fork_child, lock, Children, SharedReporter};
use super::{accept, blocking, Done, Shared};
use crate::live::Current;
use crate::reactor::WorkerHandle;
use crate::sys::eventfd::Bell;
use crate::sys::socket::Listener;
use crate::telemetry::WorkerMetrics;

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    accept::blocking(&listener)?;
    shared.life.share_state_with_children()?;
    let shards = metrics.clone();
    let mut children: Children<Admission> =
        Children::new(metrics, shared.life.clone(), shared.metrics.clone())?;
    let bell = Arc::new(Bell::new()?);
    children.herald(bell.clone())?;
    let thread = std::thread::Builder::new()
        .name("forker".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            // `--max-connections` as the last reload left it.
            let mut settings = Current::new(&shared.cfg.settings);
            let children = std::cell::RefCell::new(&mut children);
            accept::run_tending(
                &listener,
                &life,
                0,
                &shards[0].clone(),
                |stream, peer| {
                    let mut children = children.borrow_mut();
                    // Places of children that ended are given back first.
                    children.tend(|_, _, _| {});
                    settings.refresh(&shared.cfg.settings);
                    let max = settings.max_connections;
                    let Some(admission) =
                        Admission::take(&life, max, &stream, peer.ip(), &shards[0])
                    else {
                        return;
                    };
                    let outbox = children.outbox.try_clone();
                    let serve = move |lent: &mut Lent, reporter: &SharedReporter| {
                        lock(reporter).announce();
                        let mut scratch = vec![0; SCRATCH];
                        let mine = Admission::accounted(lent.life());
                        blocking::serve(lent, &mut scratch, stream, peer, mine);
                    };
                    let forked = outbox.and_then(|outbox| {
                        children.fork(admission, || {
                            fork_child(&shared, &outbox, 0, &shards, None, serve)
                        })
                    });
                    if let Err(e) = forked {
                        tracing::warn!(error = %e, "fork failed; connection closed");
                    }
                    // The parent's copy of the connection closes here.
                },
                || children.borrow_mut().tend(|_, _, _| {}),
            );
            // Every child of this model serves the connection it was forked for.
            children.borrow_mut().stop(|_| true, |_, _, _| {});
        })?;
    // The herald waits on this bell; the forker sees the lifecycle at its tick.
    Ok(vec![WorkerHandle { bell, thread }])
}
