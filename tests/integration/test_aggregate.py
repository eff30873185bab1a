"""Aggregate endpoints (issue 7): one request fans out to several JSON upstreams and the bodies
are merged. Uses tiny raw-socket JSON upstreams defined here (per-path status, body, delay,
chunked framing) and the real binary with a JSON config file."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from client import Conn
from upstreams import refused_port


class JsonUpstream:
    """Threaded HTTP/1.1 keep-alive server. routes: path (without query) -> dict with body (bytes
    or a JSON-able object), status, delay (seconds before answering), chunked."""

    def __init__(self, routes: dict):
        self.routes = routes
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict]] = []  # (target, headers lower-cased)
        self.bytes_received = 0
        self.accepts = 0
        self.stopping = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.socks: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                continue
            with self.lock:
                self.accepts += 1
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket):
        s.settimeout(0.5)
        buf = b""
        try:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buf:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        if self.stopping.is_set():
                            return
                        continue
                    if not chunk:
                        return
                    with self.lock:
                        self.bytes_received += len(chunk)
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                with self.lock:
                    self.requests.append((target, headers))
                spec = self.routes.get(target.split("?")[0], {"status": 404, "body": {"e": 1}})
                if spec.get("delay"):
                    time.sleep(spec["delay"])
                body = spec.get("body", {})
                if callable(body):
                    body = body(target, headers)
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode()
                status = spec.get("status", 200)
                if spec.get("chunked"):
                    out = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n").encode()
                    for i in range(0, len(body), 7):
                        piece = body[i:i + 7]
                        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
                    out += b"0\r\n\r\n"
                else:
                    out = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                s.sendall(out)
        except OSError:
            return
        finally:
            s.close()

    def stop(self):
        self.stopping.set()
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(timeout=2)


@pytest.fixture
def json_upstream():
    started = []

    def make(routes):
        u = JsonUpstream(routes)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


def start(gateway, tmp_path, aggregates, args=None, routes=None, threads=2):
    cfg = tmp_path / "agg.json"
    cfg.write_text(json.dumps({"aggregates": aggregates}))
    return gateway(routes=routes, args=["--config", str(cfg)] + (args or []), threads=threads)


def get(gw, target, headers=None):
    with Conn(gw.port) as c:
        return c.request("GET", target, headers)


def backend(name, up, path, **kw):
    d = {"name": name, "upstream": up if isinstance(up, str) else up.url, "path": path}
    d.update(kw)
    return d


def test_two_legs_merged_with_query_and_headers(gateway, tmp_path, json_upstream):
    users = json_upstream({"/u/42": {"body": {"id": 42, "name": "Ada"}}})
    orders = json_upstream({"/orders": {"body": {"orders": [{"id": 7}], "total": 1}}})
    gw = start(gateway, tmp_path, [{
        "endpoint": "/profile/{id}", "headers": ["X-Trace"],
        "backends": [backend("user", users, "/u/{id}"), backend("orders", orders, "/orders")]}])
    r = get(gw, "/profile/42?x=1&y=%41b", [("X-Trace", "t-1"), ("X-Other", "no")])
    assert r.status == 200, r
    assert r.header("content-type") == "application/json"
    assert r.header("x-gateway-completed") == "true"
    assert r.json() == {"id": 42, "name": "Ada", "orders": [{"id": 7}], "total": 1}
    timing = r.header("server-timing")
    assert timing.startswith("user;dur=") and ", orders;dur=" in timing
    target, headers = users.requests[0]
    assert target == "/u/42?x=1&y=%41b"  # the query is passed byte-exact
    assert headers["host"] == f"127.0.0.1:{users.port}"
    assert headers["x-trace"] == "t-1"
    assert "x-other" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert orders.requests[0][0] == "/orders?x=1&y=%41b"


def test_three_legs_and_connection_reuse(gateway, tmp_path, json_upstream):
    a = json_upstream({"/a": {"body": {"a": 1, "k": "a"}}})
    b = json_upstream({"/b": {"body": {"b": 2, "k": "b"}, "chunked": True}})
    c = json_upstream({"/c": {"body": {"c": 3}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/abc", "backends": [
        backend("a", a, "/a"), backend("b", b, "/b"), backend("c", c, "/c")]}],
        args=["--threads", "1"])
    with Conn(gw.port) as conn:
        for _ in range(3):
            r = conn.request("GET", "/abc")
            assert r.status == 200, r
            # later leg wins a key clash (shallow merge), chunked leg decoded
            assert r.json() == {"a": 1, "k": "b", "b": 2, "c": 3}
    assert len(a.requests) == 3 and a.accepts == 1  # pooled keep-alive connection reused
    assert b.accepts == 1


def test_field_operations(gateway, tmp_path, json_upstream):
    up = json_upstream({
        "/user": {"body": {"data": {"user": {"id": 1, "name": "Ada", "secret": "s",
                                              "addr": {"city": "X", "zip": "1"}}}}},
        "/list": {"body": [{"i": 1}, {"i": 2}]},
        "/raw": {"body": {"x": 1}},
        "/deny": {"body": {"keep": 1, "drop": 2, "old": 3}},
    })
    gw = start(gateway, tmp_path, [{"endpoint": "/ops", "backends": [
        backend("user", up, "/user", target="data.user", allow=["id", "name", "addr.city"],
                mapping={"name": "full_name"}),
        backend("list", up, "/list", is_collection=True, group="items"),
        backend("raw", up, "/raw", group="raw"),
        backend("deny", up, "/deny", deny=["drop"], mapping={"old": "new"}),
    ]}])
    r = get(gw, "/ops")
    assert r.status == 200, r
    assert r.json() == {"id": 1, "full_name": "Ada", "addr": {"city": "X"},
                        "items": [{"i": 1}, {"i": 2}], "raw": {"x": 1}, "keep": 1, "new": 3}


def test_slow_leg_past_deadline(gateway, tmp_path, json_upstream):
    fast = json_upstream({"/f": {"body": {"f": 1}}})
    slow = json_upstream({"/s": {"body": {"s": 1}, "delay": 3.0}})
    gw = start(gateway, tmp_path, [{"endpoint": "/mix", "deadline": "500ms", "backends": [
        backend("fast", fast, "/f"), backend("slow", slow, "/s")]}])
    t0 = time.monotonic()
    r = get(gw, "/mix")
    elapsed = time.monotonic() - t0
    assert r.status == 200, r
    assert r.header("x-gateway-completed") == "false"
    doc = r.json()
    assert doc["f"] == 1
    assert doc["_errors"]["slow"]["status"] == 504
    assert 0.5 <= elapsed < 2.5  # the deadline (never before it), not the slow leg's 3 s


def test_all_legs_past_deadline_is_504(gateway, tmp_path, json_upstream):
    slow = json_upstream({"/s": {"body": {"s": 1}, "delay": 3.0}})
    gw = start(gateway, tmp_path, [{"endpoint": "/slow", "deadline": "300ms", "backends": [
        backend("one", slow, "/s"), backend("two", slow, "/s")]}])
    r = get(gw, "/slow")
    assert r.status == 504, r


def test_leg_down_partial_502(gateway, tmp_path, json_upstream):
    up = json_upstream({"/ok": {"body": {"ok": True}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/p", "backends": [
        backend("ok", up, "/ok"), backend("down", f"http://127.0.0.1:{refused_port()}", "/x")]}])
    r = get(gw, "/p")
    assert r.status == 200, r
    assert r.header("x-gateway-completed") == "false"
    doc = r.json()
    assert doc["ok"] is True
    assert doc["_errors"]["down"]["status"] == 502


def test_invalid_json_and_oversized_legs(gateway, tmp_path, json_upstream):
    up = json_upstream({"/ok": {"body": {"ok": 1}}, "/bad": {"body": b"{not json"},
                        "/big": {"body": {"pad": "x" * 5000}},
                        "/bigchunked": {"body": {"pad": "y" * 5000}, "chunked": True},
                        "/err": {"status": 500, "body": {"e": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/q", "max_leg_body": 1024, "backends": [
        backend("ok", up, "/ok"), backend("bad", up, "/bad"), backend("big", up, "/big"),
        backend("bigc", up, "/bigchunked"), backend("err", up, "/err")]}])
    for _ in range(2):  # the second round runs over whatever connections the first one left
        r = get(gw, "/q")
        assert r.status == 200, r
        doc = r.json()
        assert doc["ok"] == 1
        assert set(doc["_errors"]) == {"bad", "big", "bigc", "err"}
        for leg in ("bad", "big", "bigc", "err"):
            assert doc["_errors"][leg]["status"] == 502


def test_chunked_legs_decoded_and_limited_by_their_decoded_size(gateway, tmp_path, json_upstream):
    # The upstream sends 7-byte chunks, so the framing is several times the data; the leg limit
    # applies to the decoded body, exactly.
    exact = {"pad": "z" * (1024 - 11)}  # {"pad": "..."}: 1,024 bytes of JSON
    assert len(json.dumps(exact)) == 1024
    over = {"pad": "z" * (1024 - 10)}
    up = json_upstream({"/exact": {"body": exact, "chunked": True},
                        "/over": {"body": over, "chunked": True},
                        "/small": {"body": {"s": [1, 2, 3]}, "chunked": True}})
    gw = start(gateway, tmp_path, [{"endpoint": "/c", "max_leg_body": 1024, "backends": [
        backend("exact", up, "/exact", group="exact"), backend("over", up, "/over"),
        backend("small", up, "/small")]}], threads=1)  # one worker: one pool
    accepts = []
    for _ in range(2):
        r = get(gw, "/c")
        assert r.status == 200, r
        doc = r.json()
        assert doc["exact"] == exact and doc["s"] == [1, 2, 3], doc
        assert doc["_errors"]["over"]["status"] == 502
        accepts.append(up.accepts)
    # Decoded legs leave their connection in sync for reuse; the failed one is not pooled.
    assert accepts == [3, 4], accepts


def test_all_legs_failed_502(gateway, tmp_path, json_upstream):
    up = json_upstream({"/bad": {"body": b"nope"}})
    gw = start(gateway, tmp_path, [{"endpoint": "/none", "backends": [
        backend("bad", up, "/bad"), backend("down", f"http://127.0.0.1:{refused_port()}", "/x")]}])
    r = get(gw, "/none")
    assert r.status == 502, r
    assert r.header("x-gateway-completed") == "false"
    assert set(r.json()["_errors"]) == {"bad", "down"}


def test_legs_run_concurrently(gateway, tmp_path, json_upstream):
    a = json_upstream({"/a": {"body": {"a": 1}, "delay": 0.5}})
    b = json_upstream({"/b": {"body": {"b": 1}, "delay": 0.5}})
    gw = start(gateway, tmp_path, [{"endpoint": "/both", "backends": [
        backend("a", a, "/a"), backend("b", b, "/b")]}])
    t0 = time.monotonic()
    r = get(gw, "/both")
    elapsed = time.monotonic() - t0
    assert r.status == 200 and r.json() == {"a": 1, "b": 1}, r
    assert elapsed < 0.9  # both legs at once, not one after the other


def test_seed_profile_and_recent_orders(gateway, tmp_path, json_upstream):
    users = json_upstream({"/users/7": {"body": {"id": 7, "name": "Grace", "email": "g@x",
                                                 "password_hash": "zz"}}})
    orders = json_upstream({"/orders": {"body": lambda target, h: {
        "orders": [{"id": 901, "user": target.split("user=")[1]}], "count": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/me/{uid}", "backends": [
        backend("profile", users, "/users/{uid}", group="profile", deny=["password_hash"]),
        backend("orders", orders, "/orders", group="recent_orders", allow=["orders"]),
    ]}])
    r = get(gw, "/me/7?user=7")
    assert r.status == 200, r
    assert r.json() == {"profile": {"id": 7, "name": "Grace", "email": "g@x"},
                        "recent_orders": {"orders": [{"id": 901, "user": "7"}]}}


def test_aggregate_behind_api_key(gateway, tmp_path, json_upstream):
    up = json_upstream({"/a": {"body": {"a": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/secure", "backends": [backend("a", up, "/a")]}],
               args=["--api-key", "alice=k-alice-0001", "--auth", "api-key"])
    r = get(gw, "/secure")
    assert r.status == 401, r
    time.sleep(0.2)
    assert up.bytes_received == 0 and up.accepts == 0
    r = get(gw, "/secure", [("X-API-Key", "k-alice-0001")])
    assert r.status == 200 and r.json() == {"a": 1}, r


def test_api_key_in_the_query_never_reaches_a_leg(gateway, tmp_path, json_upstream):
    # The key authenticates the client to the gateway; like a forwarded request, a leg gets the
    # client's query without it (issue 11: legs once built their own heads and leaked it).
    up = json_upstream({"/a/7": {"body": {"a": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/agg/{id}", "headers": ["X-API-Key"],
                                    "backends": [backend("a", up, "/a/{id}")]}],
               args=["--api-key", "alice=k-alice-0001", "--auth", "api-key",
                     "--api-key-query", "key"])
    r = get(gw, "/agg/7?x=1&key=k-alice-0001&y=2")
    assert r.status == 200 and r.json() == {"a": 1}, r
    target, headers = up.requests[0]
    assert target == "/a/7?x=1&y=2"
    assert "k-alice-0001" not in target
    # A key sent in the header is removed too, even when the endpoint passes that header.
    r = get(gw, "/agg/7", [("X-API-Key", "k-alice-0001")])
    assert r.status == 200, r
    target, headers = up.requests[1]
    assert target == "/a/7"
    assert "x-api-key" not in headers
    assert all("k-alice-0001" not in v for v in headers.values())


def test_legs_get_the_gateway_headers_of_a_forwarded_request(gateway, tmp_path, json_upstream):
    # Legs are written by the same head writer as forwarded requests: the client's own
    # X-Forwarded-Proto/Host are replaced by the gateway's, and --add-header applies.
    up = json_upstream({"/a": {"body": {"a": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/agg", "headers": ["X-Forwarded-Proto", "X-Trace"],
                                    "backends": [backend("a", up, "/a")]}],
               args=["--add-header", "X-Gateway: rw"])
    r = get(gw, "/agg", [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "10.9.8.7"),
                         ("X-Trace", "t"), ("Host", "api.example")])
    assert r.status == 200, r
    _, headers = up.requests[0]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "api.example"
    assert headers["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert headers["x-gateway"] == "rw"
    assert headers["x-trace"] == "t"
    assert headers["host"] == f"127.0.0.1:{up.port}"


def test_routes_still_work_and_unmatched_falls_through(gateway, tmp_path, json_upstream, echo):
    up = json_upstream({"/a": {"body": {"a": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/api/agg/{id}", "backends": [
        backend("a", up, "/a")]}], routes=[("/api/", echo)])
    assert get(gw, "/api/agg/1").json() == {"a": 1}
    r = get(gw, "/api/agg/1/more")  # not the pattern: the prefix route takes it
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert up.requests and len(up.requests) == 1


def test_client_disconnect_mid_aggregate(gateway, tmp_path, json_upstream):
    slow = json_upstream({"/s": {"body": {"s": 1}, "delay": 1.0}})
    fast = json_upstream({"/f": {"body": {"f": 1}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/x", "backends": [
        backend("slow", slow, "/s"), backend("fast", fast, "/f")]}])
    for _ in range(5):
        c = Conn(gw.port)
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.05)
        c.close()
    time.sleep(1.5)
    r = get(gw, "/x")  # still serving
    assert r.status == 200 and r.json() == {"s": 1, "f": 1}, r


def test_deadline_of_a_finished_aggregate_never_cuts_the_next_one(gateway, tmp_path, json_upstream):
    # Each aggregate on this keep-alive connection finishes at ~0.25 s of its 0.4 s deadline; the
    # previous request's deadline (removed when it finished) must not fire into the next one.
    up = json_upstream({"/a": {"body": {"a": 1}, "delay": 0.25}, "/b": {"body": {"b": 2}}})
    gw = start(gateway, tmp_path, [{"endpoint": "/ab", "deadline": "400ms", "backends": [
        backend("a", up, "/a"), backend("b", up, "/b")]}])
    with Conn(gw.port) as c:
        for _ in range(5):
            r = c.request("GET", "/ab")
            assert r.status == 200 and r.header("x-gateway-completed") == "true", r
            assert r.json() == {"a": 1, "b": 2}
    # Same on a deadline that does fire: the next request still gets its full deadline.
    with Conn(gw.port) as c:
        t0 = time.monotonic()
        r = c.request("GET", "/ab", [("X-Ignored", "1")])
        assert r.status == 200, r
        assert time.monotonic() - t0 < 0.4 + 1.0


def test_client_gone_mid_aggregate_frees_its_socket_before_the_deadline(gateway, tmp_path,
                                                                          json_upstream):
    # The deadline's io_uring timeout holds a reference to the client slot; closing the client
    # must remove it rather than keep the socket until the 10 s deadline.
    from test_splice import fd_kinds, wait_until
    slow = json_upstream({"/s": {"body": {"s": 1}, "delay": 5.0}})
    gw = start(gateway, tmp_path, [{"endpoint": "/x", "deadline": "10s", "backends": [
        backend("slow", slow, "/s")]}])
    pid = gw.proc.pid
    c = Conn(gw.port)
    c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert wait_until(lambda: len(slow.requests) == 1)  # the leg is waiting on the upstream
    during = fd_kinds(pid)[0]
    c.close()
    # the client's socket and the leg's connection both go
    assert wait_until(lambda: fd_kinds(pid)[0] <= during - 2, timeout=2.0), (during, fd_kinds(pid))


def test_flag_form(gateway, json_upstream):
    users = json_upstream({"/users/7": {"body": {"id": 7, "name": "Grace"}}})
    orders = json_upstream({"/v2/orders/7/recent": {"body": [{"id": 901}, {"id": 902}]}})
    gw = gateway(args=["--aggregate", f"/screen/{{id}}=user:{users.url}/users/{{id}},"
                                      f"orders[]:{orders.url}/v2/orders/{{id}}/recent"])
    r = get(gw, "/screen/7?x=1")
    assert r.status == 200, r
    assert r.header("x-gateway-completed") == "true", r.body
    assert r.json() == {"user": {"id": 7, "name": "Grace"}, "orders": [{"id": 901}, {"id": 902}]}
    assert users.requests[0][0] == "/users/7?x=1"  # the client's query string goes to every leg
    assert orders.requests[0][0] == "/v2/orders/7/recent?x=1"
    assert get(gw, "/screen/7/more").status == 404
    from conftest import http_get
    status, _, metrics = http_get(gw.admin_port, "/metrics")
    assert status == 200
    assert b'route_requests_total{route="/screen/{id}",code="2xx"} 1\n' in metrics, metrics


def test_per_endpoint_auth_and_rate_limit(gateway, tmp_path, json_upstream, echo):
    up = json_upstream({"/a": {"body": {"a": 1}}, "/b": {"body": {"b": 1}}})
    gw = start(gateway, tmp_path, [
        {"endpoint": "/private", "auth": "api-key", "backends": [backend("a", up, "/a")]},
        {"endpoint": "/limited", "rate_limits": ["2/m,burst=2"], "backends": [backend("b", up, "/b")]},
        {"endpoint": "/open", "backends": [backend("a", up, "/a")]},
    ], args=["--api-key", "alice=k-alice-0001"], routes=[("/plain/", echo)])
    before = len(up.requests)
    r = get(gw, "/private")
    assert r.status == 401 and r.header("www-authenticate") == "ApiKey", r
    assert len(up.requests) == before  # rejected before any leg started
    assert get(gw, "/private", [("X-API-Key", "k-alice-0001")]).json() == {"a": 1}
    assert get(gw, "/open").json() == {"a": 1}  # the global mode (none) elsewhere
    assert get(gw, "/plain/x").status == 200
    statuses = [get(gw, "/limited").status for _ in range(3)]
    assert statuses == [200, 200, 429], statuses
    r = get(gw, "/limited")
    assert r.status == 429 and int(r.header("retry-after")) > 0
    assert [get(gw, "/open").status for _ in range(3)] == [200, 200, 200]


def test_bad_config_rejected_by_t(ringway_bin, tmp_path):
    import subprocess
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"aggregates": [{"endpoint": "/x", "deadline": "2s", "backends": [
        {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a", "bogus": 1}]}]}))
    p = subprocess.run([str(ringway_bin), "-t", "--config", str(bad)], capture_output=True,
                       timeout=10)
    assert p.returncode != 0
    assert b"aggregates[0]" in p.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"aggregates": [{"endpoint": "/x", "deadline": "2s", "backends": [
        {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]}))
    p = subprocess.run([str(ringway_bin), "-t", "--config", str(good)], capture_output=True,
                       timeout=10)
    assert p.returncode == 0, p.stderr
