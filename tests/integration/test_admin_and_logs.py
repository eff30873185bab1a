"""Admin endpoints and the access log."""

import json
import re
import time

from client import Conn
from conftest import http_get


def test_healthz_and_readyz(gw):
    status, _, _ = http_get(gw.admin_port, "/healthz")
    assert status == 200
    status, _, _ = http_get(gw.admin_port, "/readyz")
    assert status == 200


def _metric(text: str, name: str, labels: str) -> float | None:
    m = re.search(r"^" + re.escape(name) + re.escape(labels) + r"\s+([0-9.eE+-]+)\s*$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_count_requests(gw, echo):
    status, headers, body = http_get(gw.admin_port, "/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain"), headers
    before = _metric(body.decode(), "ringway_requests_total", '{code="2xx"}') or 0.0
    before_4xx = _metric(body.decode(), "ringway_requests_total", '{code="4xx"}') or 0.0
    with Conn(gw.port) as c:
        for i in range(3):
            assert c.request("GET", f"/api/users/{i}").status == 200
        assert c.request("GET", "/nowhere").status == 404
    deadline = time.monotonic() + 5
    while True:  # per-worker shards may be published with a short delay
        text = http_get(gw.admin_port, "/metrics")[2].decode()
        now = _metric(text, "ringway_requests_total", '{code="2xx"}')
        now_4xx = _metric(text, "ringway_requests_total", '{code="4xx"}')
        if (now is not None and now >= before + 3 and now_4xx is not None and now_4xx >= before_4xx + 1) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert now is not None, text[:2000]
    assert now - before == 3, (before, now)
    assert now_4xx - before_4xx == 1, (before_4xx, now_4xx)
    # Prometheus text format: every sample line is "name{labels} value"
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([0-9.eE+-]+|NaN|[+-]Inf)( -?\d+)?$", line), line


def test_admin_unknown_path_404(gw):
    status, _, _ = http_get(gw.admin_port, "/no-such-admin-page")
    assert status == 404


def _log_lines(path, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if path.exists():
            lines = [l for l in path.read_text().splitlines() if l.strip()]
            if len(lines) >= n:
                break
        time.sleep(0.05)
    return lines


def test_access_log_json_lines(gw, echo):
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/a?b=1").status == 200
        assert c.request("POST", "/api/users/p", body=b"12345").status == 200
        assert c.request("GET", "/nowhere").status == 404
    lines = _log_lines(gw.access_log, 3)
    assert len(lines) == 3, lines
    recs = [json.loads(l) for l in lines]
    keys = {"time", "client", "method", "path", "status", "bytes_out", "duration_ms", "upstream",
            "upstream_ms"}
    for r in recs:
        assert keys <= set(r), r
    by_path = {r["path"].split("?")[0]: r for r in recs}
    assert by_path["/api/users/a"]["method"] == "GET" and by_path["/api/users/a"]["status"] == 200
    assert by_path["/api/users/p"]["method"] == "POST"
    assert by_path["/nowhere"]["status"] == 404
    assert str(echo.port) in str(by_path["/api/users/a"]["upstream"])
    assert by_path["/api/users/a"]["bytes_out"] > 0
    assert "127.0.0.1" in str(by_path["/api/users/a"]["client"])


def test_access_log_escapes_hostile_path(gw, echo):
    with Conn(gw.port) as c:
        assert c.request("GET", '/api/users/q?x="quoted"\\back').status == 200
    lines = _log_lines(gw.access_log, 1)
    assert len(lines) == 1
    assert "quoted" in json.loads(lines[0])["path"]
