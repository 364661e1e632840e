//! The userland TCP/IP's figures as metric samples: one list of
//! (family, label value, value) read off the [`StackView`] its driver last
//! published, shared by `/metrics` and the OTLP export so that both say the
//! same. Without a user stack there is no view and no sample.

use super::catalogue::{self, MetricDef};
use crate::net::tcp::State;
use crate::net::StackView;

/// One sample: its family, its one label's value (`""` for a family
/// without labels) and the value.
pub type Sample = (&'static MetricDef, &'static str, f64);

/// The samples of `view`, family by family in catalogue order.
pub fn samples(view: &StackView) -> Vec<Sample> {
    use catalogue::*;
    let c = &view.counters;
    let mut out: Vec<Sample> = vec![
        (&TCP_PACKETS, "in", c.packets_in as f64),
        (&TCP_PACKETS, "out", c.packets_out as f64),
        (&TCP_DROPPED, "bad_ip", c.bad_ip as f64),
        (&TCP_DROPPED, "bad_tcp", c.bad_tcp as f64),
        (&TCP_DROPPED, "not_ours", c.not_ours as f64),
        (&TCP_DROPPED, "fragment", c.fragments_dropped as f64),
        (&TCP_DROPPED, "syn_queue_full", c.syn_dropped as f64),
        (&TCP_SENT_CONTROL, "rst", c.rst_sent as f64),
        (&TCP_SENT_CONTROL, "challenge_ack", c.challenge_acks as f64),
        (
            &TCP_SENT_CONTROL,
            "challenge_ack_suppressed",
            c.challenge_acks_suppressed as f64,
        ),
        (&TCP_SENT_CONTROL, "icmp_echo_reply", c.icmp_echo as f64),
        (
            &TCP_SENT_CONTROL,
            "icmp_unreachable",
            c.icmp_unreachable_sent as f64,
        ),
        (&TCP_RETRANSMISSIONS, "", view.retransmissions as f64),
        (&TCP_OUT_OF_ORDER, "", view.out_of_order_segments as f64),
        (&TCP_ESTABLISHED, "", c.established as f64),
    ];
    for s in State::ALL {
        let n = view.entered.get(s.name()).copied().unwrap_or(0);
        out.push((&TCP_TRANSITIONS, s.name(), n as f64));
    }
    for (def, spread) in [
        (&TCP_SRTT, view.srtt),
        (&TCP_RTO, view.rto),
        (&TCP_CWND, view.cwnd),
    ] {
        out.push((def, "min", spread.min));
        out.push((def, "mean", spread.mean));
        out.push((def, "max", spread.max));
    }
    // A listener is not a connection of the stack's table: LISTEN counts
    // the listening ports.
    for s in State::ALL {
        let n = match s {
            State::Listen => view.listeners.len(),
            _ => view.states.get(s.name()).copied().unwrap_or(0),
        };
        out.push((&TCP_CONNECTIONS, s.name(), n as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Stack, StackConfig};

    #[test]
    fn every_family_and_state_has_a_sample_and_the_counters_carry_over() {
        let mut stack = Stack::new(StackConfig::new("10.9.0.2".parse().unwrap(), [3; 16]));
        stack.listen(80, 8);
        stack.counters.packets_in = 7;
        stack.counters.syn_dropped = 2;
        let s = samples(&stack.view(0));
        let get = |def: &MetricDef, label: &str| {
            s.iter()
                .find(|(d, l, _)| d.name == def.name && *l == label)
                .map(|x| x.2 as u64)
        };
        assert_eq!(get(&catalogue::TCP_PACKETS, "in"), Some(7));
        assert_eq!(get(&catalogue::TCP_DROPPED, "syn_queue_full"), Some(2));
        assert_eq!(get(&catalogue::TCP_CONNECTIONS, "LISTEN"), Some(1));
        assert_eq!(get(&catalogue::TCP_CONNECTIONS, "ESTABLISHED"), Some(0));
        let families: std::collections::BTreeSet<_> = s.iter().map(|x| x.0.name).collect();
        let tcp_defs = catalogue::ALL
            .iter()
            .filter(|d| d.name.starts_with("glasshouse.tcp."))
            .count();
        assert_eq!(families.len(), tcp_defs, "every TCP family is sampled");
        let states = s
            .iter()
            .filter(|x| x.0.name == "glasshouse.tcp.connections")
            .count();
        assert_eq!(states, 11);
    }
}
