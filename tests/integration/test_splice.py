"""Zero-copy body forwarding (splice): integrity both ways with splice on and off, framing kept
exact around spliced bodies, aborts in either direction, no descriptor or pipe leaks, and bounded
memory behind a slow reader."""

import hashlib
import os
import re
import socket
import time

import pytest

from client import Conn, build_request
from conftest import http_get
from upstreams import pattern_bytes

MiB = 1 << 20


def body_counters(gw) -> dict[tuple[str, str], int]:
    status, _, body = http_get(gw.admin_port, "/metrics")
    assert status == 200
    out = {}
    for m in re.finditer(r'ringway_body_bytes_total\{direction="(\w+)",mode="(\w+)"\} (\d+)',
                         body.decode()):
        out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


def fd_kinds(pid: int) -> tuple[int, int]:
    """(sockets, pipe ends) currently open in the process."""
    sockets = pipes = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        sockets += target.startswith("socket:")
        pipes += target.startswith("pipe:")
    return sockets, pipes


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def streamed_get(port: int, path: str) -> tuple[bytes, int, str]:
    """GET over a fresh connection, hashing the Content-Length body as it streams in (the
    buffering client is quadratic on 64 MiB). Returns (head, body length, sha256 hex)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(build_request("GET", path, [("Connection", "close")]))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(1 << 16)
            assert chunk, data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        h = hashlib.sha256(rest)
        n = len(rest)
        buf = bytearray(1 << 20)
        while True:
            k = s.recv_into(buf)
            if k == 0:
                break
            h.update(memoryview(buf)[:k])
            n += k
    return head, n, h.hexdigest()


def wait_until(pred, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture(params=["on", "off"])
def splice_gw(request, gateway, echo):
    gw = gateway(routes=[("/api/", echo)], args=["--splice", request.param], threads=1)
    gw.splice = request.param == "on"
    return gw


@pytest.mark.parametrize("size", [1 * MiB, 8 * MiB, pytest.param(64 * MiB, marks=pytest.mark.slow)])
def test_upload_and_download_intact(splice_gw, size):
    gw = splice_gw
    body = pattern_bytes(size)
    with Conn(gw.port, timeout=60) as c:
        r = c.request("POST", "/api/up", [("Content-Type", "application/octet-stream")], body)
        assert r.status == 200, r
        doc = r.json()
        assert doc["body_len"] == size and doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    head, n, digest = streamed_get(gw.port, f"/api/bytes/{size}")
    assert b" 200 " in head.split(b"\r\n")[0] and n == size
    assert f"x-body-sha256: {digest}".encode() in head.lower()
    counters = body_counters(gw)
    if gw.splice:
        # nearly all of both bodies went through pipes; at most the first buffer was copied
        assert counters[("upload", "splice")] >= size - 64 * 1024, counters
        assert counters[("download", "splice")] >= size - 64 * 1024, counters
    else:
        assert counters[("upload", "splice")] == 0 and counters[("download", "splice")] == 0, counters
        assert counters[("upload", "copy")] == size, counters


def test_pipelined_request_after_spliced_body(splice_gw):
    gw = splice_gw
    body = pattern_bytes(2 * MiB)
    with Conn(gw.port, timeout=30) as c:
        # the next request follows the body in the same stream: a splice that read past the
        # Content-Length would swallow it (or forward it as part of the body)
        c.send(build_request("POST", "/api/first", [], body) + build_request("GET", "/api/second")
               + build_request("GET", f"/api/bytes/{MiB}") + build_request("GET", "/api/fourth"))
        r1 = c.read_response()
        assert r1.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert c.read_response().json()["target"] == "/second"
        r3 = c.read_response()
        assert len(r3.body) == MiB and hashlib.sha256(r3.body).hexdigest() == r3.header("x-body-sha256")
        assert c.read_response().json()["target"] == "/fourth"


def test_upstream_connection_reused_after_spliced_response(gateway, echo):
    gw = gateway(routes=[("/api/", echo)], threads=1)
    with Conn(gw.port, timeout=30) as c:
        for _ in range(3):
            r = c.request("GET", f"/api/bytes/{4 * MiB}")
            assert len(r.body) == 4 * MiB
        ids = {c.request("GET", "/api/id").json()["conn_id"] for _ in range(2)}
    assert len(ids) == 1
    assert echo.accepts == 1, "a fully spliced response must leave the upstream connection reusable"


def test_client_disconnects_mid_upload_and_mid_download_leak_nothing(splice_gw, echo):
    gw = splice_gw
    pid = gw.proc.pid
    # warm up: the worker's pipe cache and pools exist before the baseline is taken
    with Conn(gw.port, timeout=30) as c:
        c.request("POST", "/api/warm", [], pattern_bytes(MiB))
        c.request("GET", f"/api/bytes/{MiB}")
    time.sleep(0.2)
    base_sockets, base_pipes = fd_kinds(pid)
    accepts_before = echo.accepts
    for i in range(10):
        # mid-upload: promise 8 MiB, send 1 MiB, vanish
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /api/up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (8 * MiB))
        s.sendall(pattern_bytes(MiB))
        time.sleep(0.05)
        s.close()
        # mid-download: ask for 64 MiB, read a little, vanish
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(build_request("GET", f"/api/bytes/{64 * MiB}"))
        got = 0
        while got < 2 * MiB:
            chunk = s.recv(1 << 16)
            assert chunk
            got += len(chunk)
        s.close()
    # every abandoned exchange's upstream connection was closed, not pooled: the next request
    # needs a fresh upstream connection, and the gateway is back to its baseline descriptors
    assert wait_until(lambda: fd_kinds(pid)[0] <= base_sockets), (fd_kinds(pid), base_sockets)
    assert fd_kinds(pid)[1] <= max(base_pipes, 2 * 32), (fd_kinds(pid), base_pipes)
    with Conn(gw.port, timeout=30) as c:
        r = c.request("GET", f"/api/bytes/{MiB}")
        assert hashlib.sha256(r.body).hexdigest() == r.header("x-body-sha256")
    assert echo.accepts > accepts_before


@pytest.mark.parametrize("path", ["/api/abort", "/api/abort-chunked"])
def test_upstream_reset_mid_body_is_an_abort(splice_gw, path):
    gw = splice_gw
    with Conn(gw.port, timeout=10) as c:
        c.send(build_request("GET", path))
        data = b""
        c.sock.settimeout(10)
        while True:
            try:
                chunk = c.sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if head:
            assert b" 200 " in head.split(b"\r\n")[0]
            if b"content-length: 100000" in head.lower():
                assert len(body) < 100000  # never a clean, complete-looking response
            else:
                assert not body.endswith(b"0\r\n\r\n")  # no terminating chunk


def test_slow_reader_keeps_gateway_memory_bounded(splice_gw):
    gw = splice_gw
    pid = gw.proc.pid
    with Conn(gw.port, timeout=30) as c:  # warm up buffers and pipes
        c.request("GET", f"/api/bytes/{8 * MiB}")
    before = rss_kib(pid)
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(build_request("GET", f"/api/bytes/{64 * MiB}"))
    got = 0
    peak = before
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # read ~64 KiB every 20 ms: far slower than the upstream
        got += len(s.recv(64 * 1024))
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)
    s.close()
    assert got < 16 * MiB  # the reader really was slow
    # back-pressure: the gateway does not buffer the 64 MiB body on behalf of the slow client
    assert peak - before < 8 * 1024, (before, peak)


@pytest.fixture(params=["on", "off"])
def timed_gw(request, gateway, echo):
    gw = gateway(routes=[("/api/", echo)], threads=1,
                 args=["--splice", request.param, "--body-timeout", "1s"])
    return gw


def test_slow_but_steady_bodies_are_not_stalls(timed_gw):
    # 16 KiB every 80 ms (~200 KB/s): each piece is progress within --body-timeout 1s, although a
    # spliced body waits for 256 KiB before it reports readable (SO_RCVLOWAT).
    gw = timed_gw
    size = 512 * 1024
    head, n, digest = streamed_get(gw.port, f"/api/drip/{size}/80")
    assert b" 200 " in head.split(b"\r\n")[0] and n == size, head
    assert f"x-body-sha256: {digest}".encode() in head.lower()
    body = pattern_bytes(size)
    with Conn(gw.port, timeout=30) as c:
        c.send(build_request("POST", "/api/up", [("Content-Length", str(size))]))
        for i in range(0, size, 16384):
            time.sleep(0.08)
            c.send(body[i:i + 16384])
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_stalled_spliced_upload_still_times_out(timed_gw):
    gw = timed_gw
    with Conn(gw.port, timeout=30) as c:
        c.send(build_request("POST", "/api/up", [("Content-Length", str(MiB))])
               + pattern_bytes(100_000))
        t0 = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - t0
    assert r.status == 408, r
    assert elapsed < 5, elapsed  # one period, plus one more with plain readiness when spliced
