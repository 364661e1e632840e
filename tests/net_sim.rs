//! The loss matrix: two instances of the userland stack move a file over
//! the deterministic simulator (`glasshouse::net::sim`) under loss,
//! reordering and duplication, and the bytes that arrive must be the bytes
//! sent (compared whole and by SipHash digest). Every run is seeded, so a
//! failure names a seed that replays it.

use std::hash::Hasher;

use glasshouse::net::sim::{Impairments, Rng, Sim};
use glasshouse::net::tcp::{State, TcpError};
use glasshouse::net::{Handle, Stack, StackConfig};
use siphasher::sip::SipHasher13;

fn digest(data: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_key(&[0; 16]);
    h.write(data);
    h.finish()
}

struct Run {
    received: Vec<u8>,
    retransmissions: u64,
    sim_ms: u64,
    /// Both stacks' STATUS at the end (A's, B's).
    views: [glasshouse::net::StackView; 2],
}

/// A (10.0.0.1) connects to B (10.0.0.2:80) and sends `file`, then closes;
/// B reads to the end and closes. `None` when the clock ran out.
fn transfer(file: &[u8], net: Impairments, seed: u64) -> Option<Run> {
    let mut a = Stack::new(StackConfig::new(
        "10.0.0.1".parse().unwrap(),
        seed.to_le_bytes().repeat(2).try_into().unwrap(),
    ));
    let mut bc = StackConfig::new("10.0.0.2".parse().unwrap(), [9; 16]);
    bc.tcp.recv_buffer = 64 * 1024;
    let mut b = Stack::new(bc);
    b.listen(80, 16);
    let ha = a.connect(0, "10.0.0.2:80".parse().unwrap());
    let mut sim = Sim::new(a, b, net, seed);
    let mut sent = 0;
    let mut closed_a = false;
    let mut hb: Option<Handle> = None;
    let mut received = Vec::new();
    let mut done_b = false;
    let mut buf = vec![0u8; 16 * 1024];
    let finished = sim.run_until(600_000, |sim| {
        let [a, b] = &mut sim.stacks;
        while sent < file.len() {
            match a.send(ha, &file[sent..]) {
                Ok(n) => sent += n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("seed {seed}: send: {e:?}"),
            }
        }
        if sent == file.len() && !closed_a && a.state(ha) == State::Established {
            a.close(ha);
            closed_a = true;
        }
        if hb.is_none() {
            hb = b.accept(80);
        }
        if let Some(h) = hb {
            loop {
                match b.recv(h, &mut buf) {
                    Ok(0) => {
                        if !done_b {
                            b.close(h);
                            done_b = true;
                        }
                        break;
                    }
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("seed {seed}: recv: {e:?}"),
                }
            }
        }
        done_b && matches!(a.state(ha), State::TimeWait | State::Closed)
    });
    let retransmissions = sim.stacks[0].status(ha).map_or(0, |s| s.retransmissions);
    let views = [sim.stacks[0].view(sim.now), sim.stacks[1].view(sim.now)];
    finished.then_some(Run {
        received,
        retransmissions,
        sim_ms: sim.now,
        views,
    })
}

fn file(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

#[test]
fn loss_matrix_moves_files_intact() {
    let data = file(256 * 1024, 1);
    let mut report = Vec::new();
    // B's out-of-order arrivals on links without and with reordering.
    let mut ooo_seen = [0u64; 2];
    for loss in [0, 10, 20, 50, 100] {
        for (reorder, duplicate) in [(0, 0), (100, 0), (0, 50), (100, 50)] {
            for seed in 1..=3u64 {
                let net = Impairments {
                    loss,
                    duplicate,
                    reorder,
                    reorder_by: 30,
                    delay: 5,
                };
                let run = transfer(&data, net, seed * 7919 + loss as u64)
                    .unwrap_or_else(|| panic!("loss {loss}‰ reorder {reorder}‰ dup {duplicate}‰ seed {seed}: did not finish"));
                assert_eq!(
                    run.received.len(),
                    data.len(),
                    "loss {loss}‰ seed {seed}: length"
                );
                assert_eq!(
                    digest(&run.received),
                    digest(&data),
                    "loss {loss}‰ seed {seed}: digest"
                );
                assert!(run.received == data);
                // The stacks' own totals agree with the connection's.
                let [va, vb] = &run.views;
                assert_eq!((va.counters.established, vb.counters.established), (1, 1));
                assert_eq!(va.retransmissions, run.retransmissions);
                ooo_seen[usize::from(reorder > 0)] += vb.out_of_order_segments;
                report.push((
                    loss,
                    reorder,
                    duplicate,
                    seed,
                    run.retransmissions,
                    run.sim_ms,
                ));
            }
        }
    }
    for loss in [10, 20, 50, 100] {
        let total: u64 = report.iter().filter(|r| r.0 == loss).map(|r| r.4).sum();
        assert!(
            total > 0,
            "loss {loss}‰ and not one retransmission in twelve runs?"
        );
    }
    assert!(ooo_seen[1] > 0, "reordering and no segment out of order?");
    for r in &report {
        eprintln!(
            "loss {}‰ reorder {}‰ dup {}‰ seed {}: {} retransmissions, {} ms simulated",
            r.0, r.1, r.2, r.3, r.4, r.5
        );
    }
}

#[test]
fn a_clean_link_needs_no_retransmission() {
    let data = file(1 << 20, 2);
    let run = transfer(&data, Impairments::clean(10), 5).expect("finishes");
    assert!(run.received == data);
    assert_eq!(run.retransmissions, 0);
    for v in &run.views {
        assert_eq!((v.retransmissions, v.out_of_order_segments), (0, 0));
        assert_eq!(v.counters.established, 1);
    }
}
