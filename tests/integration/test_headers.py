"""Rebuilt heads: forwarding headers, Host, hop-by-hop removal, --add-header, interim responses."""

import pytest

from client import Conn, build_request


def hdrs(doc, name):
    return [v for k, v in doc["headers"] if k.lower() == name.lower()]


def test_forwarded_headers_added(gw, echo):
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/f", host="client.example:8443").json()
    assert hdrs(doc, "x-forwarded-for") == ["127.0.0.1"]
    assert hdrs(doc, "x-forwarded-proto") == ["http"]
    assert hdrs(doc, "x-forwarded-host") == ["client.example:8443"]
    assert hdrs(doc, "host") == [f"127.0.0.1:{echo.port}"]


def test_x_forwarded_for_appended(gw, echo):
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/f", [("X-Forwarded-For", "203.0.113.9")]).json()
    xff = hdrs(doc, "x-forwarded-for")
    assert len(xff) == 1, xff
    assert [p.strip() for p in xff[0].split(",")] == ["203.0.113.9", "127.0.0.1"]


def test_preserve_host(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--preserve-host"])
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/f", host="keep.example").json()
    assert hdrs(doc, "host") == ["keep.example"]


def test_hop_by_hop_request_fields_removed(gw, echo):
    sent = [("Connection", "keep-alive, X-Secret, x-other"), ("X-Secret", "s"), ("X-Other", "o"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
            ("Trailer", "X-T"), ("Upgrade", "h2c"), ("X-Kept", "k")]
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/h", sent).json()
        assert c.request("GET", "/api/users/next").status == 200  # still keep-alive
    names = {k.lower() for k, _ in doc["headers"]}
    for gone in ("x-secret", "x-other", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        assert gone not in names, (gone, doc["headers"])
    for v in hdrs(doc, "connection"):
        assert "x-secret" not in v.lower() and "x-other" not in v.lower()
    assert hdrs(doc, "x-kept") == ["k"]


def test_hop_by_hop_response_fields_removed(gw, echo):
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/users/hop-by-hop")
        assert r.status == 200 and r.body == b"hop"
        assert r.header("x-kept") == "yes"
        assert r.header("x-resp-secret") is None, r.headers
        assert r.header("keep-alive") is None, r.headers
        for v in r.header_all("connection"):
            assert "x-resp-secret" not in v.lower()


def test_header_order_and_duplicates_preserved(gw, echo):
    sent = [("X-A", "1"), ("X-B", "2"), ("X-A", "3"), ("Cookie", "a=1"), ("Cookie", "b=2")]
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/o", sent).json()
    seen = [(k.lower(), v) for k, v in doc["headers"] if k.lower() in ("x-a", "x-b", "cookie")]
    assert seen == [("x-a", "1"), ("x-b", "2"), ("x-a", "3"), ("cookie", "a=1"), ("cookie", "b=2")]


def test_add_header_wins_over_client(gateway, echo):
    gw = gateway(routes=[("/api/users/", echo)], args=["--add-header", "X-Gateway:True"])
    with Conn(gw.port) as c:
        doc = c.request("GET", "/api/users/a").json()
        assert hdrs(doc, "x-gateway") == ["True"]
        # a client-sent X-Gateway is replaced, and Connection cannot nominate it away
        doc = c.request("GET", "/api/users/b", [("Connection", "X-Gateway"), ("X-Gateway", "evil")]).json()
        assert hdrs(doc, "x-gateway") == ["True"], doc["headers"]
        doc = c.request("GET", "/api/users/c", [("x-gateway", "evil"), ("X-GATEWAY", "evil2")]).json()
        assert hdrs(doc, "x-gateway") == ["True"], doc["headers"]


@pytest.mark.parametrize("how", ["together", "apart"])
def test_interim_responses_are_relayed_except_100(gw, echo, how):
    # RFC 9110 15.2: 103 and 102 reach an HTTP/1.1 client before the final response, without
    # hop-by-hop fields; 100 is not relayed (the gateway answers Expect itself).
    with Conn(gw.port) as c:
        c.send(build_request("GET", f"/api/users/interim/{how}"))
        heads = []
        while True:
            head = c._read_until(b"\r\n\r\n")
            heads.append(head)
            if head.startswith(b"HTTP/1.1 200"):
                break
        assert c._read_exact(5) == b"final"
        assert [h.split(b" ", 2)[1] for h in heads] == [b"103", b"102", b"200"], heads
        assert b"Link: </a.css>; rel=preload\r\n" in heads[0]
        assert b"X-Hop" not in heads[0]
        assert c.request("GET", "/api/users/next").json()["target"] == "/next"  # still in sync
    # An HTTP/1.0 client gets the final response only.
    with Conn(gw.port) as c:
        c.send(f"GET /api/users/interim/{how} HTTP/1.0\r\nHost: a\r\n\r\n".encode())
        raw, _ = c.read_to_eof()
        assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"final"), raw
