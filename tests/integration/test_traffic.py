"""Upstream traffic management (issue 14): balancing, weights, consistent hash, circuit breaker,
outlier ejection, retries, active health checks and /upstreams, against real upstream processes
(threads of this pytest process, see upstreams.py) behind a real gateway with two workers.

Upstream.rewrite makes one instance slow, failing or silent for every path. Loads are small and
bounded (a few hundred requests); nothing here asserts a duration."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from client import Closed, Conn, assert_problem
from conftest import BINARY, free_port, http_get
from upstreams import Upstream

_configs = 0


def name_of(r):
    """The upstream that answered (its echo JSON says), or None for a gateway-made answer."""
    try:
        return r.json().get("upstream")
    except (ValueError, AttributeError):
        return None


def start(gateway, tmp_path, routes, args=(), threads=2):
    """A gateway whose routes come from a config file (the traffic keys are file-only)."""
    global _configs
    _configs += 1
    path = tmp_path / f"traffic-{_configs}.json"
    path.write_text(json.dumps({"routes": routes}))
    return gateway(routes=None, args=["--config", str(path), *args], threads=threads)


def check_config(tmp_path, doc, *flags):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(doc))
    return subprocess.run([str(BINARY), "-t", "--listen", f"127.0.0.1:{free_port()}", "--config",
                           str(path), *flags], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=20, text=True)


def load(port, path, clients=8, per_client=40, method="GET", new_conn_each=False):
    """Runs clients in parallel; returns [(status, upstream name or None, response)]."""
    out, lock = [], threading.Lock()

    def one(k):
        mine = []
        c = None
        for i in range(per_client):
            if c is None:
                c = Conn(port)
            try:
                r = c.request(method, f"{path}{k}-{i}")
            except Closed:
                mine.append((0, None, None))
                c.close()
                c = None
                continue
            name = name_of(r)
            mine.append((r.status, name, r))
            if new_conn_each or (r.header("connection") or "").lower() == "close":
                c.close()
                c = None
        if c is not None:
            c.close()
        with lock:
            out.extend(mine)

    ts = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


def sequential(port, path, n, new_conn_each=True, headers=None):
    out = []
    c = None
    for i in range(n):
        if c is None:
            c = Conn(port)
        r = c.request("GET", f"{path}{i}", headers=headers)
        out.append((r.status, name_of(r), r))
        if new_conn_each or (r.header("connection") or "").lower() == "close":
            c.close()
            c = None
    if c is not None:
        c.close()
    return out


# --- configuration -----------------------------------------------------------------------------

def test_bad_traffic_settings_are_refused_at_start(tmp_path, ringway_bin):
    up = "http://127.0.0.1:9"
    good = {"prefix": "/a/", "upstreams": [up, {"url": "http://127.0.0.1:10", "weight": 3}],
            "balance": {"hash": "header:X-User"},
            "outlier": {"consecutive_failures": 3, "base_ejection": "1s", "max_ejected_percent": 50},
            "retries": {"attempts": 2, "on": ["connect-failure", "503"], "budget_percent": 20},
            "circuit_breaker": {"max_requests": 10}}
    p = check_config(tmp_path, {"routes": [good]})
    assert p.returncode == 0, p.stderr
    bad = [
        ({"balance": "fastest"}, "balance"),
        ({"balance": {"hash": "query:x"}}, "hash"),
        ({"balance": {"hash": "header:"}}, "hash"),
        ({"upstreams": [{"url": up, "weight": 0}]}, "weight"),
        ({"upstreams": [{"url": up, "wieght": 2}]}, "wieght"),
        ({"upstreams": [{"weight": 2}]}, "url"),
        ({"outlier": {"consecutive": 3}}, "consecutive"),
        ({"outlier": {"max_ejected_percent": 101}}, "max_ejected_percent"),
        ({"retries": {"on": ["500"]}}, "on"),
        ({"retries": {"attempts": 0}}, "attempts"),
        ({"circuit_breaker": {"max_requests": 0}}, "max_requests"),
        ({"health_check": {"path": "healthz"}}, "path"),
        ({"health_check": {"interval": "100ms", "timeout": "1s"}}, "timeout"),
        ({"health_check": {"expect": "600"}}, "expect"),
        ({"dns_refresh": "0s"}, "dns_refresh"),
        ({"dns_refresh": "soon"}, "dns_refresh"),
        ({"dns_max_addresses": 0}, "dns_max_addresses"),
    ]
    for change, word in bad:
        route = {"prefix": "/a/", "upstreams": [up]} | change
        p = check_config(tmp_path, {"routes": [route]})
        assert p.returncode != 0, (change, p.stdout)
        assert word in p.stderr, (change, p.stderr)
    p = check_config(tmp_path, {"routes": [{"prefix": "/a/", "upstreams": [up]}]}, "--balance", "hash")
    assert p.returncode != 0 and "--balance" in p.stderr, p.stderr
    p = check_config(tmp_path, {"routes": [{"prefix": "/a/", "upstreams": [up]}]}, "--balance", "random")
    assert p.returncode == 0, p.stderr


# --- balancing ---------------------------------------------------------------------------------

def test_least_request_gives_a_slow_instance_a_small_share(gateway, upstream, tmp_path):
    ups = [upstream(f"u{i}") for i in range(3)]
    ups[2].rewrite = lambda p: "/slow/50"
    gw = start(gateway, tmp_path, [{"prefix": "/lr/", "upstreams": [u.url for u in ups]}])
    res = load(gw.port, "/lr/", clients=8, per_client=40)
    assert all(s == 200 for s, _, _ in res), [s for s, _, _ in res if s != 200][:5]
    slow = sum(1 for _, n, _ in res if n == "u2")
    assert slow <= 0.15 * len(res), (slow, len(res))
    # round robin, same load, for contrast: the slow instance gets its third
    gw2 = start(gateway, tmp_path, [{"prefix": "/rr/", "upstreams": [u.url for u in ups],
                                     "balance": "round_robin"}])
    res = load(gw2.port, "/rr/", clients=4, per_client=15)
    assert sum(1 for _, n, _ in res if n == "u2") >= 0.25 * len(res)


def test_weights_share_round_robin(gateway, upstream, tmp_path):
    a, b = upstream("a"), upstream("b")
    gw = start(gateway, tmp_path, [{"prefix": "/w/", "balance": "round_robin",
                                    "upstreams": [{"url": a.url, "weight": 3}, b.url]}], threads=1)
    res = sequential(gw.port, "/w/", 40, new_conn_each=False)
    names = [n for _, n, _ in res]
    assert names.count("a") == 30 and names.count("b") == 10, names


def test_consistent_hash_keeps_keys_when_an_instance_is_added(gateway, upstream, tmp_path):
    ups = [upstream(f"h{i}") for i in range(4)]

    def owners(gw, keys):
        out = {}
        with Conn(gw.port) as c:
            for k in keys:
                r = c.request("GET", "/h/x", headers=[("X-User", k)])
                assert r.status == 200, r
                out[k] = name_of(r)
        return out

    keys = [f"user-{i}" for i in range(2000)]
    route = {"prefix": "/h/", "balance": {"hash": "header:X-User"}}
    three = start(gateway, tmp_path, [route | {"upstreams": [u.url for u in ups[:3]]}])
    before = owners(three, keys)
    assert owners(three, keys[:20]) == {k: before[k] for k in keys[:20]}  # same key, same instance
    assert len(set(before.values())) == 3
    four = start(gateway, tmp_path, [route | {"upstreams": [u.url for u in ups]}])
    after = owners(four, keys)
    kept = sum(1 for k in keys if before[k] == after[k])
    assert kept >= 0.70 * len(keys), kept
    assert all(after[k] == "h3" for k in keys if before[k] != after[k])  # only the new one gains


# --- circuit breaker ---------------------------------------------------------------------------

def test_circuit_breaker_answers_503_at_the_limit(gateway, upstream, tmp_path):
    slow = upstream("slow")
    slow.rewrite = lambda p: "/slow/1500"
    gw = start(gateway, tmp_path, [{"prefix": "/cb/", "upstreams": [slow.url],
                                    "circuit_breaker": {"max_requests": 1}}])
    first = Conn(gw.port)
    first.send(b"GET /cb/1 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert slow.wait_requests(1)
    with Conn(gw.port) as c:
        r = c.request("GET", "/cb/2")
        assert_problem(r, 503)
        assert b"circuit breaker" in r.body
    assert first.read_response().status == 200
    first.close()
    with Conn(gw.port) as c:  # the slot was given back
        assert c.request("GET", "/cb/3").status == 200
    assert slow.request_count() == 2


# --- passive health: outlier ejection and panic mode ------------------------------------------

def upstreams_doc(gw):
    status, headers, body = http_get(gw.admin_port, "/upstreams")
    assert status == 200 and headers["content-type"].startswith("application/json"), (status, headers)
    return json.loads(body)


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_outlier_ejects_after_exactly_n_failures_across_workers_and_returns(gateway, upstream, tmp_path):
    good, bad = upstream("good"), upstream("bad")
    bad.rewrite = lambda p: "/status/503"
    gw = start(gateway, tmp_path, [{"prefix": "/o/", "upstreams": [good.url, bad.url],
                                    "balance": "round_robin",
                                    "outlier": {"consecutive_failures": 3, "base_ejection": "3s",
                                                "max_ejected_percent": 50}}])
    # A new connection per request: the kernel spreads them over both workers, and the count of
    # consecutive failures is one for the process, so exactly 3 requests reach the bad instance.
    res = sequential(gw.port, "/o/", 30)
    assert bad.request_count() == 3, bad.request_count()
    assert sum(1 for s, _, _ in res if s == 503) == 3
    assert all(n == "good" for s, n, _ in res if s == 200)
    doc = upstreams_doc(gw)
    inst = {i["address"]: i for i in doc["clusters"][0]["instances"]}
    b = inst[bad.url.removeprefix("http://")]
    assert b["ejections"] == 1 and b["ejected_for_ms"] > 0, b
    assert doc["clusters"][0]["ejected"] == 1
    # It recovers; once its ejection is over it takes traffic again.
    bad.rewrite = None
    assert wait_for(lambda: upstreams_doc(gw)["clusters"][0]["ejected"] == 0)
    res = sequential(gw.port, "/o/", 10)
    assert all(s == 200 for s, _, _ in res)
    assert bad.request_count() > 3
    text = http_get(gw.admin_port, "/metrics")[2].decode()
    assert f'ringway_upstream_instance_ejections_total{{route="/o/",instance="{bad.url[7:]}"}} 1' in text


def test_panic_mode_balances_over_all_when_most_are_ejected(gateway, upstream, tmp_path):
    ups = [upstream(f"p{i}") for i in range(4)]
    for u in ups[1:]:
        u.rewrite = lambda p: "/status/503"
    gw = start(gateway, tmp_path, [{"prefix": "/p/", "upstreams": [u.url for u in ups],
                                    "balance": "round_robin",
                                    "outlier": {"consecutive_failures": 1, "base_ejection": "30s",
                                                "max_ejected_percent": 100}}])
    sequential(gw.port, "/p/", 12)
    assert upstreams_doc(gw)["clusters"][0]["ejected"] == 3
    before = [u.request_count() for u in ups]
    res = sequential(gw.port, "/p/", 40, new_conn_each=False)
    # 1 of 4 in service is below the 50 % panic threshold: all four share the load, rather than
    # the last one taking everything.
    assert all(ups[i].request_count() > before[i] for i in range(1, 4)), [u.request_count() for u in ups]
    assert all(name_of(r) is not None for _, _, r in res)


# --- retries -----------------------------------------------------------------------------------

def test_idempotent_requests_see_no_errors_while_an_instance_is_killed(gateway, upstream, tmp_path):
    ups = [upstream(f"k{i}") for i in range(3)]
    gw = start(gateway, tmp_path, [{"prefix": "/k/", "upstreams": [u.url for u in ups],
                                    "outlier": {"consecutive_failures": 2, "base_ejection": "1s"},
                                    "retries": {"attempts": 3, "on": ["connect-failure", "reset"],
                                                "budget_percent": 100}}])
    result = []
    t = threading.Thread(target=lambda: result.extend(load(gw.port, "/k/", clients=4, per_client=60)))
    t.start()
    assert ups[1].wait_requests(20)
    port = ups[1].port
    ups[1].stop()  # killed: its connections reset, new ones refused
    time.sleep(0.3)
    again = Upstream("k1", port=port)  # and restarted where it was
    try:
        t.join(60)
    finally:
        again.stop()
    bad = [(s, r) for s, _, r in result if s != 200]
    assert not bad, bad[:3]
    assert len(result) == 240
    doc = upstreams_doc(gw)
    assert sum(i["retries"] for i in doc["clusters"][0]["instances"]) >= 1


def test_post_is_not_retried_after_its_bytes_went_out(gateway, upstream, tmp_path):
    bad, good = upstream("bad"), upstream("good")
    bad.rewrite = lambda p: "/reset"
    gw = start(gateway, tmp_path, [{"prefix": "/r/", "upstreams": [bad.url, good.url],
                                    "balance": "round_robin",
                                    "retries": {"attempts": 2, "on": ["connect-failure", "reset"]}}],
               threads=1)
    with Conn(gw.port) as c:  # the first pick of worker 0 is the first instance
        r = c.request("POST", "/r/p", body=b"x" * 100)
    assert_problem(r, 502)
    assert bad.request_count() == 1 and good.request_count() == 0
    with Conn(gw.port) as c:
        r1 = c.request("GET", "/r/g1")  # the cursor moved on: good
        r2 = c.request("GET", "/r/g2")  # bad resets it; retried on good
    assert r1.status == 200 and r1.header("x-gateway-attempts") is None
    assert r2.status == 200 and name_of(r2) == "good" and r2.header("x-gateway-attempts") == "2", r2
    assert bad.request_count() == 2 and good.request_count() == 2


def test_retry_budget_holds_under_a_total_outage(gateway, upstream, tmp_path):
    ups = [upstream(f"o{i}") for i in range(2)]
    for u in ups:
        u.rewrite = lambda p: (time.sleep(1.0), "/status/503")[1]
    gw = start(gateway, tmp_path, [{"prefix": "/b/", "upstreams": [u.url for u in ups],
                                    "retries": {"attempts": 2, "on": ["503"], "budget_percent": 20}}])
    res = load(gw.port, "/b/", clients=12, per_client=1)
    assert len(res) == 12 and all(s == 503 for s, _, _ in res)
    total = sum(u.request_count() for u in ups)
    # 12 requests in flight allow max(3, 20 % of 12) = 3 retries at once; without a budget all
    # 12 would go twice.
    assert 12 <= total <= 15, total
    text = http_get(gw.admin_port, "/metrics")[2].decode()
    refused = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("ringway_upstream_instance_retries_refused_total{"))
    assert refused >= 9, refused


# --- active health checks ----------------------------------------------------------------------

def client_requests(u):
    return [r for r in list(u.requests) if r.path != "/healthz"]


def probes(u):
    return [r for r in list(u.requests) if r.path == "/healthz"]


def test_active_checks_take_a_silent_instance_out_and_bring_it_back(gateway, upstream, tmp_path):
    ups = [upstream(f"a{i}") for i in range(3)]
    silent = ups[2]
    silent.rewrite = lambda p: "/hang"  # accepts, reads, never answers
    gw = start(gateway, tmp_path, [{"prefix": "/a/", "upstreams": [u.url for u in ups],
                                    "health_check": {"path": "/healthz", "interval": "200ms",
                                                     "timeout": "100ms", "healthy": 2,
                                                     "unhealthy": 2, "expect": "200-299"}}])

    def state(u):
        for i in upstreams_doc(gw)["clusters"][0]["instances"]:
            if i["address"] == u.url[7:]:
                return i
        raise AssertionError(u.url)

    assert wait_for(lambda: not state(silent)["healthy"])
    assert all(state(u)["healthy"] for u in ups[:2])
    res = sequential(gw.port, "/a/", 30)
    assert all(s == 200 for s, _, _ in res)
    assert client_requests(silent) == []
    p = probes(ups[0])[0]
    assert p.method == "GET" and p.header("connection") == "close" and p.header("host") == ups[0].url[7:]
    text = http_get(gw.admin_port, "/metrics")[2].decode()
    assert f'ringway_upstream_instance_healthy{{route="/a/",instance="{silent.url[7:]}"}} 0' in text
    silent.rewrite = None  # recovers: two passing probes bring it back
    assert wait_for(lambda: state(silent)["healthy"])
    sequential(gw.port, "/a/", 30, new_conn_each=False)
    assert len(client_requests(silent)) > 0


def test_each_instance_gets_one_probe_per_interval_from_the_whole_process(gateway, upstream, tmp_path):
    ups = [upstream(f"c{i}") for i in range(2)]
    began = time.monotonic()
    gw = start(gateway, tmp_path, [{"prefix": "/c/", "upstreams": [u.url for u in ups],
                                    "health_check": {"interval": "200ms", "timeout": "150ms"}}])
    assert wait_for(lambda: all(len(probes(u)) >= 5 for u in ups))
    time.sleep(0.5)
    counts = [len(probes(u)) for u in ups]
    elapsed = time.monotonic() - began
    # Both workers look every tick; only the one that claims an interval probes it. Probing per
    # worker would send about twice this many.
    for n in counts:
        assert n <= elapsed / 0.2 + 1, (counts, elapsed)
    assert gw.admin_port


def test_per_try_timeout_retries_a_silent_instance_elsewhere(gateway, upstream, tmp_path):
    silent, good = upstream("silent"), upstream("good")
    silent.rewrite = lambda p: "/hang"
    gw = start(gateway, tmp_path, [{"prefix": "/t/", "upstreams": [silent.url, good.url],
                                    "balance": "round_robin",
                                    "retries": {"attempts": 2, "on": ["timeout"],
                                                "per_try_timeout": "300ms"}}],
               args=["--upstream-response-timeout", "20s"], threads=1)
    with Conn(gw.port, timeout=5.0) as c:  # the first pick of worker 0 is the silent instance
        r = c.request("GET", "/t/x")
    assert r.status == 200 and name_of(r) == "good", r
    assert r.header("x-gateway-attempts") == "2"
    assert silent.request_count() == 1


def test_circuit_breaker_connection_limit(gateway, upstream, tmp_path):
    slow = upstream("slow")
    slow.rewrite = lambda p: "/slow/1000" if p.startswith("/slow") else p
    gw = start(gateway, tmp_path, [{"prefix": "/cc/", "upstreams": [slow.url],
                                    "circuit_breaker": {"max_connections": 1}}], threads=1)
    first = Conn(gw.port)
    first.send(b"GET /cc/slow HTTP/1.1\r\nHost: t\r\n\r\n")
    assert slow.wait_requests(1)
    with Conn(gw.port) as c:  # a second connection to the instance would pass the limit
        r = c.request("GET", "/cc/2")
        assert_problem(r, 503)
        assert b"connection limit" in r.body
    assert first.read_response().status == 200
    first.close()
    with Conn(gw.port) as c:  # the pooled connection is reused: within the limit
        assert c.request("GET", "/cc/3").status == 200
    doc = upstreams_doc(gw)
    assert doc["clusters"][0]["instances"][0]["breaker_rejections"] == 1


def test_hash_on_cookie_and_client_address(gateway, upstream, tmp_path):
    ups = [upstream(f"q{i}") for i in range(3)]
    urls = [u.url for u in ups]
    gw = start(gateway, tmp_path, [
        {"prefix": "/ck/", "upstreams": urls, "balance": {"hash": "cookie:session"}},
        {"prefix": "/ip/", "upstreams": urls, "balance": {"hash": "ip"}}])
    owner = {}
    with Conn(gw.port) as c:
        for i in range(60):
            k = f"s{i % 20}"
            r = c.request("GET", "/ck/x", headers=[("Cookie", f"theme=dark; session={k}; x=1")])
            owner.setdefault(k, set()).add(name_of(r))
        ip_owners = {name_of(c.request("GET", f"/ip/{i}")) for i in range(20)}
    assert all(len(v) == 1 for v in owner.values()), owner  # a session sticks to its instance
    assert len({next(iter(v)) for v in owner.values()}) >= 2  # sessions spread
    assert len(ip_owners) == 1  # one client address, one instance


def test_aggregate_legs_go_through_the_breaker_and_passive_health(gateway, upstream, tmp_path):
    slow, bad = upstream("slow"), upstream("bad")
    slow.rewrite = lambda p: "/slow/1000"
    bad.rewrite = lambda p: "/status/503"
    path = tmp_path / "agg.json"
    path.write_text(json.dumps({"aggregates": [{
        "endpoint": "/ag", "deadline": "5s",
        "backends": [{"name": "s", "upstream": slow.url, "path": "/x", "group": "s"},
                     {"name": "b", "upstream": bad.url, "path": "/y", "group": "b"}],
        "circuit_breaker": {"max_requests": 1},
        "outlier": {"consecutive_failures": 2, "base_ejection": "30s"}}]}))
    gw = gateway(routes=None, args=["--config", str(path)])
    first = Conn(gw.port)
    first.send(b"GET /ag HTTP/1.1\r\nHost: t\r\n\r\n")
    assert slow.wait_requests(1)
    with Conn(gw.port) as c:
        r = c.request("GET", "/ag")  # the slow backend is at its limit: that leg fails at once
    doc = r.json()
    assert doc["_errors"]["s"]["status"] == 503, doc
    assert first.read_response().status == 200
    first.close()
    assert slow.request_count() == 1
    clusters = {c["route"]: c for c in upstreams_doc(gw)["clusters"]}
    assert clusters["/ag s"]["instances"][0]["breaker_rejections"] == 1
    assert clusters["/ag b"]["instances"][0]["ejections"] == 1  # two 503 legs in a row
