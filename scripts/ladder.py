#!/usr/bin/env python3
"""The architecture ladder: every --model against the same wrk load at each
concurrency, one fresh server per point. Records req/s, p50/p99 latency,
errors (socket errors and non-2xx answers), peak RSS of the server's whole
process tree, the server's CPU seconds and context switches (its own and
its reaped children's, from wait4's rusage) and both per request served
into a TSV, then draws the plot (ladder_plot.py). A model written
`prethreaded:queue` runs `--model prethreaded --prethreaded-accept queue`.

Usage: ladder.py --bin BIN --out DIR [--models a,b] [--conc 20,50] [--dur 10]
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

ALL_MODELS = "iterative,forking,preforked,threaded,prethreaded,prethreaded:queue,poll,epoll,io_uring"
ALL_CONC = "20,50,100,200,500,1000,2000,5000,10000"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tree_rss_kib(root):
    """Sum of VmRSS over root and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            kids.setdefault(int(rest[1]), []).append(int(d))
        except (OSError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(text):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))

    def conv(v):
        if v is None:
            return float("nan")
        n, u = re.match(r"([\d.]+)(\w+)", v).groups()
        return ms(n, u)

    return (float(rps.group(1)) if rps else 0.0, conv(lat.get("50")), conv(lat.get("99")), errors,
            int(total.group(1)) if total else 0)


def point(args, spec, conc):
    port = free_port()
    model, _, feed = spec.partition(":")
    workers = args.pool if model in ("prethreaded", "preforked") else args.workers
    cmd = [args.bin, "--model", model, "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
           "--max-connections", str(max(conc * 2, 20000)), "--log-level", "warn", "--root", args.root,
           "--drain-timeout", "5"] + (["--prethreaded-accept", feed] if feed else [])
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kib(server.pid))
            done.wait(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = min(args.threads, conc)
    wrk = subprocess.run(["wrk", "-t", str(threads), "-c", str(conc), "-d", f"{args.dur}s",
                          "--timeout", "2s", "--latency", f"http://127.0.0.1:{port}{args.path}"],
                         capture_output=True, text=True, timeout=args.dur + 60)
    done.set()
    sampler.join()
    server.send_signal(signal.SIGTERM)
    try:
        _, status, usage = os.wait4(server.pid, 0)
    except ChildProcessError:
        usage = None
    # wait4 reaped it: tell Popen not to.
    server.returncode = 0
    cpu = usage.ru_utime + usage.ru_stime if usage else float("nan")
    csw = usage.ru_nvcsw + usage.ru_nivcsw if usage else 0
    rps, p50, p99, errors, total = parse_wrk(wrk.stdout)
    per = max(total, 1)
    return rps, p50, p99, errors, peak[0] / 1024.0, cpu, cpu * 1e6 / per, csw / per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=ALL_MODELS)
    ap.add_argument("--conc", default=ALL_CONC)
    ap.add_argument("--dur", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--root", default="frontend/dist")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tsv = os.path.join(args.out, "ladder.tsv")
    with open(tsv, "w") as f:
        f.write("model\tconcurrency\treq_per_s\tp50_ms\tp99_ms\terrors\tpeak_rss_mib\tcpu_s"
                "\tcpu_us_per_req\tcsw_per_req\n")
        for model in args.models.split(","):
            for conc in [int(c) for c in args.conc.split(",")]:
                rps, p50, p99, errors, rss, cpu, cpu_req, csw_req = point(args, model, conc)
                row = (f"{model}\t{conc}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{errors}\t{rss:.1f}\t{cpu:.2f}"
                       f"\t{cpu_req:.1f}\t{csw_req:.3f}")
                print(row, flush=True)
                f.write(row + "\n")
                f.flush()
    print(f"wrote {tsv}", file=sys.stderr)


if __name__ == "__main__":
    main()
