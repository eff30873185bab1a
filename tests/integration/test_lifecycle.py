"""Timeouts and graceful shutdown."""

import signal
import socket
import time

from client import Conn, build_request


def _connect_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True
    except (ConnectionResetError, socket.timeout):
        # queued on a listener that was closed meanwhile (RST): not refused yet, probe again
        return False


def test_sigterm_drains_in_flight_request(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], drain_timeout="10s")
    with Conn(gw.port, timeout=15) as c:
        c.send(build_request("GET", "/api/users/slow/2500"))
        assert echo.wait_requests(1), "request never reached the upstream"
        gw.signal(signal.SIGTERM)
        # new connections are refused while the in-flight request is still running
        deadline = time.monotonic() + 2.0
        refused = False
        while time.monotonic() < deadline and not refused:
            refused = _connect_refused(gw.port)
            if not refused:
                time.sleep(0.05)
        assert refused, "listener still accepting after SIGTERM"
        assert echo.request_count() == 1  # the probe connections were not forwarded
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/slow/2500"
    gw.proc.wait(timeout=15)
    assert gw.proc.returncode == 0, gw.stderr()[-2000:]


def test_sigterm_with_idle_keepalive_connection_exits_promptly(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], drain_timeout="10s")
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/x").status == 200
        gw.signal(signal.SIGTERM)
        # an idle keep-alive connection is not in-flight work: it is closed, not waited for
        assert c.is_closed(timeout=8)
        gw.proc.wait(timeout=8)
    assert gw.proc.returncode == 0


def test_drain_timeout_bounds_shutdown(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], drain_timeout="1s")
    with Conn(gw.port, timeout=15) as c:
        c.send(build_request("GET", "/api/users/hang"))
        assert echo.wait_requests(1)
        gw.signal(signal.SIGTERM)
        gw.proc.wait(timeout=12)  # 1 s drain: it must not wait for the hanging upstream
        assert gw.proc.returncode == 0
        data, how = c.read_to_eof(timeout=5)
        assert how in ("eof", "reset")


def test_client_header_timeout_slowloris(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--client-header-timeout", "1s"])
    with Conn(gw.port) as c:
        c.send(b"GET /api/users/x HTTP/1.1\r\nHost: x\r\n")
        closed = False
        t0 = time.monotonic()
        # keep trickling header bytes (each well within any per-read timeout) for up to 8 s
        while time.monotonic() - t0 < 8:
            try:
                c.send(b"X-Drip: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if c.is_closed(timeout=0.3):
                closed = True
                break
            if c.buf:  # a response (e.g. 408) before the close is fine
                closed = c.is_closed(timeout=3)
                break
        assert closed, "slowloris connection kept open past --client-header-timeout"
    assert echo.received_bytes() == b""


def test_idle_keepalive_timeout(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--keepalive-timeout", "1s"])
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/x").status == 200
        assert c.is_closed(timeout=8), "idle client connection not closed after --keepalive-timeout"


def test_client_close_mid_request_does_not_hurt(gw, echo):
    for _ in range(5):
        c = Conn(gw.port)
        c.send(b"POST /api/users/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
        c.close()
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/ok").status == 200


def test_client_close_while_upstream_slow(gw, echo):
    c = Conn(gw.port)
    c.send(build_request("GET", "/api/users/slow/500"))
    assert echo.wait_requests(1)
    c.close()
    time.sleep(0.8)
    with Conn(gw.port) as c2:
        assert c2.request("GET", "/api/users/ok").status == 200
