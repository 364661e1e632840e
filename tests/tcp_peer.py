"""A crafted TCP peer (scapy) against one target: glasshouse's userland
TCP/IP through its TUN device, or the kernel's TCP over a veth. The peer
speaks from an address no kernel owns (the shell script routes it into a
blackhole on the peer's side and, for a veth, pins its neighbour entry), so
only this program answers the target: segments go out through a raw IP
socket and the target's segments are read off the interface with an
AF_PACKET capture.

Each scenario opens a fresh connection on a port of its own and checks
what RFC 9293 and RFC 5961 require of the target. The verdicts are
printed as one JSON line per scenario, with what the target actually did,
so that tests/tcp_differential.sh can lay the two targets side by side.
The exit status is 1 if any scenario failed.

The scenarios come in two phases, picked by TCP_PEER_PHASE: `main`
(the default) against servers with their defaults, and `tuned` against
servers restarted with `--tcp-keepalive 1:1:2` and a 10 s least RTO (the
user stack's `--tcp-rto-min`, the kernel's route `rto_min`, with its tail
loss probes and RACK off), so that keep-alive probes come within a test
and a fast retransmit cannot be mistaken for a timeout.

Usage: tcp_peer.py NAME TARGET_IP PORT SRC_IP IFACE
"""

import json
import os
import random
import sys
import threading
import time

from scapy.config import conf
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.sendrecv import AsyncSniffer, send
from scapy.supersocket import L3RawSocket

conf.verb = 0
conf.L3socket = L3RawSocket

NAME, TARGET, PORT, SRC, IFACE = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
# Longest wait for a segment that should come (the target's RTO doubles
# from 200 ms to 1 s and beyond; a loaded CI machine adds its own delay).
PATIENCE = 8.0
PHASE = os.environ.get("TCP_PEER_PHASE", "main")

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


class Capture:
    """Every TCP segment the target sends to us, from the start of the run."""

    def __init__(self):
        self.segments = []
        self.cond = threading.Condition()
        self.sniffer = AsyncSniffer(iface=IFACE, store=False, prn=self._take)
        self.sniffer.start()
        time.sleep(0.5)

    def _take(self, pkt):
        ip = pkt.getlayer(IP)
        if ip is None or ip.src != TARGET or ip.dst != SRC or not ip.haslayer(TCP):
            return
        with self.cond:
            self.segments.append((time.monotonic(), ip[TCP]))
            self.cond.notify_all()

    def wait(self, sport, pred, since, timeout=PATIENCE):
        """The first segment to `sport` after index `since` that `pred`
        accepts, and its index; (None, None) when none came in time."""
        end = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.segments):
                    t, seg = self.segments[i]
                    if seg.dport == sport and pred(seg):
                        return seg, i
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    return None, None
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.segments)

    def since(self, sport, start):
        with self.cond:
            return [(t, s) for t, s in self.segments[start:] if s.dport == sport]


cap = Capture()
results = []
next_port = [random.randint(20000, 40000)]


class Conn:
    """One connection from us, opened with a handshake the scenario can shape."""

    def __init__(self, window=65535, options=None):
        next_port[0] += 1
        self.sport = next_port[0]
        self.seq = random.randint(1, 2**31)
        self.window = window
        mark = cap.mark()
        opts = options if options is not None else [("MSS", 1460), ("SAckOK", b""), ("WScale", 0)]
        self.tx(SYN, seq=self.seq, options=opts)
        synack, _ = cap.wait(self.sport, lambda s: s.flags & SYN and s.flags & ACK, mark)
        if synack is None:
            raise AssertionError("no SYN-ACK")
        self.synack = synack
        self.seq += 1
        self.ack = synack.seq + 1
        self.tx(ACK)

    def tx(self, flags, data=b"", seq=None, ack=None, window=None, options=None):
        tcp = TCP(
            sport=self.sport,
            dport=PORT,
            flags=flags,
            seq=self.seq if seq is None else seq,
            ack=(self.ack if ack is None else ack) if flags & ACK else 0,
            window=self.window if window is None else window,
            options=options or [],
        )
        pkt = IP(src=SRC, dst=TARGET) / tcp
        if data:
            pkt = pkt / Raw(data)
        send(pkt)

    def expect(self, pred, since, what, timeout=PATIENCE):
        seg, _ = cap.wait(self.sport, pred, since, timeout)
        if seg is None:
            raise AssertionError(f"no {what}")
        return seg

    def abort(self):
        self.tx(RST | ACK)

    def ack_fin(self, since):
        """Waits for the target's FIN (after capture index `since`) and
        acknowledges it."""
        fin = self.expect(lambda s: s.flags & FIN, since, "the server's FIN")
        self.ack = fin.seq + len(fin.payload) + 1
        self.tx(ACK)


def scenario(name, phase="main"):
    def wrap(fn):
        if phase != PHASE:
            return fn
        t0 = time.monotonic()
        try:
            saw = fn()
            results.append({"target": NAME, "scenario": name, "ok": True, "saw": saw or ""})
        except AssertionError as e:
            results.append({"target": NAME, "scenario": name, "ok": False, "saw": str(e)})
        except Exception as e:  # a broken scenario is a failure too, with its reason
            results.append({"target": NAME, "scenario": name, "ok": False, "saw": f"{type(e).__name__}: {e}"})
        results[-1]["seconds"] = round(time.monotonic() - t0, 2)
        print(json.dumps(results[-1]), flush=True)
        return fn

    return wrap


def opt(seg, name):
    for o in seg.options:
        if o[0] == name:
            return o[1]
    return None


@scenario("handshake: SYN-ACK acknowledges our SYN and offers MSS")
def _():
    c = Conn()
    s = c.synack
    assert s.ack == c.seq, f"SYN-ACK ack {s.ack}, want {c.seq}"
    assert opt(s, "MSS"), f"no MSS option in {s.options}"
    c.abort()
    return f"MSS {opt(s, 'MSS')}, SACK-permitted {'yes' if opt(s, 'SAckOK') is not None else 'no'}"


@scenario("out of order: a segment past a hole gets a duplicate ACK, the hole's filling acknowledges both")
def _():
    c = Conn()
    mark = cap.mark()
    # A request in two parts, the second first.
    c.tx(PSH | ACK, b"Host: x\r\n\r\n", seq=c.seq + 16)
    dup = c.expect(lambda s: s.flags & ACK and not s.flags & SYN, mark, "ACK of the out-of-order segment")
    assert dup.ack == c.seq, f"ack {dup.ack}, want {c.seq} (the hole)"
    sack = opt(dup, "SAck")
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET / HTTP/1.1\r\n")
    full = c.expect(lambda s: s.ack == c.seq + 16 + 11, mark, "ACK covering both segments")
    c.abort()
    return f"dup ACK at the hole{' with SACK ' + str(sack) if sack else ', no SACK block'}; then ack {full.ack - c.seq} bytes on"


@scenario("duplicate: a segment received twice is acknowledged again, no further")
def _():
    c = Conn()
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET /x")
    c.expect(lambda s: s.ack == c.seq + 6, mark, "ACK of the data")
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET /x")
    again = c.expect(lambda s: s.flags & ACK, mark, "ACK of the duplicate")
    assert again.ack == c.seq + 6, f"ack {again.ack}, want {c.seq + 6}"
    c.abort()
    return "re-ACKed at the same point"


@scenario("RST in the window, not at RCV.NXT: challenge ACK, connection kept (RFC 5961 §3.2)")
def _():
    c = Conn()
    mark = cap.mark()
    c.tx(RST, seq=c.seq + 100)
    ch = c.expect(lambda s: s.flags & ACK and not s.flags & RST, mark, "challenge ACK")
    assert ch.ack == c.seq, f"challenge ACK ack {ch.ack}, want {c.seq}"
    # Still open: data is acknowledged.
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET")
    c.expect(lambda s: s.ack == c.seq + 3, mark, "ACK after the challenge (connection kept)")
    c.abort()
    return "challenge ACK, then data still accepted"


@scenario("RST at RCV.NXT: the connection is gone (later data gets a reset)")
def _():
    c = Conn()
    c.tx(RST)
    time.sleep(0.3)
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET / HTTP/1.1\r\n\r\n")
    r = c.expect(lambda s: s.flags & RST, mark, "reset for data on the closed connection")
    return f"RST{'|ACK' if r.flags & ACK else ''}"


@scenario("RST outside the window: ignored")
def _():
    c = Conn()
    mark = cap.mark()
    c.tx(RST, seq=c.seq + 10_000_000)
    time.sleep(0.5)
    replies = [s for _, s in cap.since(c.sport, mark)]
    assert not any(s.flags & RST for s in replies), "answered a blind RST with a RST"
    mark = cap.mark()
    c.tx(PSH | ACK, b"GET")
    c.expect(lambda s: s.ack == c.seq + 3, mark, "ACK (connection kept)")
    c.abort()
    return f"{len(replies)} segment(s) in reply, connection kept"


def syn_is_challenged(offset):
    """A SYN `offset` bytes past RCV.NXT on an established connection: RFC
    5961 §4 answers any such SYN, in the window or not, with a challenge ACK."""
    c = Conn()
    mark = cap.mark()
    c.tx(SYN, seq=c.seq + offset)
    ch = c.expect(lambda s: s.flags & ACK, mark, "challenge ACK")
    assert not ch.flags & RST and not ch.flags & SYN, f"flags {ch.flags}"
    assert ch.ack == c.seq, f"ack {ch.ack}, want {c.seq}"
    c.abort()
    return "challenge ACK"


@scenario("SYN on an established connection: challenge ACK (RFC 5961 §4)")
def _():
    return syn_is_challenged(5)


@scenario("SYN outside the window on an established connection: challenge ACK too (RFC 5961 §4)")
def _():
    return syn_is_challenged(10_000_000)


@scenario("lost answer: retransmitted on timeout, the timeout doubling (RFC 6298 §5.5)")
def _():
    c = Conn()
    mark = cap.mark()
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    c.tx(PSH | ACK, req)
    c.seq += len(req)
    first = c.expect(lambda s: len(s.payload) > 0, mark, "the answer")
    # Never acknowledged: the same bytes must come again, later each time.
    # Five sendings: Linux sends its first again as a tail loss probe
    # (RFC 8985) before the retransmission timer runs.
    times = []
    i = mark
    while len(times) < 5:
        seg, j = cap.wait(c.sport, lambda s: len(s.payload) > 0 and s.seq == first.seq, i)
        if seg is None:
            break
        times.append(cap.segments[j][0])
        i = j + 1
    c.abort()
    assert len(times) >= 5, f"{len(times) - 1} retransmission(s) within the wait"
    gaps = [b - a for a, b in zip(times, times[1:])]
    shown = ", ".join(f"{g * 1000:.0f} ms" for g in gaps)
    # Backing off: the last two gaps each at least 1.5 times the one before.
    assert gaps[3] > 1.5 * gaps[2] and gaps[2] > 1.5 * gaps[1], f"gaps {shown}: the timeout did not back off"
    return "gaps " + shown


@scenario("zero window: the answer waits, window probes come, and it flows once the window opens")
def _():
    c = Conn(window=0)
    mark = cap.mark()
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    c.tx(PSH | ACK, req, window=0)
    c.seq += len(req)
    _, acked = cap.wait(c.sport, lambda s: s.ack == c.seq, mark)
    assert acked is not None, "no ACK of the request"
    # What comes next, unanswered by an open window, can only be probes.
    probes = []
    i = acked + 1
    while len(probes) < 2:
        seg, j = cap.wait(c.sport, lambda s: s.flags & ACK and len(s.payload) <= 1, i)
        if seg is None:
            break
        probes.append(seg)
        i = j + 1
    assert len(probes) >= 2, f"{len(probes)} probe(s)"
    sizes = sorted({len(p.payload) for p in probes})
    mark = cap.mark()
    c.tx(ACK, window=65535)
    c.expect(lambda s: b"HTTP/1.1 200" in bytes(s.payload), mark, "the answer once the window opened")
    c.abort()
    return f"{len(probes)} probes of {sizes} byte(s), then the answer"


@scenario("FIN from us in ESTABLISHED: acknowledged; the server's FIN follows (CLOSE-WAIT, LAST-ACK)")
def _():
    c = Conn()
    mark = cap.mark()
    c.tx(FIN | ACK)
    c.seq += 1
    c.expect(lambda s: s.ack == c.seq, mark, "ACK of our FIN")
    c.ack_fin(mark)
    return "FIN acknowledged, server's FIN followed"


def closing_answer(c):
    """Asks for an answer with `Connection: close`; the server's FIN that
    follows it (its ACK of our request included)."""
    mark = cap.mark()
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    c.tx(PSH | ACK, req)
    c.seq += len(req)
    return c.expect(lambda s: s.flags & FIN, mark, "the server's FIN after its answer")


@scenario("server closes first: FIN-WAIT, then TIME-WAIT re-acknowledges a retransmitted FIN")
def _():
    c = Conn()
    fin = closing_answer(c)
    c.ack = fin.seq + len(fin.payload) + 1
    mark = cap.mark()
    c.tx(FIN | ACK)
    c.expect(lambda s: s.ack == c.seq + 1 and s.flags & ACK, mark, "ACK of our FIN")
    # Our FIN again, as if that ACK was lost: TIME-WAIT answers it.
    mark = cap.mark()
    c.tx(FIN | ACK)
    again = c.expect(lambda s: s.flags & ACK, mark, "TIME-WAIT's ACK of the retransmitted FIN")
    assert again.ack == c.seq + 1 and not again.flags & RST, f"ack {again.ack} flags {again.flags}"
    return "TIME-WAIT re-ACKed"


@scenario("FIN with the handshake's last ACK (SYN-RECEIVED): acknowledged; the server's FIN follows")
def _():
    next_port[0] += 1
    c = Conn.__new__(Conn)
    c.sport, c.seq, c.window = next_port[0], random.randint(1, 2**31), 65535
    mark = cap.mark()
    c.tx(SYN, seq=c.seq, options=[("MSS", 1460)])
    synack = c.expect(lambda s: s.flags & SYN and s.flags & ACK, mark, "SYN-ACK")
    c.seq += 1
    c.ack = synack.seq + 1
    mark = cap.mark()
    c.tx(FIN | ACK)
    c.seq += 1
    c.expect(lambda s: s.ack == c.seq and not s.flags & RST, mark, "ACK of the FIN")
    c.ack_fin(mark)
    return "the handshake completed and the FIN was taken with it"


@scenario("our FIN again in CLOSE-WAIT or LAST-ACK: acknowledged again, no reset")
def _():
    c = Conn()
    first = mark = cap.mark()
    c.tx(FIN | ACK)
    c.expect(lambda s: s.ack == c.seq + 1, mark, "ACK of our FIN")
    # The server's FIN may or may not have come yet (CLOSE-WAIT or
    # LAST-ACK): either way it is not acknowledged, and our FIN comes again.
    mark = cap.mark()
    c.tx(FIN | ACK)
    again = c.expect(lambda s: s.flags & ACK, mark, "ACK of the retransmitted FIN")
    assert again.ack == c.seq + 1 and not again.flags & RST, f"ack {again.ack} flags {again.flags}"
    c.seq += 1
    c.ack_fin(first)
    return "re-ACKed, the server's FIN still to come or retransmitted"


@scenario("FINs crossing (FIN-WAIT-1 → CLOSING), our FIN again in CLOSING: ACKed each time, TIME-WAIT after")
def _():
    c = Conn()
    fin = closing_answer(c)
    end = fin.seq + len(fin.payload)
    # Our FIN acknowledges the answer but not the server's FIN: to the
    # server the FINs crossed.
    mark = cap.mark()
    c.tx(FIN | ACK, ack=end)
    ack = c.expect(lambda s: s.ack == c.seq + 1, mark, "ACK of our FIN in CLOSING")
    assert not ack.flags & RST, f"flags {ack.flags}"
    mark = cap.mark()
    c.tx(FIN | ACK, ack=end)
    again = c.expect(lambda s: s.ack == c.seq + 1, mark, "ACK of our FIN again in CLOSING")
    assert not again.flags & RST, f"flags {again.flags}"
    c.seq += 1
    c.ack = end + 1
    c.tx(ACK)
    return "ACKed in CLOSING, twice"


@scenario("keep-alive: an idle peer is probed at SND.NXT-1; answered, it is kept; unanswered, reset", "tuned")
def _():
    # The servers run with --tcp-keepalive 1:1:2 (idle 1 s, interval 1 s,
    # two probes).
    c = Conn()
    mark = cap.mark()
    is_probe = lambda s: s.flags == ACK and len(s.payload) == 0 and s.seq == (c.ack - 1) % 2**32
    first, i = cap.wait(c.sport, lambda s: True, mark)
    assert first is not None, "nothing sent to an idle peer"
    assert is_probe(first), f"flags {first.flags} seq {first.seq} (want {c.ack - 1}) len {len(first.payload)}"
    c.tx(ACK)
    # Answered: the next probe comes after a whole idle time; from then on
    # nothing answers, and after the probes a reset.
    unanswered = 0
    j = i + 1
    while True:
        seg, k = cap.wait(c.sport, lambda s: True, j)
        assert seg is not None, f"no reset after {unanswered} unanswered probe(s)"
        j = k + 1
        if seg.flags & RST:
            break
        assert is_probe(seg), f"flags {seg.flags} seq {seg.seq} len {len(seg.payload)}"
        unanswered += 1
        assert unanswered <= 4, "probing without end"
    assert seg.seq == c.ack, f"RST seq {seg.seq}, want SND.NXT {c.ack}"
    assert 1 <= unanswered <= 2, f"{unanswered} unanswered probes before the reset"
    return f"probe answered, then {unanswered} unanswered and RST{'|ACK' if seg.flags & ACK else ''}"


@scenario("duplicate ACKs: the hole is sent again long before the timeout, not after two", "tuned")
def _():
    # No SACK: NewReno's (and Linux's Reno) duplicate-ACK count alone.
    c = Conn(options=[("MSS", 1000), ("WScale", 0)])
    mark = cap.mark()
    req = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    c.tx(PSH | ACK, req)
    c.seq += len(req)
    data = lambda s: len(s.payload) > 0
    first, i = cap.wait(c.sport, data, mark)
    assert first is not None, "no answer"
    sent_at = cap.segments[i][0]
    # The first segment is "lost": the next four are acknowledged with
    # duplicates of an ACK at its start.
    j, later = i + 1, []
    while len(later) < 4:
        seg, k = cap.wait(c.sport, lambda s: data(s) and s.seq != first.seq, j)
        assert seg is not None, f"{len(later) + 1} segment(s) of the answer"
        later.append(seg)
        j = k + 1
    again = lambda s: data(s) and s.seq == first.seq
    c.ack = first.seq
    # Pure ACKs at the hole, one a second, until the hole comes again. To
    # RFC 5681 each is a duplicate; Linux takes the first as a window
    # update (it moves SND.WL1 past our request), so it needs a fourth.
    n, seg = 0, None
    while seg is None and n < 4:
        n += 1
        mark = cap.mark()
        c.tx(ACK)
        seg, k = cap.wait(c.sport, again, mark, timeout=1.0 if n < 4 else 4.0)
    assert seg is not None, f"not sent again after {n} duplicate ACKs"
    assert n >= 3, f"sent again after {n} duplicate ACK(s)"
    # The least RTO is 10 s: anything this early is the fast retransmit.
    gap = cap.segments[k][0] - sent_at
    assert gap < 8.0, f"sent again {gap:.1f} s after the original: the timeout's, not the ACKs'"
    c.abort()
    return f"the hole sent again after pure ACK {n}, {gap:.1f} s after the original (RTO 10 s)"


cap.sniffer.stop()
sys.exit(0 if all(r["ok"] for r in results) else 1)
