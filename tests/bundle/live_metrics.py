#!/usr/bin/env python3
"""Live check: every metric name a Grafana dashboard queries is exported.

Starts glasshouse on 127.0.0.1 (free port, --max-connections 4), sends
traffic that touches every kind of series: static files, the JSON API (200,
400, 404), a slow request, a WebSocket echo (text + binary), and more
connections than --max-connections (503 refusals). Then fetches /metrics and
checks that every metric name used by a PromQL query in grafana/dashboards/
(panels, annotations, variables; parsed by check_bundle.py) has at least one
sample on the live /metrics, or is listed in tests/bundle/metrics-allowlist.tsv
with the reason it comes from elsewhere in the stack. Stops the server with
SIGTERM and expects exit 0.

Usage: live_metrics.py --repo REPO --bin GLASSHOUSE_BIN
Prints `ok   ...` / `FAIL ...` lines; exit 1 on any failure.
"""
import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import check_bundle as cb  # noqa: E402  (promql_metrics, dashboard_queries)

failures = 0


def ok(msg):
    print(f"ok   {msg}")


def fail(msg, detail=""):
    global failures
    failures += 1
    print(f"FAIL {msg}")
    if detail:
        print("      " + detail.rstrip().replace("\n", "\n      "))


def http(port, method, path, body=None, ctype=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ws_echo(port):
    """One WebSocket session on /ws/echo: a text and a binary message, then close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    buf = head.split(b"\r\n\r\n", 1)[1]

    def send(opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        s.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def recv():
        nonlocal buf
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("closed mid-frame")
            buf += chunk
        n = buf[1] & 0x7F
        op, payload, buf = buf[0] & 0x0F, buf[2:2 + n], buf[2 + n:]
        return op, payload

    got = []
    for opcode, payload in ((1, b'{"hello":"glasshouse"}'), (2, bytes(range(32)))):
        send(opcode, payload)
        got.append(recv() == (opcode, payload))
    send(8, b"\x03\xe8")  # close 1000
    try:
        recv()
    except RuntimeError:
        pass
    s.close()
    return all(got)


def refusals(port, n):
    """Opens n connections at once (more than --max-connections); returns how many got 503."""
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    time.sleep(0.3)
    got503 = 0
    for s in socks:
        try:
            s.settimeout(0.5)
            if s.recv(64).startswith(b"HTTP/1.1 503"):
                got503 += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    return got503


def allowlist(repo):
    names = {}
    for line in open(os.path.join(repo, "tests", "bundle", "metrics-allowlist.tsv")):
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.rstrip("\n").partition("\t")
            if not reason.strip():
                raise SystemExit(f"metrics-allowlist.tsv: {name} has no reason")
            names[name] = reason
    return names


def allowed(name, allow):
    return any(name == a or (a.endswith("*") and name.startswith(a[:-1])) for a in allow)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    cb.ROOT = os.path.abspath(args.repo)

    # Names the dashboards query.
    types = {d["uid"]: d["type"] for d in cb.datasources()}
    used = {}
    for f, text in cb.dashboards().items():
        for where, uid, q in cb.dashboard_queries(json.loads(text)):
            if q and types.get(uid) == "prometheus":
                for m in cb.promql_metrics(q):
                    used.setdefault(m, set()).add(f)
    if len(used) < 5:
        fail(f"only {len(used)} metric names found in the dashboards: parser out of date?")

    work = tempfile.mkdtemp(prefix="gh-live-metrics-")
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "assets"))
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>glasshouse</title>\n")
    with open(os.path.join(root, "assets", "app.js"), "w") as f:
        f.write("console.log('glasshouse');\n")
    log = open(os.path.join(work, "server.log"), "w+")
    env = {k: v for k, v in os.environ.items() if k not in ("OTEL_EXPORTER_OTLP_ENDPOINT", "RUST_LOG")}
    proc = subprocess.Popen([args.bin, "--listen", "127.0.0.1:0", "--root", root, "--workers", "2",
                             "--max-connections", "4", "--drain-timeout", "5"],
                            stderr=log, stdout=subprocess.DEVNULL, env=env)
    try:
        port = None
        for _ in range(100):
            log.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
            if m:
                port = int(m.group(1))
                break
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        if not port:
            log.seek(0)
            fail("glasshouse did not start", log.read())
            return 1

        statuses = [http(port, "GET", p)[0] for p in ("/", "/assets/app.js", "/api/stats", "/api/config",
                                                     "/healthz", "/readyz", "/api/slow?ms=50")]
        statuses.append(http(port, "POST", "/api/echo", b'{"a":1}', "application/json")[0])
        statuses.append(http(port, "POST", "/api/echo", b"{not json", "application/json")[0])
        statuses.append(http(port, "GET", "/no/such/file")[0])
        want = [200] * 8 + [400, 404]
        if statuses == want:
            ok(f"live metrics: HTTP traffic answered {statuses}")
        else:
            fail(f"live metrics: HTTP traffic answered {statuses}, want {want}")
        try:
            if ws_echo(port):
                ok("live metrics: WebSocket /ws/echo echoed a text and a binary message")
            else:
                fail("live metrics: WebSocket /ws/echo echo mismatch")
        except Exception as e:
            fail(f"live metrics: WebSocket /ws/echo: {e}")
        n503 = refusals(port, 10)
        if n503 > 0:
            ok(f"live metrics: {n503} of 10 simultaneous connections refused with 503 (--max-connections 4)")
        else:
            fail("live metrics: no 503 refusal over --max-connections")

        # The connections refusals() held are closed on our side, but the server
        # counts them open until its loop reads their EOF: until then another
        # connection is refused with 503 too, so ask again for a bounded time.
        for _ in range(50):
            status, body = http(port, "GET", "/metrics")
            if status != 503:
                break
            time.sleep(0.1)
        if status != 200:
            fail(f"live metrics: GET /metrics answered {status}", body.decode(errors="replace")[:300])
            return 1
        text = body.decode()
        exported = set()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                exported.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
        print(f"      /metrics: {len(exported)} metric names with samples; dashboards use {len(used)} names")

        allow = allowlist(args.repo)
        missing, via_allow = [], []
        for name in sorted(used):
            if name in exported:
                continue
            if allowed(name, allow):
                via_allow.append(name)
            else:
                missing.append(f"{name} (used in {', '.join(sorted(used[name]))})")
        if missing:
            fail("live metrics: dashboard metric names missing from the live /metrics and not allow-listed",
                 "\n".join(missing))
        else:
            ok(f"live metrics: all {len(used)} dashboard metric names are on the live /metrics "
               f"({len(used) - len(via_allow)}) or allow-listed ({', '.join(via_allow) or 'none'})")
        # The comparison itself notices a name that is neither exported nor allow-listed.
        if "glasshouse_no_such_metric" in exported or allowed("glasshouse_no_such_metric", allow):
            fail("live metrics: self-test: a made-up name passed the comparison")
        stale = [a for a in allow if not any(allowed(n, {a: 1}) for n in used) and not a.endswith("*")]
        if stale:
            print(f"      allow-list entries no dashboard uses (kept for reference): {', '.join(stale)}")
        shadow = [a for a in allow if a in exported]
        if shadow:
            fail("live metrics: allow-listed names glasshouse exports itself (remove them)", ", ".join(shadow))
        # The refusal and WebSocket counters moved, not only exist.
        values = {}
        for line in text.splitlines():
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)", line)
            if m:
                values[m.group(1)] = values.get(m.group(1), 0.0) + float(m.group(3))
        moved = {n: values.get(n, 0) for n in ("glasshouse_connections_rejected_total",
                                                "glasshouse_websocket_messages_total",
                                                "http_server_request_duration_seconds_count")}
        if all(v > 0 for v in moved.values()):
            ok("live metrics: counters moved: " + ", ".join(f"{k}={v:g}" for k, v in moved.items()))
        else:
            fail("live metrics: counters did not move: " + ", ".join(f"{k}={v:g}" for k, v in moved.items()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if rc == 0:
            ok("live metrics: glasshouse exited 0 after SIGTERM")
        else:
            fail(f"live metrics: glasshouse exited {rc} after SIGTERM")
        log.close()
        subprocess.run(["rm", "-rf", work])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
