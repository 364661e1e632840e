//! The userland TCP/IP's figures as metric samples: one list of
//! (family, label value, value) read off the [`StackView`] its driver last
//! published, shared by `/metrics` and the OTLP export so that both say the
//! same. Without a user stack there is no view and no sample; on a link of
//! bare IP packets (TUN) there are no Ethernet or ARP families.

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
    if let Some(l) = &view.link {
        let (f, a) = (&l.frames, &l.neighbours);
        for (kind, n) in [
            ("ipv4", f.ipv4_in),
            ("arp", f.arp_in),
            ("malformed", f.malformed),
            ("other_host", f.other_host),
            ("other_ethertype", f.other_ethertype),
        ] {
            out.push((&TCP_LINK_FRAMES, kind, n as f64));
        }
        for (event, n) in [
            ("request_sent", f.arp_requests_sent),
            ("reply_sent", f.arp_replies_sent),
            ("conflict", f.arp_conflicts),
            ("learned", a.learned),
            ("expired", a.expired),
            ("failed", a.failed),
            ("table_full", a.table_full),
            ("packet_dropped", a.dropped),
        ] {
            out.push((&TCP_ARP, event, n as f64));
        }
        out.push((&TCP_ARP_TABLE, "entries", l.entries as f64));
        out.push((&TCP_ARP_TABLE, "held", l.held as f64));
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
    use crate::net::ether::EtherView;
    use crate::net::{Stack, StackConfig};
    use catalogue::{TCP_ARP, TCP_ARP_TABLE, TCP_LINK_FRAMES};

    #[test]
    fn every_family_and_state_has_a_sample_and_the_counters_carry_over() {
        let mut stack = Stack::new(StackConfig::new("10.9.0.2".parse().unwrap(), [3; 16]));
        stack.listen(80, 8);
        stack.counters.packets_in = 7;
        stack.counters.syn_dropped = 2;
        let mut view = stack.view(0);
        assert!(
            samples(&view).iter().all(|x| x.0.name != TCP_ARP.name),
            "no ARP without an Ethernet link"
        );
        let mut link = EtherView::default();
        link.frames.ipv4_in = 5;
        link.frames.arp_replies_sent = 1;
        link.neighbours.learned = 3;
        link.held = 2;
        view.link = Some(link);
        let s = samples(&view);
        let get = |def: &MetricDef, label: &str| {
            s.iter()
                .find(|(d, l, _)| d.name == def.name && *l == label)
                .map(|x| x.2 as u64)
        };
        assert_eq!(get(&catalogue::TCP_PACKETS, "in"), Some(7));
        assert_eq!(get(&catalogue::TCP_DROPPED, "syn_queue_full"), Some(2));
        assert_eq!(get(&catalogue::TCP_CONNECTIONS, "LISTEN"), Some(1));
        assert_eq!(get(&catalogue::TCP_CONNECTIONS, "ESTABLISHED"), Some(0));
        assert_eq!(get(&TCP_LINK_FRAMES, "ipv4"), Some(5));
        assert_eq!(get(&TCP_ARP, "reply_sent"), Some(1));
        assert_eq!(get(&TCP_ARP, "learned"), Some(3));
        assert_eq!(get(&TCP_ARP_TABLE, "held"), Some(2));
        // One family's samples side by side, as /metrics groups them.
        let mut seen = Vec::new();
        for x in &s {
            if seen.last() != Some(&x.0.name) {
                assert!(!seen.contains(&x.0.name), "{} split", x.0.name);
                seen.push(x.0.name);
            }
        }
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
