#!/usr/bin/env python3
"""Opens N keep-alive connections to a glasshouse server, sends one request on
each (so every connection has been through the request path), leaves them
idle, and prints the server's resident memory (VmRSS, VmHWM).

Usage: scripts/idle_conns.py --pid PID --port PORT [--n 10000] [--path /healthz]
Traffic goes to 127.0.0.1 only; the run is bounded by --n and --hold.
"""
import argparse
import resource
import selectors
import socket
import time


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to stay idle before measuring")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    before = rss_kib(a.pid)
    req = f"GET {a.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    socks = []
    sel = selectors.DefaultSelector()
    # Spread the source addresses over 127.0.0.0/8 so 10k connections never
    # run out of ephemeral ports on one address.
    for i in range(a.n):
        src = f"127.0.{1 + i // 250}.{1 + i % 250}"
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", a.port))
        s.sendall(req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    answered = 0
    deadline = time.time() + 60
    pending = set(socks)
    while pending and time.time() < deadline:
        for key, _ in sel.select(timeout=1):
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if data.startswith(b"HTTP/1.1 200") and key.fileobj in pending:
                pending.discard(key.fileobj)
                answered += 1
    time.sleep(a.hold)
    after = rss_kib(a.pid)
    print(f"connections: {a.n}, answered 200: {answered}")
    print(f"server RSS before: {before['VmRSS']} KiB, with {a.n} idle: {after['VmRSS']} KiB "
          f"({after['VmRSS'] / 1024:.1f} MiB), peak (VmHWM): {after['VmHWM']} KiB ({after['VmHWM'] / 1024:.1f} MiB)")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
