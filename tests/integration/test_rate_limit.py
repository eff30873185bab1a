"""Rate limiting (issue 5), end to end: the real binary in front of the echo upstream.

Rates are chosen so that the outcome does not depend on timing: 1/m or 2/m with a small burst
admits exactly the burst in any short test, so counts can be asserted exactly. The accuracy test
measures its own elapsed window and compares with limit x window + burst, +-5%.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from client import Conn, assert_problem, hammer

POLICY_RE = re.compile(r'^"([a-z0-9]+)";q=(\d+);w=(\d+)$')
RATELIMIT_RE = re.compile(r'^"([a-z0-9]+)";r=(\d+);t=(\d+)$')


def get(conn: Conn, path: str = "/api/x", headers=None):
    return conn.request("GET", path, headers or [])


def drive(port: int, n: int, headers=None, path: str = "/api/x"):
    """n sequential requests on one keep-alive connection; returns the responses."""
    with Conn(port) as c:
        return [get(c, path, headers) for _ in range(n)]


def statuses(resps) -> list[int]:
    return [r.status for r in resps]


def check_429(r, policy_q: int, policy_w: int) -> int:
    """A well-formed 429; returns Retry-After in seconds."""
    assert_problem(r, 429)
    ra = r.header("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) >= 1, r
    m = POLICY_RE.match(r.header("RateLimit-Policy") or "")
    assert m and int(m.group(2)) == policy_q and int(m.group(3)) == policy_w, r
    m2 = RATELIMIT_RE.match(r.header("RateLimit") or "")
    assert m2 and m2.group(1) == m.group(1), r
    assert int(m2.group(2)) == 0
    assert int(m2.group(3)) == int(ra)  # the draft: t is when a request is admitted again
    return int(ra)


@pytest.mark.parametrize("burst", [1, 4])
def test_over_limit_429_and_burst(gateway, echo, burst):
    gw = gateway(routes=[("/api/", echo)], args=["--rate-limit", f"1/m,burst={burst},key=ip"])
    resps = drive(gw.port, burst + 3)
    assert statuses(resps) == [200] * burst + [429] * 3
    for r in resps[:burst]:
        assert r.header("RateLimit") is None and r.header("RateLimit-Policy") is None
    for r in resps[burst:]:
        ra = check_429(r, 1, 60)
        assert ra <= 60
    # Rejected requests never reach the upstream.
    assert echo.request_count() == burst


def test_burst_defaults_to_rate(gateway, echo):
    gw = gateway(routes=[("/api/", echo)], args=["--rate-limit", "3/m"])
    assert statuses(drive(gw.port, 5)) == [200, 200, 200, 429, 429]
    assert echo.request_count() == 3


def test_headers_on_allowed_responses(gateway, echo):
    gw = gateway(routes=[("/api/", echo)], args=["--rate-limit", "2/m,burst=3", "--rate-limit-headers"])
    resps = drive(gw.port, 4)
    assert statuses(resps) == [200, 200, 200, 429]
    remaining = []
    for r in resps[:3]:
        assert POLICY_RE.match(r.header("RateLimit-Policy") or "").groups() == ("default", "2", "60"), r
        m = RATELIMIT_RE.match(r.header("RateLimit") or "")
        assert m, r
        remaining.append(int(m.group(2)))
        assert r.json()["upstream"] == "echo"  # the upstream's body is untouched
        assert r.header("X-Upstream") == "echo"
    assert remaining == [2, 1, 0]
    check_429(resps[3], 2, 60)


def test_legacy_headers(gateway, echo):
    gw = gateway(routes=[("/api/", echo)],
                 args=["--rate-limit", "2/m,burst=2", "--rate-limit-headers", "--rate-limit-legacy-headers"])
    resps = drive(gw.port, 3)
    assert statuses(resps) == [200, 200, 429]
    for r, left in zip(resps, [1, 0, 0]):
        assert r.header("X-RateLimit-Limit") == "2", r
        assert r.header("X-RateLimit-Remaining") == str(left), r
        assert (r.header("X-RateLimit-Reset") or "").isdigit(), r
        assert r.header("RateLimit") is None and r.header("RateLimit-Policy") is None
    assert_problem(resps[2], 429)
    assert resps[2].header("X-RateLimit-Reset") == resps[2].header("Retry-After")


def test_keys_isolated_by_header(gateway, echo):
    gw = gateway(routes=[("/api/", echo)], args=["--rate-limit", "1/m,burst=2,key=header:X-Client"])
    assert statuses(drive(gw.port, 4, [("X-Client", "noisy")])) == [200, 200, 429, 429]
    assert statuses(drive(gw.port, 3, [("X-Client", "quiet")])) == [200, 200, 429]
    # Clients without the header share one anonymous bucket rather than escaping the limit.
    assert statuses(drive(gw.port, 3)) == [200, 200, 429]
    assert echo.request_count() == 6


def test_keys_isolated_by_api_key(gateway, echo):
    gw = gateway(routes=[("/api/", echo)],
                 args=["--api-key", "a=key-aaaa-1", "--api-key", "b=key-bbbb-2", "--auth", "api-key",
                       "--rate-limit", "1/m,burst=2,key=api-key"])
    assert statuses(drive(gw.port, 3, [("X-API-Key", "key-aaaa-1")])) == [200, 200, 429]
    assert statuses(drive(gw.port, 3, [("X-API-Key", "key-bbbb-2")])) == [200, 200, 429]
    # Unauthenticated requests are refused by auth (401) and spend nobody's quota.
    assert statuses(drive(gw.port, 2, [("X-API-Key", "nope")])) == [401, 401]
    consumers = [dict((k.lower(), v) for k, v in r.headers)["x-consumer"] for r in echo.requests]
    assert sorted(consumers) == ["a", "a", "b", "b"]


def test_keys_isolated_by_jwt_subject(gateway, echo, tmp_path):
    import sys
    from conftest import REPO
    sys.path.insert(0, str(REPO / "tools"))
    import mint_token
    secret = tmp_path / "hs.secret"
    secret.write_bytes(b"0123456789abcdef0123456789abcdef")
    gw = gateway(routes=[("/api/", echo)],
                 args=["--jwt-key", f"k=secret:{secret}", "--jwt-claim-header", "sub=X-User-Id",
                       "--auth", "jwt", "--rate-limit", "1/m,burst=2,key=jwt-sub"])
    now = int(time.time())

    def bearer(sub):
        return [("Authorization", "Bearer " + mint_token.mint("HS256", str(secret),
                                                              {"sub": sub, "exp": now + 300}, kid="k"))]
    assert statuses(drive(gw.port, 3, bearer("ann"))) == [200, 200, 429]
    # A client-sent X-User-Id is not the subject: ann's bucket stays empty whatever it claims.
    assert statuses(drive(gw.port, 1, bearer("ann") + [("X-User-Id", "ben")])) == [429]
    assert statuses(drive(gw.port, 3, bearer("ben"))) == [200, 200, 429]
    assert echo.request_count() == 4


def test_route_scoped_limits_from_json(gateway, echo, tmp_path):
    cfg = tmp_path / "rl.json"
    cfg.write_text(json.dumps({
        "rate_limits": ["1/m,burst=3,route=/global/"],
        "routes": [
            {"prefix": "/limited/", "upstreams": [echo.url], "rate_limits": ["1/m,burst=1"]},
            {"prefix": "/free/", "upstreams": [echo.url]},
            {"prefix": "/global/", "upstreams": [echo.url]},
        ]}))
    gw = gateway(args=["--config", str(cfg)])
    assert statuses(drive(gw.port, 2, path="/limited/a")) == [200, 429]
    assert statuses(drive(gw.port, 4, path="/free/a")) == [200] * 4
    assert statuses(drive(gw.port, 4, path="/global/a")) == [200, 200, 200, 429]


def test_retry_after_is_honest(gateway, echo):
    # 30/m: one token every 2 s, so Retry-After is a real wait, not the 1 s floor.
    gw = gateway(routes=[("/api/", echo)], args=["--rate-limit", "30/m,burst=1"])
    with Conn(gw.port) as c:
        assert get(c).status == 200
        r = get(c)
        ra = check_429(r, 30, 60)
        assert 1 <= ra <= 2
        time.sleep(ra)
        assert get(c).status == 200, "a retry after Retry-After seconds was refused"
    assert echo.request_count() == 2


def test_bad_specs_exit_2(ringway_bin, tmp_path):
    import subprocess
    for spec, needle in (("10/x", "UNIT"), ("abc", "--rate-limit"), ("10/s,burst=-1", "--rate-limit"),
                         ("10/s,key=cookie", "--rate-limit"), ("10/s,key=jwt-sub", "jwt-sub")):
        r = subprocess.run([str(ringway_bin), "--listen", "127.0.0.1:1", "--threads", "1",
                            "--route", "/a/=http://127.0.0.1:9", "--rate-limit", spec],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL, cwd=tmp_path)
        assert r.returncode == 2, (spec, r)
        assert needle in r.stderr.decode(), (spec, r.stderr)


# ---- accuracy under load -----------------------------------------------------------------------

RATE = 100       # per second, for the whole process
BURST = 20
DURATION = 10.0  # seconds of offered load (issue 5: 10 s at several times the limit)


@pytest.mark.slow
@pytest.mark.parametrize("conns", [1, 64])
def test_accuracy_one_and_many_connections(gateway, echo, conns):
    # One key (the client address) over 1 connection, and over 64 connections that SO_REUSEPORT
    # spreads over both workers: the limit holds for the process either way.
    gw = gateway(routes=[("/api/", echo)], threads=2, access_log=False,
                 args=["--rate-limit", f"{RATE}/s,burst={BURST},key=ip"])
    counts = {"ok": 0, "limited": 0, "last_sent": 0.0}
    lock = threading.Lock()
    errors: list[str] = []
    # Every thread connects first, so the window starts with the first request, not with connects.
    start = time.monotonic() + 0.5
    stop_at = start + DURATION
    threads = [threading.Thread(target=hammer, args=(gw.port, "/api/x", start, stop_at, counts, lock, errors))
               for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    window = counts["last_sent"] - start
    expected = RATE * window + BURST
    offered = counts["ok"] + counts["limited"]
    # The load must really be several times the limit, or the test proves nothing.
    assert offered >= 3 * expected, f"only {offered} requests offered for {expected:.0f} admissible"
    assert 0.95 * expected <= counts["ok"] <= 1.05 * expected, (
        f"admitted {counts['ok']} in {window:.3f} s, expected {expected:.0f} +-5% "
        f"({counts['limited']} limited)")
    # Every admitted request reached the upstream and no rejected one did.
    assert echo.wait_requests(counts["ok"], timeout=5)
    time.sleep(0.2)
    assert echo.request_count() == counts["ok"]
    print(f"accuracy: {counts['ok']} admitted, {counts['limited']} limited in {window:.3f} s; "
          f"expected {expected:.1f}")

