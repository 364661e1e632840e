"""The Python client suites over glasshouse's own TCP/IP: with
GLASSHOUSE_TEST_STACK=user in the environment (make test-py-usertcp, root,
pytest run inside a network namespace of its own), every server the suites
start serves `--stack user` on a TUN device made for it in that namespace
(ghtN, the kernel at 10.78.N.1/24, the stack answering for 10.78.N.2:80),
so every client (http.client, urllib, curl, raw sockets) reaches it
through the kernel's TCP, which is the stack's peer. Without it, nothing
changes: servers listen on 127.0.0.1:0.
"""

import itertools
import os
import subprocess

_next = itertools.count()


def enabled():
    return os.environ.get("GLASSHOUSE_TEST_STACK") == "user"


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Link:
    """One server's TUN device and addresses; `close` removes the device."""

    def __init__(self):
        n = next(_next)
        if n > 250:
            raise RuntimeError("more user-stack servers than addresses")
        self.dev = f"ght{n}"
        self.host = f"10.78.{n}.2"
        _ip("tuntap", "add", "dev", self.dev, "mode", "tun")
        _ip("addr", "add", f"10.78.{n}.1/24", "dev", self.dev)
        _ip("link", "set", self.dev, "up")

    def args(self):
        return ["--stack", "user", "--link", f"tun:{self.dev}", "--listen", f"{self.host}:80"]

    def close(self):
        subprocess.run(["ip", "tuntap", "del", "dev", self.dev, "mode", "tun"],
                       capture_output=True, timeout=30)
