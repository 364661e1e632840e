"""HTTPS for the Python client suites: with GLASSHOUSE_TEST_TLS=1 in the
environment (make test-py-tls), every server the suites start serves HTTPS
with a certificate made at test time (openssl: a CA and a leaf for
127.0.0.1 and localhost), and every client (http.client, urllib, curl,
websockets, raw sockets) speaks TLS with Python's `ssl` trusting that CA.
Without it, everything is plain and this module adds nothing.
"""

import functools
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path


def enabled():
    return os.environ.get("GLASSHOUSE_TEST_TLS") == "1"


@functools.cache
def _pki():
    d = Path(tempfile.mkdtemp(prefix="glasshouse-py-pki-"))
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not installed: GLASSHOUSE_TEST_TLS=1 needs it")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "2",
        "-subj", "/CN=glasshouse test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(d / "key.pem"), "-out", str(d / "leaf.csr"), "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
        "-extfile", str(d / "ext.cnf"), "-out", str(d / "leaf.pem"))
    (d / "cert.pem").write_bytes((d / "leaf.pem").read_bytes() + (d / "ca.pem").read_bytes())
    return d


def server_args():
    """--tls-cert/--tls-key when the suites run over TLS."""
    if not enabled():
        return []
    d = _pki()
    return ["--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem")]


def ca_file():
    return str(_pki() / "ca.pem")


@functools.cache
def context():
    """A client context trusting the test CA (hostname checked), or None."""
    if not enabled():
        return None
    return ssl.create_default_context(cafile=ca_file())


def scheme(plain):
    """`http` → `https`, `ws` → `wss` when the suites run over TLS."""
    return plain + "s" if enabled() else plain


def curl_args():
    return ["--cacert", ca_file()] if enabled() else []


def wrap(sock):
    """A connected socket, with TLS over it when the suites run over TLS."""
    ctx = context()
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1") if ctx else sock
