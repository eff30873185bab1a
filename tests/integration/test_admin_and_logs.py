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


def test_access_log_that_cannot_keep_up_drops_and_counts(gateway, echo, tmp_path):
    # The log is a FIFO nobody reads: once the pipe and the worker's 1 MiB buffer are full, lines
    # are dropped (the loop never blocks on the log) and counted in /metrics; requests still work.
    import os
    import threading
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the gateway's open does not block
    stop_draining = threading.Event()

    def drain():
        while not stop_draining.is_set():
            try:
                if not os.read(reader, 1 << 16):
                    time.sleep(0.01)
            except BlockingIOError:
                time.sleep(0.01)

    gw = gateway(routes=[("/api/", echo)], threads=1, access_log=False,
                 args=["--access-log", str(fifo)])
    drainer = threading.Thread(target=drain, daemon=True)
    try:
        long_target = "/api/" + "x" * 400  # ~0.6 KiB lines: the buffer fills in ~2,000 requests
        request = f"GET {long_target} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
        with Conn(gw.port, timeout=30) as c:
            for _ in range(40):
                c.send(request * 100)
                for _ in range(100):
                    assert c.read_response().status == 200
        status, _, body = http_get(gw.admin_port, "/metrics")
        assert status == 200
        m = re.search(rb"ringway_access_log_dropped_total (\d+)", body)
        assert m and int(m.group(1)) > 0, body
    finally:
        drainer.start()  # let the blocked write finish so the gateway can drain and exit
        problems = gw.stop()
        stop_draining.set()
        drainer.join(timeout=5)
        os.close(reader)
    assert not problems, problems
