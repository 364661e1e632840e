"""The smuggling matrix: request framings on which HTTP/1.1 implementations
are known to disagree, each sent to glasshouse, to h11 (PyPI) and to Node's
llhttp in strict mode, and compared with what RFC 9112 requires.

Each case names what the RFC asks of a server: `accept` (with the body it
must read), `reject` (a 4xx/5xx and close), or `either` (the RFC allows both;
glasshouse's choice is given). glasshouse must do what the RFC asks; h11's
and llhttp's outcomes are recorded in the table too, so that a change in any
of the three shows here. docs/smuggling.md explains every disagreement.

Outcomes: `accept:BODY` (the request was read with that body) or `reject`.
Run: python3 -m pytest tests/py/test_smuggling.py -q
"""

import os
import socket
import subprocess
from pathlib import Path

import h11
import pytest

from test_clients import Server, TIMEOUT

HERE = Path(__file__).resolve().parent
B = b"[1,2]"  # a JSON body: glasshouse's /api/echo wants JSON
CHUNKED = b"5\r\n[1,2]\r\n0\r\n\r\n"
JSON = b"Content-Type: application/json\r\n"


def post(fields, body, target=b"/api/echo", version=b"HTTP/1.1", host=b"Host: a\r\n"):
    return b"POST " + target + b" " + version + b"\r\n" + host + JSON + fields + b"\r\n" + body


# (name, request, RFC 9112 says, glasshouse, h11, llhttp strict)
CASES = [
    ("cl_plain", post(b"Content-Length: 5\r\n", B), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("cl_plus_sign", post(b"Content-Length: +5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_minus_sign", post(b"Content-Length: -5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_leading_zeros", post(b"Content-Length: 005\r\n", B), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("cl_hex", post(b"Content-Length: 0x5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_space_inside", post(b"Content-Length: 5 5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_ows_around", post(b"Content-Length:  5 \r\n", B), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("cl_list_same", post(b"Content-Length: 5, 5\r\n", B), "either", "accept:[1,2]", "accept:[1,2]", "reject"),
    ("cl_list_conflict", post(b"Content-Length: 5, 6\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_duplicate_same", post(b"Content-Length: 5\r\nContent-Length: 5\r\n", B), "either", "accept:[1,2]", "accept:[1,2]", "reject"),
    ("cl_duplicate_conflict", post(b"Content-Length: 5\r\nContent-Length: 6\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("cl_overflow", post(b"Content-Length: 99999999999999999999999\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("te_chunked", post(b"Transfer-Encoding: chunked\r\n", CHUNKED), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("te_and_cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", CHUNKED), "either", "reject:400", "accept:[1,2]", "reject"),
    ("te_uppercase", post(b"Transfer-Encoding: CHUNKED\r\n", CHUNKED), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("te_tab_before_value", post(b"Transfer-Encoding:\tchunked\r\n", CHUNKED), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("te_space_before_colon", post(b"Transfer-Encoding : chunked\r\n", CHUNKED), "reject", "reject:400", "reject", "reject"),
    ("te_obs_fold", post(b"X-A: b\r\n Transfer-Encoding: chunked\r\n", CHUNKED), "either", "reject:400", "accept:", "reject"),
    ("te_not_final", post(b"Transfer-Encoding: chunked, identity\r\n", CHUNKED), "reject", "reject:400", "reject", "reject"),
    ("te_gzip_then_chunked", post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED), "reject", "reject:501", "reject", "accept:[1,2]"),
    ("te_unknown", post(b"Transfer-Encoding: xchunked\r\n", CHUNKED), "reject", "reject:501", "reject", "reject"),
    ("te_duplicate", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED), "reject", "reject:400", "reject", "reject"),
    ("te_http10", post(b"Transfer-Encoding: chunked\r\n", CHUNKED, version=b"HTTP/1.0"), "either", "reject:400", "accept:[1,2]", "accept:[1,2]"),
    ("chunk_size_overflow", post(b"Transfer-Encoding: chunked\r\n", b"fffffffffffffffffffff\r\n[1,2]\r\n0\r\n\r\n"), "reject", "reject:400", "reject", "reject"),
    ("chunk_size_leading_space", post(b"Transfer-Encoding: chunked\r\n", b" 5\r\n[1,2]\r\n0\r\n\r\n"), "reject", "reject:400", "reject", "reject"),
    ("chunk_size_bare_lf", post(b"Transfer-Encoding: chunked\r\n", b"5\n[1,2]\r\n0\r\n\r\n"), "reject", "reject:400", "reject", "reject"),
    ("chunk_data_bare_lf", post(b"Transfer-Encoding: chunked\r\n", b"5\r\n[1,2]\n0\r\n\r\n"), "reject", "reject:400", "reject", "reject"),
    ("chunk_ext_bare_cr", post(b"Transfer-Encoding: chunked\r\n", b"5;a\rb\r\n[1,2]\r\n0\r\n\r\n"), "reject", "reject:400", "accept:[1,2]", "reject"),
    ("chunk_ext_quoted", post(b"Transfer-Encoding: chunked\r\n", b'5;a="b c"\r\n[1,2]\r\n0\r\n\r\n'), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
    ("trailer_bare_lf", post(b"Transfer-Encoding: chunked\r\n", b"5\r\n[1,2]\r\n0\r\nX: y\nZ: w\r\n\r\n"), "reject", "reject:400", "accept:[1,2]", "reject"),
    ("head_bare_lf", b"POST /api/echo HTTP/1.1\nHost: a\n" + JSON + b"Content-Length: 5\r\n\r\n" + B, "either", "reject:400", "accept:[1,2]", "reject"),
    ("nul_in_value", post(b"X-A: b\x00c\r\nContent-Length: 5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("ctl_in_name", post(b"X\x01A: b\r\nContent-Length: 5\r\n", B), "reject", "reject:400", "reject", "reject"),
    ("missing_host", post(b"Content-Length: 5\r\n", B, host=b""), "reject", "reject:400", "reject", "reject"),
    ("duplicate_host", post(b"Host: b\r\nContent-Length: 5\r\n", B), "reject", "reject:400", "reject", "accept:[1,2]"),
    ("absolute_form_other_host", post(b"Content-Length: 5\r\n", B, target=b"http://b/api/echo"), "accept", "accept:[1,2]", "accept:[1,2]", "accept:[1,2]"),
]


def read_answer(sock):
    """Reads one response (status, body) or None if the connection ended."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return status, rest[:length]


def outcome_over_socket(port, request, status=False):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock)
    if answer is None:
        return "reject:closed" if status else "reject"
    code, body = answer
    if code == 200:
        return "accept:" + body.decode("latin-1")
    return f"reject:{code}" if status else "reject"


def outcome_h11(request):
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(request)
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "reject"  # never completed: a framing it could not end
            if isinstance(event, h11.Data):
                body += event.data
            if isinstance(event, h11.EndOfMessage):
                return "accept:" + body.decode("latin-1")
    except h11.RemoteProtocolError:
        return "reject"


@pytest.fixture(scope="module")
def glasshouse():
    s = Server()
    yield s.port
    s.stop()


@pytest.fixture(scope="module")
def llhttp():
    node = subprocess.Popen(["node", str(HERE / "llhttp_echo.js")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(node.stdout.readline())
    yield port
    node.stdin.close()
    node.wait(TIMEOUT)


@pytest.mark.parametrize("name,request_bytes,rfc,ours,h11_says,llhttp_says", CASES,
                         ids=[c[0] for c in CASES])
def test_framing(glasshouse, llhttp, name, request_bytes, rfc, ours, h11_says, llhttp_says):
    got = outcome_over_socket(glasshouse, request_bytes, status=True)
    # What RFC 9112 allows, first: glasshouse must keep to it.
    if rfc == "accept":
        assert got.startswith("accept:"), f"{name}: RFC 9112 requires accepting it, glasshouse: {got}"
    elif rfc == "reject":
        assert got.startswith("reject:"), f"{name}: RFC 9112 requires refusing it, glasshouse: {got}"
    # Then the whole row, so a change in any of the three is seen.
    row = (got, outcome_h11(request_bytes), outcome_over_socket(llhttp, request_bytes))
    assert row == (ours, h11_says, llhttp_says), f"{name}: (glasshouse, h11, llhttp) = {row}"
