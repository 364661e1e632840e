"""REDbot (the HTTP resource linter) against the dynamic answers: health,
readiness, metrics and the API must not be storable by caches (issue 15:
REDbot used to find /healthz and /metrics heuristically cacheable, so a
proxy could serve a stale health check or stale metrics). Also lints a
file answer for an explicit freshness policy."""

import shutil
import subprocess

import pytest

from test_clients import Server, TIMEOUT


def redbot(url):
    exe = shutil.which("redbot")
    if exe is None:
        pytest.fail("redbot is not installed (tests/py/requirements.txt has it)")
    out = subprocess.run([exe, "-o", "text", url], capture_output=True,
                         timeout=TIMEOUT * 6)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/stats", "/api/config"])
def test_dynamic_answers_cannot_be_stored(server, path):
    report = redbot(server.base + path)
    assert "Cache-Control: no-store" in report, report
    assert "can't be stored by caches" in report, report
    assert "heuristic" not in report.lower(), report


def test_files_carry_their_own_policy(server):
    report = redbot(server.base + "/digits.txt")
    assert "Cache-Control: no-cache" in report, report
    assert "heuristic" not in report.lower(), report
