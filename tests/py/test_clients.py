"""Real clients against the real server: Python's http.client and urllib,
and curl. The server binary comes from $GLASSHOUSE_BIN (default
target/debug/glasshouse, relative to the repository root); each test module
run starts one server on 127.0.0.1:0 with a temporary --root (over HTTPS
with GLASSHOUSE_TEST_TLS=1, tls_mode.py; over the userland TCP/IP on a TUN
device with GLASSHOUSE_TEST_STACK=user, stack_mode.py).

Run: python3 -m pytest tests/py/test_clients.py -q
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import stack_mode
import tls_mode

REPO = Path(__file__).resolve().parents[2]
DIGITS = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
READY = re.compile(r"listening on https?://([0-9.]+):(\d+)")
TIMEOUT = 10


def binary():
    path = Path(os.environ.get("GLASSHOUSE_BIN", "target/debug/glasshouse"))
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"server binary not found at {path}; build it or set GLASSHOUSE_BIN")
    return str(path)


class Server:
    """The server process; stderr is drained by a thread into `log`."""

    def __init__(self, *args):
        self.root = tempfile.mkdtemp(prefix="glasshouse-py-")
        Path(self.root, "index.html").write_text("<!doctype html><title>t</title>\n")
        Path(self.root, "digits.txt").write_bytes(DIGITS)
        self.link = stack_mode.Link() if stack_mode.enabled() else None
        where = self.link.args() if self.link else ["--listen", "127.0.0.1:0", "--workers", "2"]
        cmd = [binary(), *where,
               "--log-format", "json", "--root", self.root, *tls_mode.server_args(), *args]
        env = {k: v for k, v in os.environ.items()
               if k not in ("RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        self.log = []
        self.host = "127.0.0.1"
        self.port = None
        ready = threading.Event()

        def drain():
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                self.log.append(line)
                m = READY.search(line)
                if m and self.port is None:
                    self.host = m.group(1)
                    self.port = int(m.group(2))
                    ready.set()
            ready.set()

        self.thread = threading.Thread(target=drain, daemon=True)
        self.thread.start()
        if not ready.wait(TIMEOUT) or self.port is None:
            self.stop()
            pytest.fail("server did not print its ready line:\n" + "".join(self.log))

    @property
    def base(self):
        return f"{tls_mode.scheme('http')}://{self.host}:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.link:
            self.link.close()
            self.link = None


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


def connection(server, **kw):
    """http.client to the server, over TLS when the suites run over TLS."""
    ctx = tls_mode.context()
    if ctx:
        return http.client.HTTPSConnection(server.host, server.port, timeout=TIMEOUT, context=ctx, **kw)
    return http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT, **kw)


def test_connections_are_tls_exactly_when_the_suite_runs_over_tls(server):
    conn = connection(server)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    assert (conn.sock.version() is not None if tls_mode.enabled() else not hasattr(conn.sock, "version"))
    conn.close()
    assert any(("listening on https://" if tls_mode.enabled() else "listening on http://") in l
               for l in server.log)


def curl(*args):
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/deps.sh installs it)")
    out = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), *tls_mode.curl_args(), *args],
                         capture_output=True, timeout=TIMEOUT + 5)
    assert out.returncode == 0, out.stderr.decode()
    return out


def test_http_client_reuses_one_keep_alive_connection(server):
    conn = connection(server)
    conn.connect()
    sock = conn.sock
    for _ in range(3):
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert r.status == 200
        assert json.loads(r.read()) == {"status": "ok"}
        assert not r.will_close
    # Still the same socket: http.client reconnects silently otherwise.
    assert conn.sock is sock
    conn.close()


def test_http_client_chunked_upload_to_echo(server):
    conn = connection(server)
    parts = [b'{"items": [', b"1, 2, 3", b'], "name": "chunked"}']
    conn.request("POST", "/api/echo", body=iter(parts),
                 headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, body
    assert body == b"".join(parts)
    assert r.getheader("Content-Type").startswith("application/json")
    # The connection is still in sync afterwards.
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert r.status == 200
    r.read()
    conn.close()


def test_urllib_json_errors(server):
    with urllib.request.urlopen(server.base + "/healthz", timeout=TIMEOUT, context=tls_mode.context()) as r:
        assert r.status == 200
        assert r.headers["Server"].startswith("glasshouse")
        assert r.headers["Date"]
    req = urllib.request.Request(server.base + "/api/echo", data=b"{nope",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=TIMEOUT, context=tls_mode.context())
    assert e.value.code == 400
    assert "error" in json.loads(e.value.read())
    req = urllib.request.Request(server.base + "/api/echo", data=b"{}",
                                 headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=TIMEOUT, context=tls_mode.context())
    assert e.value.code == 415


def test_curl_http10(server):
    out = curl("--http1.0", "-i", server.base + "/healthz")
    text = out.stdout.decode()
    assert re.match(r"HTTP/1\.[01] 200 ", text), text
    assert text.endswith('{"status":"ok"}'), text


def test_curl_head(server):
    out = curl("-I", server.base + "/digits.txt")
    text = out.stdout.decode()
    assert text.startswith("HTTP/1.1 200 "), text
    headers = dict(
        (k.strip().lower(), v.strip())
        for k, v in (line.split(":", 1) for line in text.split("\r\n")[1:] if ":" in line)
    )
    assert headers["content-length"] == str(len(DIGITS)), text
    assert "etag" in headers and "last-modified" in headers, text


def test_curl_range_request(server):
    out = curl("-i", "-H", "Range: bytes=0-9", server.base + "/digits.txt")
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    head = head.decode()
    assert head.startswith("HTTP/1.1 206 "), head
    assert re.search(r"(?im)^content-range: bytes 0-9/%d\r?$" % len(DIGITS), head), head
    assert body == DIGITS[:10]


def test_curl_keep_alive_across_urls(server):
    # curl reuses the connection for two URLs on one command line.
    out = curl("-v", "-o", "/dev/null", "-o", "/dev/null",
               server.base + "/healthz", server.base + "/readyz")
    err = out.stderr.decode()
    assert re.search(r"(?i)re-?using (existing )?connection", err), err


def test_graceful_stop_exits_0():
    s = Server()
    try:
        with urllib.request.urlopen(s.base + "/readyz", timeout=TIMEOUT, context=tls_mode.context()) as r:
            assert r.status == 200
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(TIMEOUT) == 0
    finally:
        s.stop()


def _hold(server, source="127.0.0.1"):
    """A keep-alive connection from `source` after one request: (socket,
    status); status 0 when the server closed it before answering (under
    HTTPS a refused connection is closed before its handshake: there is
    no plaintext answer a TLS client could read)."""
    raw = socket.create_connection((server.host, server.port), timeout=TIMEOUT,
                                   source_address=(source, 0))
    try:
        s = tls_mode.wrap(raw)
    except (ssl.SSLError, ConnectionResetError):
        return raw, 0
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return s, status


@pytest.mark.skipif(os.environ.get("GLASSHOUSE_MODEL") in ("iterative", "prethreaded", "preforked"),
                    reason="serves one connection at a time, or as many as --workers (2); "
                           "preforked refuses --max-connections-per-client at start")
@pytest.mark.skipif(stack_mode.enabled(),
                    reason="needs three client addresses on the loopback; over the user stack "
                           "the kernel has one address on each TUN")
def test_one_client_address_is_capped_and_others_are_not():
    s = Server("--max-connections-per-client", "2")
    held = []
    try:
        for _ in range(2):
            c, status = _hold(s)
            assert status == 200
            held.append(c)
        c, status = _hold(s)
        refused = 0 if tls_mode.enabled() else 429
        assert status == refused, "a third connection from the same address"
        c.close()
        # Another address on the loopback is its own client.
        c, status = _hold(s, source="127.0.0.2")
        assert status == 200
        held.append(c)
        # A place given back is free again.
        held.pop(0).close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            c, status = _hold(s)
            if status == 200 or time.monotonic() > deadline:
                break
            c.close()
            time.sleep(0.05)
        assert status == 200
        held.append(c)
        # From a third address: 127.0.0.1 holds its two places.
        conn = connection(s, source_address=("127.0.0.3", 0))
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        assert 'glasshouse_limit_refusals_total{limit="connections_per_client"} ' in text
        line = next(l for l in text.splitlines()
                    if l.startswith('glasshouse_limit_refusals_total{limit="connections_per_client"}'))
        assert float(line.split()[-1]) >= 1
    finally:
        for c in held:
            c.close()
        s.stop()
