#!/usr/bin/env python3
"""The soak: a long run of mixed load against one server, sampling what
must stay flat. `make soak` (30 minutes; not in CI) or
  python3 scripts/soak.py BIN [--minutes N] [--out DIR]

Load, all at once until the end: wrk on a 1 KiB and a 100 KiB file
(keep-alive), wrk with `Connection: close` on /healthz, WebSocket echo
clients that reconnect every 50 messages, slow requests (/api/slow),
refused bad requests (malformed heads, oversized targets, bodies over the
limit). Every 10 s: RSS, open descriptors, threads, open connections and
requests served (from /metrics). At the end the server gets SIGTERM and
must exit 0. Writes soak.tsv, soak.png and soak.svg to --out and prints
the summary table for docs/benchmarks.md."""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"listening on http://([0-9.]+):(\d+)")


def start(binary, root):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--root", root, "--workers", "2",
                             "--log-level", "info", "--max-body", "4096"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = READY.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, int(m.group(2))
    sys.exit("server did not start")


def proc_sample(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds, threads


def metric(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def loop_until(end, fn):
    def run():
        while time.time() < end:
            try:
                fn()
            except OSError:
                time.sleep(0.05)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def raw(port, data, read=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if read:
            while s.recv(65536):
                pass


def ws_client(port):
    from websockets.sync.client import connect
    with connect(f"ws://127.0.0.1:{port}/ws/echo", open_timeout=10) as ws:
        for i in range(50):
            ws.send(f"soak {i}")
            ws.recv(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--out", default=str(REPO / "bench-out" / "soak"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="glasshouse-soak-")
    Path(root, "1k.txt").write_bytes(b"x" * 1024)
    Path(root, "100k.bin").write_bytes(os.urandom(100 * 1024))
    proc, port = start(args.binary, root)
    secs = int(args.minutes * 60)
    end = time.time() + secs
    base = f"http://127.0.0.1:{port}"
    close_lua = REPO.parent / "shared" / "bench" / "close.lua"
    wrks = [
        subprocess.Popen(["wrk", "-t1", "-c32", f"-d{secs}s", f"{base}/1k.txt"], stdout=subprocess.DEVNULL),
        subprocess.Popen(["wrk", "-t1", "-c8", f"-d{secs}s", f"{base}/100k.bin"], stdout=subprocess.DEVNULL),
        subprocess.Popen(["wrk", "-t1", "-c4", f"-d{secs}s", "-s", str(close_lua), f"{base}/healthz"],
                         stdout=subprocess.DEVNULL),
    ]
    for _ in range(4):
        loop_until(end, lambda: ws_client(port))
    for _ in range(4):
        loop_until(end, lambda: urllib.request.urlopen(f"{base}/api/slow?ms=500", timeout=10).read())
    bad = [b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
           b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999\r\n\r\n"]
    loop_until(end, lambda: [raw(port, b) for b in bad] and time.sleep(0.01))

    rows = []
    started = time.time()
    while True:
        now = time.time()
        text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        rss, fds, threads = proc_sample(proc.pid)
        rows.append((round(now - started), rss, fds, threads,
                     int(metric(text, "glasshouse_connections_open")),
                     int(metric(text, "glasshouse_worker_requests_total"))))
        print("\t".join(map(str, rows[-1])), flush=True)
        if now >= end:
            break
        time.sleep(min(10, max(0.1, end - time.time())))
    for w in wrks:
        w.wait(timeout=60)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)

    header = ("t_s", "rss_kib", "fds", "threads", "connections_open", "requests")
    with open(out / "soak.tsv", "w") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
        t = [r[0] / 60 for r in rows]
        axes[0].plot(t, [r[1] / 1024 for r in rows]); axes[0].set_ylabel("RSS MiB")
        axes[1].plot(t, [r[2] for r in rows], label="descriptors")
        axes[1].plot(t, [r[4] for r in rows], label="connections"); axes[1].legend()
        axes[2].plot(t, [r[5] / 1e6 for r in rows]); axes[2].set_ylabel("requests (M)")
        axes[2].set_xlabel("minutes")
        fig.suptitle("glasshouse soak: mixed load")
        for ext in ("png", "svg"):
            fig.savefig(out / f"soak.{ext}")
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)", file=sys.stderr)

    first, last = rows[1] if len(rows) > 1 else rows[0], rows[-1]
    print()
    print("| figure | after warm-up | end | maximum |")
    print("|---|---|---|---|")
    print(f"| RSS (MiB) | {first[1]/1024:.1f} | {last[1]/1024:.1f} | {max(r[1] for r in rows)/1024:.1f} |")
    print(f"| open descriptors | {first[2]} | {last[2]} | {max(r[2] for r in rows)} |")
    print(f"| threads | {first[3]} | {last[3]} | {max(r[3] for r in rows)} |")
    print(f"\nrequests served: {last[5]:,} in {args.minutes:g} min; exit status after SIGTERM: {code}")
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()
