"""Connection handling: upstream keep-alive reuse, pipelining, upstream failures."""

import time

from client import Closed, Conn, assert_problem, build_request
from conftest import curl
from upstreams import refused_port


def test_upstream_connection_reused(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)])
    with Conn(gw.port) as c:
        docs = [c.request("GET", f"/api/users/{i}").json() for i in range(6)]
    assert echo.accepts == 1, [d["conn_id"] for d in docs]
    assert [d["conn_requests"] for d in docs] == [1, 2, 3, 4, 5, 6]


def test_upstream_keepalive_zero_disables_reuse(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--upstream-keepalive", "0"])
    with Conn(gw.port) as c:
        for i in range(6):
            assert c.request("GET", f"/api/users/{i}").status == 200
    assert echo.accepts == 6


def test_pipelined_requests_answered_in_order(gw, echo):
    with Conn(gw.port) as c:
        c.send(build_request("GET", "/api/users/p1") + build_request("POST", "/api/users/p2", body=b"xyz")
               + build_request("GET", "/api/users/p3"))
        targets = [c.read_response().json()["target"] for _ in range(3)]
        assert targets == ["/p1", "/p2", "/p3"]
        assert c.request("GET", "/api/users/p4").json()["target"] == "/p4"


def test_pipelined_with_head_and_204(gw, echo):
    with Conn(gw.port) as c:
        c.send(build_request("HEAD", "/api/users/h") + build_request("GET", "/api/users/status/204")
               + build_request("GET", "/api/users/last"))
        assert c.read_response("HEAD").status == 200
        assert c.read_response().status == 204
        assert c.read_response().json()["target"] == "/last"


def test_upstream_down_is_502(gateway):
    gw = gateway(routes=[("/down/", f"http://127.0.0.1:{refused_port()}")])
    with Conn(gw.port) as c:
        assert_problem(c.request("GET", "/down/x"), 502)
    p = curl("-o", "/dev/null", "-w", "%{http_code}", f"{gw.url}/down/y")
    assert p.stdout == b"502"


def test_hanging_upstream_is_504(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--upstream-response-timeout", "1s"])
    with Conn(gw.port, timeout=15) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/api/users/hang")
        elapsed = time.monotonic() - t0
        assert_problem(r, 504)
    # behaviour, not performance: the configured 1 s timeout fired, not some later default
    assert elapsed < 10, elapsed


def test_upstream_reset_is_502_and_gateway_recovers(gw, echo):
    with Conn(gw.port) as c:
        assert_problem(c.request("GET", "/api/users/reset"), 502)
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/fine").status == 200


def test_malformed_upstream_response_is_502(gw, echo):
    with Conn(gw.port) as c:
        assert_problem(c.request("GET", "/api/users/malformed"), 502)
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/fine").status == 200


# curl: 18 = "transfer closed with outstanding read data" (FIN before the promised end),
# 56 = "recv failure: connection reset" (RST). Both are an aborted transfer; 0 would be a clean,
# silently truncated response, which must never happen.
ABORTED = (18, 56)


def test_upstream_close_mid_response_aborts_client_curl(gw, echo):
    p = curl("-o", "/dev/null", f"{gw.url}/api/users/abort")
    assert p.returncode in ABORTED, (p.returncode, p.stderr)
    p = curl("-o", "/dev/null", f"{gw.url}/api/users/abort-chunked")
    assert p.returncode in ABORTED, (p.returncode, p.stderr)


def test_upstream_close_mid_response_raw(gw, echo):
    """The upstream promised 100000 bytes and sent 1000: the client must see the same short,
    aborted body (never a re-framed, clean-looking response)."""
    with Conn(gw.port) as c:
        c.send(build_request("GET", "/api/users/abort"))
        data, how = c.read_to_eof(timeout=10)
    assert how in ("eof", "reset"), f"connection left open after an aborted upstream response ({how})"
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no response head: {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200 "), lines[0]
    fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    assert fields.get("content-length") == "100000", fields
    assert "transfer-encoding" not in fields, fields
    assert 0 < len(body) < 100000, len(body)


def test_upstream_close_mid_chunked_response_raw(gw, echo):
    with Conn(gw.port) as c:
        c.send(build_request("GET", "/api/users/abort-chunked"))
        try:
            r = c.read_response()
        except Closed:
            return
        raise AssertionError(f"client got a clean chunked end from an aborted upstream: {r!r}")


def test_upstream_connection_close_not_reused(gw, echo):
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/close").status == 200
        assert c.request("GET", "/api/users/again").status == 200
    assert echo.accepts == 2


def listening_sockets(pid: int) -> dict[int, int]:
    """port -> number of the process's TCP sockets in LISTEN state on it."""
    import os
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    counts: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    port = int(cols[1].rsplit(":", 1)[1], 16)
                    counts[port] = counts.get(port, 0) + 1
    return counts


def test_every_worker_listens_on_every_address(gateway, echo):
    from conftest import free_port
    second = free_port()
    gw = gateway(routes=[("/api/", echo)], threads=2, args=["--listen", f"127.0.0.1:{second}"])
    counts = listening_sockets(gw.proc.pid)
    # one SO_REUSEPORT listener per worker on each address (the admin listener is separate)
    assert counts.get(gw.port) == 2 and counts.get(second) == 2, counts
    for port in (gw.port, second):
        for _ in range(4):
            with Conn(port) as c:
                assert c.request("GET", "/api/users/x").status == 200
