"""The response cache (issue 16), end to end: the real binary in front of upstreams whose response
heads the test writes (Upstream.handler answers paths under /c/).

Freshness is driven by the headers, never by waiting: max-age=0 makes a response stale at once
(stored, then revalidated), max-age=600 keeps it fresh for the whole test.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time

from client import Conn
from conftest import BINARY, free_port, http_get, metric

ROUTE = "/api/"


def cache_status(r) -> str:
    return r.header("Cache-Status") or ""


def handler_fixed(headers, body=b"hello", status=200):
    """A handler that always answers the same way; counts requests by path."""
    def h(req):
        return status, list(headers), body
    return h


def cached_gw(gateway, up, args=None, threads=2):
    return gateway(routes=[(ROUTE, up)], args=["--cache", "4m"] + (args or []), threads=threads)


def admin_post(gw, target: str) -> tuple[int, bytes]:
    with Conn(gw.admin_port) as c:
        r = c.request("POST", target, [("Connection", "close")])
        return r.status, r.body


# ---- configuration -----------------------------------------------------------------------------

def run_config(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "-t", *args], capture_output=True, text=True, timeout=20)


def test_config_errors(tmp_path, echo):
    p = run_config(["--route", f"/a/={echo.url}", "--cache", "12"])
    assert p.returncode != 0 and "--cache" in p.stderr and "64k" in p.stderr, p.stderr
    p = run_config(["--route", f"/a/={echo.url}", "--cache", "lots"])
    assert p.returncode != 0 and "--cache" in p.stderr, p.stderr

    def with_route(cache: dict, extra=()):
        cfg = tmp_path / "c.json"
        cfg.write_text(json.dumps({"routes": [{"prefix": "/a/", "upstreams": [echo.url], "cache": cache}]}))
        return run_config(["--config", str(cfg), *extra])

    p = with_route({"enabled": True})
    assert p.returncode != 0 and "size" in p.stderr, p.stderr
    p = with_route({"size": "1m", "default_ttl": "10m", "max_ttl": "1m"})
    assert p.returncode != 0 and "max_ttl" in p.stderr, p.stderr
    p = with_route({"size": "1m", "key_headers": ["bad header"]})
    assert p.returncode != 0 and "key_headers" in p.stderr, p.stderr
    p = with_route({"size": "1m", "colour": "red"})
    assert p.returncode != 0 and "colour" in p.stderr, p.stderr
    p = with_route({"size": "1m", "default_ttl": "10s", "max_ttl": "1h",
                    "key_headers": ["X-Tenant"], "allow_authorized": False})
    assert p.returncode == 0, p.stderr
    # --cache alone, and a route that opts out with a size it does not need.
    p = with_route({"enabled": False}, ["--cache", "1m"])
    assert p.returncode == 0, p.stderr


# ---- store and hit -----------------------------------------------------------------------------

def test_miss_then_hit_get_and_head(gateway, upstream):
    up = upstream("origin")
    up.handler = handler_fixed([("Cache-Control", "max-age=600"), ("Content-Type", "text/plain"),
                                ("X-Origin", "yes")], b"cached body")
    gw = cached_gw(gateway, up)
    with Conn(gw.port) as c:
        r1 = c.request("GET", "/api/c/one")
        assert r1.status == 200 and r1.body == b"cached body"
        cs = cache_status(r1)
        assert "fwd=uri-miss" in cs and "stored" in cs and "fwd-status=200" in cs, cs
        r2 = c.request("GET", "/api/c/one")
        assert r2.status == 200 and r2.body == b"cached body"
        assert cache_status(r2).startswith("ringway; hit"), r2
        assert r2.header("Age") is not None and int(r2.header("Age")) >= 0
        assert r2.header("X-Origin") == "yes" and r2.header("Content-Type") == "text/plain"
        assert r2.header("Content-Length") == str(len(b"cached body"))
        r3 = c.request("HEAD", "/api/c/one")
        assert r3.status == 200 and r3.body == b"" and "hit" in cache_status(r3)
        assert r3.header("Content-Length") == str(len(b"cached body"))
    assert up.request_count() == 1
    assert metric(gw, "ringway_cache_hits_total") == 2
    assert metric(gw, "ringway_cache_misses_total") == 1


def test_large_and_chunked_bodies_are_stored(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    # Content-Length body larger than a splice would take; stored from the copy path.
    body = bytes(range(256)) * 600  # 150 KiB
    up.handler = handler_fixed([("Cache-Control", "max-age=600")], body)
    with Conn(gw.port) as c:
        for i in range(3):
            r = c.request("GET", "/api/c/big")
            assert r.status == 200 and r.body == body, i
    assert up.request_count() == 1
    # A chunked body is stored de-chunked and served with a Content-Length.
    with Conn(gw.port) as c:
        for i in range(2):
            r = c.request("GET", "/api/chunked")
            assert r.status == 200
    # the echo /chunked path has no freshness: not stored (the upstream sees both)
    assert up.request_count() == 3


def test_chunked_response_stored_decoded(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    payload = b"x" * 5000 + b"y" * 5000

    def h(req):
        return 200, [("Cache-Control", "max-age=600")], payload, True  # chunked
    up.handler = h
    with Conn(gw.port) as c:
        r1 = c.request("GET", "/api/c/chunk")
        r2 = c.request("GET", "/api/c/chunk")
    assert r1.body == payload and r2.body == payload and "hit" in cache_status(r2)
    assert up.request_count() == 1


def test_not_stored_no_store_private_no_freshness(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    cases = {"/api/c/nostore": [("Cache-Control", "no-store, max-age=600")],
             "/api/c/private": [("Cache-Control", "private, max-age=600")],
             "/api/c/nothing": []}
    up.handler = lambda req: (200, cases[req.path.replace("/c/", "/api/c/", 1)], b"x")
    with Conn(gw.port) as c:
        for path in cases:
            for _ in range(2):
                r = c.request("GET", path)
                assert r.status == 200 and "hit" not in cache_status(r), (path, r)
                assert "stored" not in cache_status(r)
    assert up.request_count() == 6


def test_expires_and_s_maxage(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))
    heads = {"/c/expires": [("Expires", future)],
             "/c/expired": [("Expires", past)],
             # s-maxage wins over max-age for a shared cache (RFC 9111 5.2.2.10)
             "/c/smaxage": [("Cache-Control", "max-age=0, s-maxage=600")]}
    up.handler = lambda req: (200, heads[req.path], b"x")
    with Conn(gw.port) as c:
        for path in heads:
            c.request("GET", "/api" + path)
            r = c.request("GET", "/api" + path)
            assert ("hit" in cache_status(r)) == (path != "/c/expired"), (path, r)


def test_authorization_needs_public(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    heads = {"/c/auth-plain": [("Cache-Control", "max-age=600")],
             "/c/auth-public": [("Cache-Control", "public, max-age=600")]}
    up.handler = lambda req: (200, heads[req.path], b"x")
    auth = [("Authorization", "Bearer abc")]
    with Conn(gw.port) as c:
        for _ in range(2):
            r = c.request("GET", "/api/c/auth-plain", auth)
        assert "hit" not in cache_status(r) and "detail=authorization" in cache_status(r).lower(), r
        for _ in range(2):
            r = c.request("GET", "/api/c/auth-public", auth)
        assert "hit" in cache_status(r), r
    assert up.request_count() == 3


def test_vary_accept_encoding_keeps_two_variants(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    up.handler = lambda req: (200, [("Cache-Control", "max-age=600"), ("Vary", "Accept-Encoding")],
                              (req.header("Accept-Encoding") or "none").encode())
    with Conn(gw.port) as c:
        for enc in ("gzip", "br", "gzip", "br"):
            r = c.request("GET", "/api/c/vary", [("Accept-Encoding", enc)])
            assert r.body == enc.encode()
        r = c.request("GET", "/api/c/vary", [("Accept-Encoding", "br")])
        assert "hit" in cache_status(r) and r.body == b"br"
        r = c.request("GET", "/api/c/vary", [("Accept-Encoding", "zstd")])
        assert "fwd=vary-miss" in cache_status(r), r
    assert up.request_count() == 3


def test_vary_star_never_stored(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    up.handler = handler_fixed([("Cache-Control", "max-age=600"), ("Vary", "*")])
    with Conn(gw.port) as c:
        for _ in range(2):
            r = c.request("GET", "/api/c/star")
            assert "hit" not in cache_status(r)
    assert up.request_count() == 2


def test_key_headers(gateway, upstream, tmp_path):
    up = upstream("origin")
    up.handler = lambda req: (200, [("Cache-Control", "max-age=600")], (req.header("X-Tenant") or "-").encode())
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"routes": [{"prefix": "/api/", "upstreams": [up.url],
                                           "cache": {"size": "1m", "key_headers": ["X-Tenant"]}}]}))
    gw = gateway(args=["--config", str(cfg)])
    with Conn(gw.port) as c:
        for t in ("a", "b", "a", "b"):
            r = c.request("GET", "/api/c/t", [("X-Tenant", t)])
            assert r.body == t.encode()
    assert up.request_count() == 2


# ---- conditional requests ----------------------------------------------------------------------

def test_client_conditional_answered_304_from_cache(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    up.handler = handler_fixed([("Cache-Control", "max-age=600"), ("ETag", '"v1"'),
                                ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")])
    with Conn(gw.port) as c:
        c.request("GET", "/api/c/cond")
        r = c.request("GET", "/api/c/cond", [("If-None-Match", '"v1"')])
        assert r.status == 304 and r.header("ETag") == '"v1"' and "hit" in cache_status(r), r
        r = c.request("GET", "/api/c/cond", [("If-None-Match", '"v2"')])
        assert r.status == 200 and r.body == b"hello"
        r = c.request("GET", "/api/c/cond", [("If-Modified-Since", "Tue, 02 Jan 2024 00:00:00 GMT")])
        assert r.status == 304, r
    assert up.request_count() == 1


def test_revalidation_304_updates_headers(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    seen = []

    def h(req):
        seen.append(req.header("If-None-Match"))
        if req.header("If-None-Match") == '"e1"':
            return 304, [("Cache-Control", "max-age=600"), ("ETag", '"e1"'), ("X-Version", "2")], b""
        return 200, [("Cache-Control", "max-age=0"), ("ETag", '"e1"'), ("X-Version", "1")], b"body-1"
    up.handler = h
    with Conn(gw.port) as c:
        r1 = c.request("GET", "/api/c/reval")
        assert r1.header("X-Version") == "1" and r1.body == b"body-1"
        r2 = c.request("GET", "/api/c/reval")  # stale at once: revalidated with its ETag
        assert r2.status == 200 and r2.body == b"body-1" and r2.header("X-Version") == "2", r2
        assert "fwd=stale" in cache_status(r2) and "fwd-status=304" in cache_status(r2)
        r3 = c.request("GET", "/api/c/reval")  # the 304 made it fresh (max-age=600)
        assert "hit" in cache_status(r3) and r3.header("X-Version") == "2" and r3.body == b"body-1"
    assert seen == [None, '"e1"']
    assert metric(gw, "ringway_cache_revalidations_total") == 1


# ---- invalidation ------------------------------------------------------------------------------

def test_unsafe_method_invalidates(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)

    def h(req):
        if req.method == "POST":
            # Location names a same-origin URL (invalidated); Content-Location another origin's
            # (left alone, RFC 9111 4.4).
            return 201, [("Location", "/api/c/other"), ("Content-Location", "http://elsewhere.test/api/c/third")], b""
        return 200, [("Cache-Control", "max-age=600")], b"x"
    up.handler = h
    with Conn(gw.port) as c:
        for p in ("/api/c/inv", "/api/c/other", "/api/c/third"):
            c.request("GET", p)
            assert "hit" in cache_status(c.request("GET", p))
        r = c.request("POST", "/api/c/inv", body=b"{}")
        assert r.status == 201
        assert "fwd=uri-miss" in cache_status(c.request("GET", "/api/c/inv"))
        assert "fwd=uri-miss" in cache_status(c.request("GET", "/api/c/other"))
        assert "hit" in cache_status(c.request("GET", "/api/c/third"))
    assert up.request_count() == 6


# ---- purge and metrics -------------------------------------------------------------------------

def test_admin_purge_url_and_prefix(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    up.handler = handler_fixed([("Cache-Control", "max-age=600")])
    with Conn(gw.port) as c:
        for p in ("/api/c/p1", "/api/c/p2", "/api/c/q/1"):
            c.request("GET", p)
        status, body = admin_post(gw, "/cache/purge?url=http%3A%2F%2Fgw.test%2Fapi%2Fc%2Fp1")
        assert status == 200 and body == b"purged 1\n", body
        assert "fwd=uri-miss" in cache_status(c.request("GET", "/api/c/p1"))
        assert "hit" in cache_status(c.request("GET", "/api/c/p2"))
        status, body = admin_post(gw, "/cache/purge?prefix=http://gw.test/api/c/")
        assert status == 200 and body == b"purged 3\n", body
        assert "fwd=uri-miss" in cache_status(c.request("GET", "/api/c/q/1"))
    status, _ = admin_post(gw, "/cache/purge?nothing")
    assert status == 400
    assert metric(gw, "ringway_cache_purged_total") == 4


def test_byte_cap_holds_at_twice_the_size(gateway, upstream):
    up = upstream("origin")
    size = 256 * 1024
    gw = gateway(routes=[(ROUTE, up)], args=["--cache", "256k"])
    up.handler = handler_fixed([("Cache-Control", "max-age=600")], b"z" * 4000)
    with Conn(gw.port) as c:
        for i in range(2 * size // 4000):
            assert c.request("GET", f"/api/c/fill/{i}").status == 200
    stored = metric(gw, "ringway_cache_bytes_stored")
    assert 0 < stored <= size, stored
    assert metric(gw, "ringway_cache_evictions_total") > 0
    assert metric(gw, "ringway_cache_inserts_total") == 2 * size // 4000


# ---- stale serving -----------------------------------------------------------------------------

def test_stale_if_error_on_500_and_on_failure(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    state = {"fail": False}

    def h(req):
        if state["fail"]:
            return 500, [], b"broken"
        return 200, [("Cache-Control", "max-age=0, stale-if-error=600"), ("ETag", '"s"')], b"good"
    up.handler = h
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/c/sie").body == b"good"
        state["fail"] = True
        r = c.request("GET", "/api/c/sie")
        assert r.status == 200 and r.body == b"good", r
        cs = cache_status(r)
        assert "fwd=stale" in cs and "fwd-status=500" in cs and "stale-if-error" in cs, cs
    # No upstream at all (connection refused): the stale copy again.
    up.stop()
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/c/sie")
        assert r.status == 200 and r.body == b"good" and "stale-if-error" in cache_status(r), r
    assert metric(gw, "ringway_cache_stale_served_total") == 2


def test_stale_while_revalidate_one_background_refresh(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    state = {"version": 1, "delay": 0.0}
    started = threading.Event()

    def h(req):
        v = state["version"]
        if state["delay"]:
            started.set()
            time.sleep(state["delay"])
        cc = "max-age=0, stale-while-revalidate=600" if v == 1 else "max-age=600"
        return 200, [("Cache-Control", cc), ("X-Version", str(v))], b"v%d" % v
    up.handler = h
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/c/swr").body == b"v1"
    state.update(version=2, delay=1.0)
    with Conn(gw.port, timeout=20) as trigger:
        # The request that finds the entry stale gets it at once; the refresh follows it.
        r = trigger.request("GET", "/api/c/swr")
        assert r.body == b"v1" and "stale-while-revalidate" in cache_status(r), r
        assert started.wait(10)
        # While the one refresh runs, other requests get the stale response too.
        with Conn(gw.port) as c:
            for _ in range(3):
                r = c.request("GET", "/api/c/swr")
                assert r.body == b"v1" and "stale-while-revalidate" in cache_status(r), r
        # The trigger's connection goes on once the refresh is stored.
        r = trigger.request("GET", "/api/c/swr")
        assert r.body == b"v2" and cache_status(r).startswith("ringway; hit; ttl="), r
    assert up.request_count() == 2
    assert metric(gw, "ringway_cache_stale_served_total") == 4


# ---- collapsed forwarding ----------------------------------------------------------------------

def test_stampede_collapses_to_one_upstream_request(gateway, upstream):
    up = upstream("origin")

    def h(req):
        time.sleep(0.5)
        return 200, [("Cache-Control", "max-age=600")], b"herd"
    up.handler = h
    gw = cached_gw(gateway, up, threads=2)
    n = 500
    socks = []
    req = b"GET /api/c/herd HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n"
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
        socks.append(s)
    for s in socks:
        s.sendall(req)
    bodies = []
    for s in socks:
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        bodies.append(data)
    assert all(b.startswith(b"HTTP/1.1 200") and b.endswith(b"herd") for b in bodies)
    assert up.request_count() == 1
    assert metric(gw, "ringway_cache_collapsed_waiters_total") > 0


# ---- TLS ---------------------------------------------------------------------------------------

def test_hit_over_tls(gateway, upstream, tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    up = upstream("origin")
    body = bytes(range(251)) * 1000  # 245 KiB: several TLS records, sent from the entry
    up.handler = handler_fixed([("Cache-Control", "max-age=600")], body)
    tls_port = free_port()
    gw = gateway(routes=[(ROUTE, up)], args=["--cache", "4m", "--listen-tls", f"127.0.0.1:{tls_port}",
                                              "--tls-cert", f"{crt}:{key}"])
    ctx = ssl.create_default_context(cafile=str(crt))
    deadline = time.monotonic() + 10
    while True:
        try:
            raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    c = Conn.__new__(Conn)
    c.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    c.sock.settimeout(10)
    c.buf = b""
    with c:
        r1 = c.request("GET", "/api/c/tls")
        r2 = c.request("GET", "/api/c/tls")
    assert r1.body == body and r2.body == body and "hit" in cache_status(r2), r2
    # https and http are different keys (RFC 9111 4: the scheme is part of the URI).
    with Conn(gw.port) as c:
        assert "fwd=uri-miss" in cache_status(c.request("GET", "/api/c/tls"))
    assert up.request_count() == 2


def test_lock_timeout_hands_the_fill_to_a_waiter(gateway, upstream):
    up = upstream("origin")
    calls = []

    def h(req):
        calls.append(time.monotonic())
        n = len(calls)
        if n == 1:
            time.sleep(6)  # past the 5 s lock timeout
        return 200, [("Cache-Control", "max-age=600")], b"v%d" % n
    up.handler = h
    gw = cached_gw(gateway, up)
    out = {}

    def get(name):
        with Conn(gw.port, timeout=30) as c:
            out[name] = c.request("GET", "/api/c/lock")
    first = threading.Thread(target=get, args=("first",))
    first.start()
    assert up.wait_requests(1)
    second = threading.Thread(target=get, args=("second",))
    second.start()
    second.join(20)
    first.join(20)
    # The waiter took the fill over after the lock timeout and went upstream itself.
    assert out["second"].status == 200 and out["second"].body == b"v2", out["second"]
    assert "collapsed" in cache_status(out["second"])
    assert out["first"].body == b"v1"
    assert up.request_count() == 2


# ---- edges -------------------------------------------------------------------------------------

def test_waiters_and_filler_that_go_away(gateway, upstream):
    """A waiter whose client leaves is dropped; a filler whose client leaves mid-fill hands the key
    to the waiters, one of which fetches it again."""
    up = upstream("origin")

    def h(req):
        time.sleep(0.5)
        return 200, [("Cache-Control", "max-age=600")], b"z" * 100000
    up.handler = h
    gw = cached_gw(gateway, up)
    req = b"GET /api/c/away HTTP/1.1\r\nHost: gw.test\r\n\r\n"
    filler = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    filler.sendall(req)
    assert up.wait_requests(1)
    leaver = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    leaver.sendall(req)
    stayer = Conn(gw.port, timeout=20)
    stayer.send(req)
    time.sleep(0.1)
    leaver.close()
    filler.close()  # mid-fill: the response is relayed to nobody and not stored
    r = stayer.read_response()
    stayer.close()
    assert r.status == 200 and len(r.body) == 100000
    with Conn(gw.port) as c:
        assert "hit" in cache_status(c.request("GET", "/api/c/away"))


def test_pipelined_hits_and_http10(gateway, upstream):
    up = upstream("origin")
    up.handler = handler_fixed([("Cache-Control", "max-age=600")], b"pipe")
    gw = cached_gw(gateway, up)
    with Conn(gw.port) as c:
        c.request("GET", "/api/c/pipe")
        c.send(b"GET /api/c/pipe HTTP/1.1\r\nHost: gw.test\r\n\r\n" * 3)
        for _ in range(3):
            r = c.read_response()
            assert r.body == b"pipe" and "hit" in cache_status(r)
    # HTTP/1.0: a hit says keep-alive only when asked, and closes otherwise.
    with Conn(gw.port) as c:
        c.send(b"GET /api/c/pipe HTTP/1.0\r\nHost: gw.test\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.body == b"pipe" and (r.header("Connection") or "").lower() == "keep-alive"
    with Conn(gw.port) as c:
        c.send(b"GET /api/c/pipe HTTP/1.0\r\nHost: gw.test\r\n\r\n")
        r = c.read_response()
        assert r.body == b"pipe" and c.is_closed()
    assert up.request_count() == 1


def test_stale_while_revalidate_background_304_refreshes_headers(gateway, upstream):
    up = upstream("origin")
    gw = cached_gw(gateway, up)
    seen = []

    def h(req):
        seen.append(req.header("If-None-Match"))
        if req.header("If-None-Match") == '"w1"':
            return 304, [("Cache-Control", "max-age=600"), ("ETag", '"w1"'), ("X-Version", "2")], b""
        return 200, [("Cache-Control", "max-age=0, stale-while-revalidate=600"), ("ETag", '"w1"'),
                     ("X-Version", "1")], b"body"
    up.handler = h
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/c/swr304").header("X-Version") == "1"
        r = c.request("GET", "/api/c/swr304")  # stale at once, then refreshed by a 304
        assert r.header("X-Version") == "1" and "stale-while-revalidate" in cache_status(r), r
        r = c.request("GET", "/api/c/swr304")  # same connection: after the refresh
        assert r.header("X-Version") == "2" and r.body == b"body", r
        assert cache_status(r).startswith("ringway; hit; ttl="), r
    assert seen == [None, '"w1"']
