"""Routing: prefix match and strip, query bytes, longest prefix, 404, round-robin, methods."""

import pytest

from client import Conn, assert_problem
from conftest import curl


def test_prefix_stripped_and_query_byte_exact(gw, echo):
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/users/profile?x=1&y=%20")
        assert r.status == 200, r
        assert r.json()["target"] == "/profile?x=1&y=%20"
        r = c.request("GET", "/api/users/a/b%2Fc;p?q=%7e&&r=/x?y")
        assert r.json()["target"] == "/a/b%2Fc;p?q=%7e&&r=/x?y"


def test_prefix_itself_maps_to_root(gw, echo):
    p = curl(f"{gw.url}/api/users/")
    assert p.returncode == 0, p.stderr
    import json
    assert json.loads(p.stdout)["target"] == "/"


def test_longest_prefix_wins(gateway, upstream):
    broad, narrow = upstream("broad"), upstream("narrow")
    gw = gateway(routes=[("/api/", broad), ("/api/users/", narrow)])
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/users/7")
        assert r.json()["upstream"] == "narrow" and r.json()["target"] == "/7"
        r = c.request("GET", "/api/products/9?z=1")
        assert r.json()["upstream"] == "broad" and r.json()["target"] == "/products/9?z=1"


def test_no_route_is_404_problem(gw, echo):
    with Conn(gw.port) as c:
        assert_problem(c.request("GET", "/nowhere"), 404)
        assert_problem(c.request("GET", "/api/user"), 404)  # not under /api/users/
        # the connection stays usable after a gateway-made 404
        assert c.request("GET", "/api/users/ok").status == 200
    assert echo.request_count() == 1


def test_round_robin_over_two_upstreams(gateway, upstream):
    a, b = upstream("a"), upstream("b")
    gw = gateway(routes=[("/rr/", [a, b])], threads=1)
    seen = []
    with Conn(gw.port) as c:
        for i in range(10):
            r = c.request("GET", f"/rr/{i}")
            assert r.status == 200, r
            seen.append(r.json()["upstream"])
    assert seen.count("a") == 5 and seen.count("b") == 5, seen
    assert all(seen[i] != seen[i + 1] for i in range(9)), seen


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                    "PROPFIND", "PURGE"])
def test_every_method_is_forwarded(gw, echo, method):
    body = b"payload" if method in ("POST", "PUT", "PATCH", "PROPFIND") else None
    with Conn(gw.port) as c:
        r = c.request(method, "/api/users/m?k=v", body=body)
        assert r.status == 200, r
        if method == "HEAD":
            assert r.body == b""
            # nothing may follow a HEAD response: the next response must parse cleanly
            r2 = c.request("GET", "/api/users/after-head")
            assert r2.json()["target"] == "/after-head"
            req = echo.requests[0]
            assert req.method == "HEAD" and req.target == "/m?k=v"
        else:
            doc = r.json()
            assert doc["method"] == method and doc["target"] == "/m?k=v"
            assert doc["body_len"] == (len(body) if body else 0)
