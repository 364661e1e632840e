"""Interop: glasshouse's WebSocket endpoints against an independent client,
PyPI's `websockets` (sync client), with and without permessage-deflate.

The server binary comes from $GLASSHOUSE_BIN, else target/release/glasshouse,
else target/debug/glasshouse (build one first: `cargo build --release`).
Each server is started on 127.0.0.1:0; its address is read from the
`listening on http://...` line on stderr. Every wait has a timeout.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect as ws_connect

import tls_mode


def connect(url, **kw):
    """websockets' client, over TLS (wss://, trusting the test CA) when the
    suites run over TLS."""
    if tls_mode.enabled():
        kw["ssl"] = tls_mode.context()
    return ws_connect(url, **kw)

REPO = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 20  # seconds, for any single wait

# Keys of the /api/stats document (docs/api.md).
STATS_KEYS = {
    "version", "state", "uptime_seconds", "timestamp_ms", "connections_open",
    "websockets_open", "requests_total", "requests_in_flight", "bytes_sent_total",
    "connections_rejected_total", "latency_ms", "workers",
}
WORKER_KEYS = {"id", "requests_total", "connections_open", "websockets_open"}


def binary():
    env = os.environ.get("GLASSHOUSE_BIN")
    candidates = [pathlib.Path(env)] if env else [
        REPO / "target" / "release" / "glasshouse",
        REPO / "target" / "debug" / "glasshouse",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    pytest.fail("no glasshouse binary: set GLASSHOUSE_BIN or run `cargo build --release`")


class Server:
    def __init__(self, *extra):
        self.root = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [str(binary()), "--listen", "127.0.0.1:0", "--workers", "2",
             "--log-format", "text", "--root", self.root.name, *tls_mode.server_args(), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )
        found = threading.Event()
        self.addr = None

        def drain():
            for line in self.proc.stderr:
                m = re.search(r"listening on https?://([0-9.]+:[0-9]+)", line)
                if m and not found.is_set():
                    self.addr = m.group(1)
                    found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(TIMEOUT):
            self.stop()
            pytest.fail("server did not report `listening on`")

    def url(self, path):
        return f"{tls_mode.scheme('ws')}://{self.addr}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        self.root.cleanup()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def small_server():
    s = Server("--ws-max-message", "65536")
    yield s
    s.stop()


def client(url, compression):
    return connect(url, compression=compression, max_size=None,
                   open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def negotiated(ws):
    return "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")


MESSAGES = {
    "text": "hello, glasshouse — ünïcödé ✓",
    "binary": bytes(range(256)) * 4,
    "empty-text": "",
    "large-text": "glasshouse " * 200_000,            # ~2.2 MB, compresses well
    "large-binary": os.urandom(3 << 20),             # 3 MiB, does not compress
}


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
@pytest.mark.parametrize("kind", list(MESSAGES))
def test_echo(server, compression, kind):
    msg = MESSAGES[kind]
    with client(server.url("/ws/echo"), compression) as ws:
        assert negotiated(ws) == (compression == "deflate")
        for _ in range(3):  # context takeover on the client side across messages
            ws.send(msg)
            got = ws.recv(timeout=TIMEOUT)
            assert type(got) is type(msg)
            assert got == msg


DEFLATE_OFFERS = {
    "window-9": dict(server_max_window_bits=9, client_max_window_bits=9),
    "no-context-takeover": dict(server_no_context_takeover=True, client_no_context_takeover=True),
    "client-window-offered": dict(server_max_window_bits=10, client_max_window_bits=True),
    # zlib cannot compress with an 8-bit window: the server may decline.
    "server-window-8": dict(server_max_window_bits=8),
}


@pytest.mark.parametrize("offer", list(DEFLATE_OFFERS))
def test_deflate_parameters(server, offer):
    factory = ClientPerMessageDeflateFactory(**DEFLATE_OFFERS[offer])
    with connect(server.url("/ws/echo"), extensions=[factory], compression=None,
                 max_size=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        if offer != "server-window-8":
            assert negotiated(ws)
        for msg in ["a" * 10, "hello " * 5000, bytes(range(256)) * 100, "x" * 70000, "hello " * 5000]:
            ws.send(msg)
            assert ws.recv(timeout=TIMEOUT) == msg


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
def test_fragmented_message_is_reassembled(server, compression):
    with client(server.url("/ws/echo"), compression) as ws:
        ws.send(iter(["frag", "men", "ted"]))
        assert ws.recv(timeout=TIMEOUT) == "fragmented"
        ws.send(iter([b"\x00\x01", b"\x02"]))
        assert ws.recv(timeout=TIMEOUT) == b"\x00\x01\x02"


def test_many_messages_in_flight(server):
    with client(server.url("/ws/echo"), "deflate") as ws:
        sent = [f"message {i}" for i in range(500)]
        for m in sent:
            ws.send(m)
        assert [ws.recv(timeout=TIMEOUT) for _ in sent] == sent


def test_ping_gets_pong(server):
    with client(server.url("/ws/echo"), None) as ws:
        assert ws.ping(b"payload").wait(TIMEOUT)


def test_stats_pushes_documented_json(server):
    with client(server.url("/ws/stats"), "deflate") as ws:
        docs = [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(2)]
    for doc in docs:
        assert STATS_KEYS <= set(doc), STATS_KEYS - set(doc)
        assert doc["state"] == "serving"
        assert doc["websockets_open"] >= 1
        assert isinstance(doc["workers"], list) and doc["workers"]
        for w in doc["workers"]:
            assert WORKER_KEYS <= set(w), WORKER_KEYS - set(w)
        assert doc["latency_ms"] is None or {"p50", "p90", "p99"} <= set(doc["latency_ms"])
    assert docs[1]["timestamp_ms"] >= docs[0]["timestamp_ms"]
    assert docs[1]["uptime_seconds"] >= docs[0]["uptime_seconds"]


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_client_close_code_is_echoed(server, code):
    with client(server.url("/ws/echo"), None) as ws:
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
        ws.close(code, "bye")
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == code


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
def test_too_big_closes_with_1009(small_server, compression):
    with client(small_server.url("/ws/echo"), compression) as ws:
        ws.send(b"a" * 1000)
        assert ws.recv(timeout=TIMEOUT) == b"a" * 1000
        # Compressed, 1 MiB of one byte is tiny on the wire: the limit is on
        # the inflated size.
        ws.send(b"a" * (1 << 20))
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=TIMEOUT)
    assert e.value.rcvd is not None and e.value.rcvd.code == 1009


def test_sigterm_closes_with_1001():
    s = Server()
    try:
        with client(s.url("/ws/echo"), "deflate") as ws:
            ws.send("before")
            assert ws.recv(timeout=TIMEOUT) == "before"
            s.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as e:
                ws.recv(timeout=TIMEOUT)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1001
        assert s.proc.wait(TIMEOUT) == 0
    finally:
        s.stop()
