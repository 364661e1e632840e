//! One connection served to its end with blocking calls, the way the
//! iterative, threaded and prethreaded models serve: read, let the engine
//! answer, write, until the engine says close. Every call is bounded by a
//! socket timeout — the engine's next deadline (head, idle, linger, a
//! held-back answer, a WebSocket ping) or [`TICK`], whichever is sooner —
//! so the engine's timeouts hold against a slow or silent client, and the
//! thread sees the lifecycle (drain, forced stop) within a tick.

use std::net::SocketAddr;
use std::time::Duration;

use super::driver::{step, Admission, Lent, Step};
use super::TICK;
use crate::reactor::State;
use crate::sys::socket::{would_block, Stream};

/// The shortest wait, so that a deadline that has just passed (and that
/// the engine has not moved yet) cannot make the loop spin.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Most engine steps taken over already-arrived input when a drain begins.
const CATCH_UP_STEPS: usize = 1024;

/// Serves `stream` until the engine closes it or a forced stop. The
/// admission is given back when this returns.
pub fn serve(
    lent: &mut Lent,
    scratch: &mut [u8],
    stream: Stream,
    peer: SocketAddr,
    admission: Admission,
) {
    let _admission = admission;
    lent.refresh();
    let Some(mut engine) = lent.connection(&stream, peer) else {
        return;
    };
    // The state this connection last acted on; a connection accepted in a
    // drain is told about it on the first turn, as the epoll drain does.
    let mut seen = State::Running;
    // The socket timeouts last set, to skip setsockopt when unchanged.
    let mut timeout: Option<Duration> = None;
    let forced = loop {
        lent.refresh();
        if lent.state != seen {
            seen = lent.state;
            match seen {
                State::Draining => {
                    // Whatever already arrived is a request we accepted:
                    // read it before the drain, which closes idle
                    // connections, can mistake this one for idle.
                    timeout = None;
                    if !catch_up(lent, scratch, &stream, &mut engine) {
                        break false;
                    }
                    lent.drain(&mut engine);
                }
                State::Forced => break true,
                State::Running => {}
            }
        }
        let now = lent.now;
        if engine.next_deadline().is_some_and(|d| d <= now) {
            engine.on_timer(&mut lent.env());
        }
        let wait = engine
            .next_deadline()
            .map_or(TICK, |d| d.saturating_duration_since(now).min(TICK))
            .max(MIN_WAIT);
        if timeout != Some(wait) {
            if stream.set_read_timeout(wait).is_err() || stream.set_write_timeout(wait).is_err() {
                break false;
            }
            timeout = Some(wait);
        }
        // Reads are done here rather than in `step`, to look at the
        // lifecycle between the read and the engine.
        let done = match step(&stream, &mut engine, &mut lent.env(), scratch, false) {
            Step::Idle if engine.wants_read(&lent.env()) => match stream.read(scratch) {
                Ok(n) => {
                    // The lifecycle again after the wait, before the bytes:
                    // a request that arrived after the drain began is
                    // answered as draining (`Connection: close`), as epoll
                    // answers what it reads in the wake-up of the signal.
                    lent.refresh();
                    let mut env = lent.env();
                    if n == 0 {
                        engine.receive_eof(&mut env);
                    } else {
                        engine.receive(&mut env, &scratch[..n]);
                    }
                    if lent.state != seen {
                        seen = lent.state;
                        match seen {
                            State::Draining => lent.drain(&mut engine),
                            State::Forced => break true,
                            State::Running => {}
                        }
                    }
                    false
                }
                Err(e) => !would_block(&e),
            },
            Step::Moved | Step::Read(_) => false,
            // The timeout passed: the next turn fires what is due and looks
            // at the lifecycle.
            Step::Blocked { .. } => false,
            // A held-back answer (or a WebSocket waiting for its tick) and
            // no input wanted: sleep to the engine's next deadline.
            Step::Idle => {
                std::thread::sleep(wait);
                false
            }
            Step::Close => true,
        };
        lent.collect_drained(&mut engine);
        if done {
            break false;
        }
    };
    super::driver::let_go(&stream, &engine);
    lent.close(engine, forced);
}

/// Steps the engine over what the socket already holds, without waiting:
/// both timeouts at their shortest, until nothing moves. False when the
/// connection must end.
fn catch_up(
    lent: &mut Lent,
    scratch: &mut [u8],
    stream: &Stream,
    engine: &mut crate::tls::Session<crate::telemetry::HttpObserver>,
) -> bool {
    let instant = Duration::from_micros(1);
    if stream.set_read_timeout(instant).is_err() || stream.set_write_timeout(instant).is_err() {
        return false;
    }
    // Bounded, for a client that keeps sending as fast as we answer.
    for _ in 0..CATCH_UP_STEPS {
        match step(stream, engine, &mut lent.env(), scratch, true) {
            Step::Moved | Step::Read(_) => {}
            Step::Blocked { .. } | Step::Idle => return true,
            Step::Close => return false,
        }
    }
    true
}
