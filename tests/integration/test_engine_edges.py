"""Engine behaviour at the edges (issue 12's engine part): an empty request body keeps both
connections alive, OPTIONS * is answered by the gateway, and running out of file descriptors
pauses accepting instead of spinning a core."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from client import Conn, build_request
from conftest import BINARY, free_port, http_get


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_empty_body_keeps_both_connections(gw, echo, method):
    with Conn(gw.port) as c:
        for i in range(3):
            c.send(build_request(method, f"/api/users/{i}", [("Content-Length", "0")]))
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("connection") is None, r  # no Connection: close
            assert r.json()["body_len"] == 0
    assert echo.accepts == 1  # the upstream connection was pooled and reused


def test_empty_body_with_a_pipelined_request_behind_it(gw, echo):
    with Conn(gw.port) as c:
        c.send(build_request("PUT", "/api/users/a", [("Content-Length", "0")])
               + build_request("GET", "/api/users/b"))
        first = c.read_response()
        second = c.read_response()
        assert first.status == 200 and first.json()["target"] == "/a"
        assert first.json()["method"] == "PUT"
        assert second.status == 200 and second.json()["target"] == "/b"
        assert c.request("GET", "/api/users/c").json()["target"] == "/c"
    assert echo.accepts == 1


def test_options_asterisk_is_answered_by_the_gateway(gw, echo):
    with Conn(gw.port) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert "GET" in r.header("allow") and "OPTIONS" in r.header("allow")
        assert r.header("content-length") == "0" and r.body == b""
        # the connection stays usable
        assert c.request("GET", "/api/users/x").json()["target"] == "/x"
    assert echo.request_count() == 1  # only the GET reached the upstream


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_pauses_accepting_without_spinning(tmp_path, echo):
    port, admin = free_port(), free_port()
    err = open(tmp_path / "stderr", "wb")
    proc = subprocess.Popen(
        ["prlimit", "--nofile=64:64", str(BINARY), "--listen", f"127.0.0.1:{port}", "--threads", "1",
         "--admin-listen", f"127.0.0.1:{admin}", "--route", f"/={echo.url}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    held: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if http_get(admin, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "gateway did not start"
            time.sleep(0.05)
        # Far more connections than descriptors: most stay in the backlog.
        for _ in range(100):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = _cpu_seconds(proc.pid)
        time.sleep(2.0)
        used = _cpu_seconds(proc.pid) - before
        # A re-arm loop burns the whole 2 s of a core; a paused accept costs next to nothing.
        assert used < 0.5, f"{used:.2f} s of CPU in 2 s while out of descriptors"
        for s in held:
            s.close()
        held.clear()
        # Descriptors come back: new connections are served again.
        deadline = time.monotonic() + 10
        while True:
            try:
                with Conn(port, timeout=2) as c:
                    if c.request("GET", "/after").status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not serving after descriptors were freed"
            time.sleep(0.1)
        metrics = http_get(admin, "/metrics")[2].decode()
        paused = [l for l in metrics.splitlines() if l.startswith("ringway_accept_paused_total ")]
        assert paused and int(paused[0].split()[1]) >= 1, metrics[-2000:]
        err.flush()
        assert "out of file descriptors" in (tmp_path / "stderr").read_text()
    finally:
        for s in held:
            s.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()
