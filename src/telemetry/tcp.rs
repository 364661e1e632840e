//! The userland TCP/IP's figures as metric samples: one list of
//! (family, label value, value) read off the [`StackView`] its driver last
//! published, shared by `/metrics` and the OTLP export so that both say the
//! same. Without a user stack there is no view and no sample.

use super::catalogue::{self, MetricDef};
use crate::net::tcp::State;
use crate::net::StackView;

/// One sample: its family, its one label's value (`""` for a family
/// without labels) and the value.
pub type Sample = (&'static MetricDef, &'static str, u64);

/// The samples of `view`, family by family in catalogue order.
pub fn samples(view: &StackView) -> Vec<Sample> {
    use catalogue::*;
    let c = &view.counters;
    let mut out: Vec<Sample> = vec![
        (&TCP_PACKETS, "in", c.packets_in),
        (&TCP_PACKETS, "out", c.packets_out),
        (&TCP_DROPPED, "bad_ip", c.bad_ip),
        (&TCP_DROPPED, "bad_tcp", c.bad_tcp),
        (&TCP_DROPPED, "not_ours", c.not_ours),
        (&TCP_DROPPED, "fragment", c.fragments_dropped),
        (&TCP_DROPPED, "syn_queue_full", c.syn_dropped),
        (&TCP_SENT_CONTROL, "rst", c.rst_sent),
        (&TCP_SENT_CONTROL, "challenge_ack", c.challenge_acks),
        (
            &TCP_SENT_CONTROL,
            "challenge_ack_suppressed",
            c.challenge_acks_suppressed,
        ),
        (&TCP_SENT_CONTROL, "icmp_echo_reply", c.icmp_echo),
        (
            &TCP_SENT_CONTROL,
            "icmp_unreachable",
            c.icmp_unreachable_sent,
        ),
        (&TCP_RETRANSMISSIONS, "", view.retransmissions),
        (&TCP_OUT_OF_ORDER, "", view.out_of_order_segments),
        (&TCP_ESTABLISHED, "", c.established),
    ];
    for s in State::ALL {
        let n = view.entered.get(s.name()).copied().unwrap_or(0);
        out.push((&TCP_TRANSITIONS, s.name(), n));
    }
    // A listener is not a connection of the stack's table: LISTEN counts
    // the listening ports.
    for s in State::ALL {
        let n = match s {
            State::Listen => view.listeners.len(),
            _ => view.states.get(s.name()).copied().unwrap_or(0),
        };
        out.push((&TCP_CONNECTIONS, s.name(), n as u64));
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
                .map(|x| x.2)
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
