"""Self-tests of the test upstreams (no gateway involved): the harness must be right before the
gateway is judged by it."""

import hashlib

from client import Closed, Conn, build_request, chunked
from conftest import curl
from upstreams import pattern_bytes, refused_port


def test_echo_reports_request(echo):
    with Conn(echo.port) as c:
        r = c.request("POST", "/a?x=1&y=%20", [("X-One", "1"), ("X-Two", "2")], b"hello")
        doc = r.json()
        assert doc["method"] == "POST" and doc["target"] == "/a?x=1&y=%20"
        assert ["X-One", "1"] in doc["headers"] and doc["body_len"] == 5
        assert doc["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
        r2 = c.request("GET", "/b")
        assert r2.json()["conn_id"] == doc["conn_id"] and r2.json()["conn_requests"] == 2
    assert echo.accepts == 1


def test_chunked_both_ways(echo):
    with Conn(echo.port) as c:
        body = pattern_bytes(200000)
        c.send(build_request("PUT", "/chunked", [("Transfer-Encoding", "chunked")]) + chunked(body, 7777))
        r = c.read_response()
        assert r.header("transfer-encoding") == "chunked"
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest() and r.json()["chunked"]


def test_head_204_304_and_bytes(echo):
    with Conn(echo.port) as c:
        r = c.request("HEAD", "/x")
        assert r.status == 200 and r.body == b"" and int(r.header("content-length")) > 0
        assert c.request("GET", "/status/204").status == 204
        r = c.request("GET", "/status/304")
        assert r.status == 304 and r.body == b""
        r = c.request("GET", "/bytes/1048576")
        assert len(r.body) == 1048576
        assert hashlib.sha256(r.body).hexdigest() == r.header("x-body-sha256")


def test_abort_reset_malformed(echo):
    p = curl(f"{echo.url}/abort", "-o", "/dev/null")
    assert p.returncode == 18, p
    p = curl(f"{echo.url}/abort-chunked", "-o", "/dev/null")
    assert p.returncode == 18, p
    with Conn(echo.port) as c:
        c.send(build_request("GET", "/reset"))
        try:
            c.read_response()
            assert False, "expected reset"
        except Closed:
            pass
    p = curl(f"{echo.url}/malformed")
    assert p.returncode != 0


def test_refused_port():
    p = curl(f"http://127.0.0.1:{refused_port()}/")
    assert p.returncode == 7
