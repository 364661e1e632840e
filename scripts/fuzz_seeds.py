#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets head, chunked, ws_session,
inflate, static_path and ether_frame under fuzz/corpus/ (the engine's seeds
are kept by hand). Deterministic: running it again gives the same files.
Each seed starts with the selector bytes its target reads first (see the
check_* functions in src/http/invariants.rs, src/ws/invariants.rs,
src/service/static_files/invariants.rs and src/net/ether/invariants.rs).

The llhttp vectors in ../shared are not copied here; scripts/fuzz.sh
decodes them into a scratch corpus at run time."""
import hashlib
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus")


def write(target, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


HEADS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
    b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /api/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    # Framings implementations disagree on (the smuggling matrix's shapes).
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
]
for i, h in enumerate(HEADS):
    write("head", bytes([i * 37 % 256, 255]) + h)
    write("head", bytes([0xFF, 128]) + h)

CHUNKED = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
    b"5;name=value\r\nhello\r\n0\r\n\r\n",
    b'5;name="quoted \\" value"\r\nhello\r\n0\r\n\r\n',
    b"0\r\nTrailer: x\r\nOther: y\r\n\r\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"5\nhello\n0\n\n",
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"-1\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX0\r\n\r\n",
]
for i, c in enumerate(CHUNKED):
    write("chunked", bytes([20, i * 50 % 256, 200]) + c)
    write("chunked", bytes([3, 128, 1]) + c)

KEY = b"\x11\x22\x33\x44"


def frame(opcode, payload, fin=True, rsv1=False, mask=True):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    body = bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    return head + KEY + body


def deflate(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


SESSIONS = [
    frame(1, b"hello"),
    frame(2, bytes(range(256))),
    frame(1, b"hel", fin=False) + frame(9, b"ping") + frame(0, b"lo"),
    frame(8, struct.pack("!H", 1000) + b"bye"),
    frame(8, struct.pack("!H", 1005)),
    frame(1, b"\xff\xfe"),
    frame(1, b"x" * 300),
    frame(9, b"p" * 126),
    frame(1, b"unmasked", mask=False),
    frame(3, b"reserved"),
    frame(1, deflate(b"compressed " * 20), rsv1=True),
    frame(1, deflate(b"a" * 100000), rsv1=True),
    frame(2, b"\x00" * 70000),
]
for i, s in enumerate(SESSIONS):
    write("ws_session", bytes([0x41, 255]) + s)
    write("ws_session", bytes([0x10 | (i & 7), 7]) + s)

INFLATE = [
    deflate(b"hello hello hello hello"),
    deflate(b"\x00" * (1 << 20)),
    deflate(bytes(range(256)) * 16),
    zlib.compress(b"zlib framing, not raw"),
    b"\x03\x00",
    b"\xff" * 32,
]
for i, d in enumerate(INFLATE):
    write("inflate", bytes([19, 128]) + d)
    write("inflate", bytes([0x80 | 10, 40]) + d)

PATHS = [
    b"/", b"/index.html", b"/assets/app.3f2a.js", b"/a/b/../c", b"/%2e%2e/etc/passwd",
    b"/a%2fb", b"/a%5cb", b"/.env", b"/a/./b//c/", b"/%00", b"/caf%C3%A9.txt",
    b"/%ff", b"/a b", b"/..%2f..%2f", b"/%2E%2E%5C", b"//etc/passwd", b"/a/%2e/b",
]
for p in PATHS:
    write("static_path", p)

# The Ethernet interface (net::ether::invariants): a selector byte per
# step (0 raw frame, 1 ARP, 2 IPv4 to us, 3 a packet from the stack,
# 4 a clock jump, 5 an announcement), then the step's bytes.
WHO_HAS_US = (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01\x08\x06"
              + b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x02\x00\x00\x00\x00\x01" + bytes([10, 0, 0, 1])
              + b"\x00" * 6 + bytes([10, 0, 0, 2]) + b"\x00" * 18)
ETHER = [
    bytes([5]),
    bytes([0, len(WHO_HAS_US)]) + WHO_HAS_US,
    bytes([0, 13]) + WHO_HAS_US[:13],
    bytes([1, 0, 4, 2]),
    bytes([1, 1, 5, 2, 3, 5]),
    bytes([2, 4, 1, 3, 1]),
    bytes([3, 1, 3, 1, 3, 1, 3, 1, 4, 0, 100, 1, 1, 1, 2]),
    bytes([3, 3, 3, 4, 3, 5, 3, 6, 3, 7]),
    bytes([3, 1, 4, 0, 70, 4, 0, 70, 4, 0, 70, 4, 0, 70, 3, 1]),
    bytes([2, 8, 9, 3, 9, 4, 0xff, 0xff, 3, 9]),
    bytes([0, 60]) + b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01\x86\xdd" + b"\x60" * 46,
    bytes([1, 2, 10, 2, 1, 3, 10, 2, 3, 10]),
]
for e in ETHER:
    write("ether_frame", e)
