"""Cluster-scoped rate limits through Redis (issue 15), end to end: real ringway processes, a real
redis-server (Debian's) started here on a free loopback port or a unix socket, the echo upstream
counting what was admitted.

The numbers come from the documented bound (src/filter/rate_limit/cluster_lease.h): in a window
of D seconds with P gateways, admitted <= B + R*D + min(P*S, R*TTL), where S, the tokens one
process can hold, is at most 2L + W*L (its refill lease on top of a half-spent one, plus what
each of its W workers asked for its own waiting requests). No test asserts a duration: the
failure policy is observed by its effect, bounded by --upstream-response-timeout (a request
paused longer than that would be a 504).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from client import Conn, assert_problem, hammer
from conftest import free_port, http_get, metric

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
LIBFAKETIME = os.environ.get("RW_TEST_FAKETIME", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
LEASE_TTL = 0.5  # filter::kLeaseTtlNs

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS), reason="redis-server not installed")


class Redis:
    """A redis-server of our own, without persistence, on a loopback port and a unix socket."""

    def __init__(self, workdir: Path, password: str | None = None):
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.sock = str(workdir / "redis.sock")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", str(self.workdir)]
            + (["--requirepass", self.password] if self.password else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def command(self, *args: str):
        """One command over RESP; returns a str, int, list or None (errors raise)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_command("AUTH", self.password))
                _read_reply(f)
            s.sendall(_command(*args))
            return _read_reply(f)

    def calls(self) -> int:
        """Commands the gateways sent: EVALSHA and SCRIPT (INFO commandstats)."""
        total = 0
        for line in self.command("INFO", "commandstats").splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_script", "cmdstat_eval:")):
                total += int(line.split("calls=")[1].split(",")[0])
        return total


def _command(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(b), b)
    return out


def _read_reply(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise OSError(f"bad reply {line!r}")


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    yield r
    r.stop()


def cluster_gateway(gateway, echo, redis_arg: str, spec: str, *extra: str, env: dict | None = None):
    args = ["--rate-limit", spec, "--redis", redis_arg, *extra]
    if env is None:
        return gateway(routes=[("/api/", echo)], threads=2, access_log=False, args=args)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return gateway(routes=[("/api/", echo)], threads=2, access_log=False, args=args)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- the limit holds for the cluster ------------------------------------------------------------

RATE, BURST = 200, 50
LEASE = max(1, min(BURST // 8, int(RATE * LEASE_TTL)))  # cluster_lease_size(), lease divisor 8
WORKERS, GATEWAYS = 2, 3
HELD = 2 * LEASE + WORKERS * LEASE  # S: what one process can hold
DURATION = 4.0


@pytest.mark.slow
def test_three_gateways_share_one_limit(gateway, echo, redis):
    """Three gateways x 2 workers, load skewed 60/30/10 (by client connections), the busiest one
    under faketime 30 s ahead: the upstream sees at most the bound and at least 95% of the ideal,
    and Redis sees at most one command per ten requests."""
    spec = f"{RATE}/s,burst={BURST},key=ip,scope=cluster"
    env = None
    if os.path.exists(LIBFAKETIME):
        # libfaketime shifts every clock the process reads, CLOCK_MONOTONIC included: the gateway
        # must not care, since Redis decides with its own clock and leases are timed by durations.
        env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "+30s", "ASAN_OPTIONS": "verify_asan_link_order=0"}
    gws = [cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", spec, env=env),
           cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", spec),
           cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", spec)]
    if env is not None:  # the preload really took: the process sees a clock 30 s ahead
        pid = gws[0].proc.pid
        assert any(LIBFAKETIME in line for line in Path(f"/proc/{pid}/maps").read_text().splitlines())
    calls_before = redis.calls()
    out = {"ok": 0, "limited": 0, "last_sent": 0.0}
    lock = threading.Lock()
    errors: list[str] = []
    start = time.monotonic() + 0.5
    stop_at = start + DURATION
    threads = []
    for gw, conns in zip(gws, (6, 3, 1)):
        threads += [threading.Thread(target=hammer, args=(gw.port, "/api/x", start, stop_at, out, lock, errors))
                    for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    window = out["last_sent"] - start
    ideal = BURST + RATE * window
    bound = ideal + min(GATEWAYS * HELD, RATE * LEASE_TTL)
    offered = out["ok"] + out["limited"]
    assert offered >= 3 * ideal, f"only {offered} requests offered for {ideal:.0f} admissible"
    assert echo.wait_requests(out["ok"], timeout=5)
    time.sleep(0.2)
    admitted = echo.request_count()
    assert admitted == out["ok"]  # every 200 reached the upstream, no 429 did
    assert 0.95 * ideal <= admitted <= bound, (
        f"admitted {admitted} in {window:.3f} s: ideal {ideal:.0f}, bound {bound:.0f} "
        f"({out['limited']} limited)")
    calls = redis.calls() - calls_before
    assert calls * 10 <= offered, f"{calls} Redis commands for {offered} requests"
    print(f"cluster: {admitted} admitted of {offered} in {window:.3f} s (ideal {ideal:.0f}, bound {bound:.0f}); "
          f"{calls} Redis commands ({1000 * calls / max(1, admitted):.0f} per 1000 admitted)")


# ---- the replies ---------------------------------------------------------------------------------

def test_429_fields_match_local_limits_and_rejections_are_free(gateway, echo, redis):
    """Over the unix socket: burst 3 at 2/m admits exactly 3; the 429s carry the same fields as a
    local limit's; Redis' bucket is not written by the rejections (nor asked about them)."""
    spec = "2/m,burst=3,key=ip"
    gw = cluster_gateway(gateway, echo, f"unix:{redis.sock}", spec + ",scope=cluster")
    local = gateway(routes=[("/api/", echo)], threads=2, access_log=False, args=["--rate-limit", spec])
    with Conn(gw.port) as c:
        resps = [c.request("GET", "/api/x") for _ in range(4)]
        assert [r.status for r in resps] == [200, 200, 200, 429]
        bucket = "rw:rl:2/m,b=3,ip:127.0.0.1"
        before = redis.command("HGETALL", bucket)
        assert before, "the bucket lives in Redis"
        calls = redis.calls()
        more = [c.request("GET", "/api/x") for _ in range(5)]
        assert [r.status for r in more] == [429] * 5
        assert redis.command("HGETALL", bucket) == before
        assert redis.calls() == calls
    with Conn(local.port) as c:
        lresps = [c.request("GET", "/api/x") for _ in range(4)]
    assert [r.status for r in lresps] == [200, 200, 200, 429]
    for r in (resps[3], more[0]):
        assert_problem(r, 429)
    fields = ("Retry-After", "RateLimit-Policy", "RateLimit", "Content-Type")
    for name in fields:
        assert resps[3].header(name) is not None, name
        assert resps[3].header(name) == lresps[3].header(name) or name in ("Retry-After", "RateLimit"), name
    assert resps[3].header("RateLimit-Policy") == '"default";q=2;w=60'
    assert resps[3].header("RateLimit").startswith('"default";r=0;t=')
    assert resps[3].header("RateLimit").endswith(";t=" + resps[3].header("Retry-After"))
    assert echo.request_count() == 6


# ---- Redis stopped, restarted, script lost -------------------------------------------------------

def _drive(port: int, until, statuses: list, stop: threading.Event | None = None) -> None:
    with Conn(port, timeout=10) as c:
        while not until() and not (stop is not None and stop.is_set()):
            statuses.append(c.request("GET", "/api/x").status)


@pytest.mark.parametrize("policy", ["deny", "allow"])
def test_redis_stopped_policy_applies_then_recovers(gateway, echo, redis, policy):
    """SIGSTOP: once the leased tokens are spent, the policy decides (429 for deny, admit for
    allow), and no request waits long enough for a 504; SIGCONT: leases flow again."""
    gw = cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", "1000/s,burst=200,key=ip,scope=cluster",
                         "--redis-failure", policy, "--upstream-response-timeout", "3s")
    decided = "ringway_cluster_limit_decisions_total{decision=\"policy_%s\"}" % policy
    warm: list[int] = []
    _drive(gw.port, lambda: len(warm) >= 50, warm)
    assert set(warm) == {200}
    redis.signal(signal.SIGSTOP)
    try:
        stopped: list[int] = []
        deadline = time.monotonic() + 20
        _drive(gw.port, lambda: metric(gw, decided) >= 20 or time.monotonic() > deadline, stopped)
        assert metric(gw, decided) >= 20, stopped[-10:]
        if policy == "deny":
            assert set(stopped) == {200, 429} and stopped[-1] == 429, set(stopped)
        else:
            assert set(stopped) == {200}
        assert metric(gw, "ringway_redis_timeouts_total") >= 1
    finally:
        redis.signal(signal.SIGCONT)
    before = metric(gw, "ringway_redis_lease_requests_total{op=\"take\"}")
    after: list[int] = []
    deadline = time.monotonic() + 20
    _drive(gw.port, lambda: (len(after) > 20 and after[-20:] == [200] * 20 and
                             metric(gw, "ringway_redis_lease_requests_total{op=\"take\"}") > before + 2)
           or time.monotonic() > deadline, after)
    assert after[-20:] == [200] * 20
    assert metric(gw, "ringway_redis_lease_requests_total{op=\"take\"}") > before + 2
    assert 504 not in stopped + after and 500 not in stopped + after


def test_script_flush_and_redis_restart_cause_no_client_errors(gateway, echo, redis):
    """SCRIPT FLUSH, then a Redis restart (the script and the buckets lost): every request is
    answered 200 (the policy is allow, so the restart gap is not a 429 either), the script is
    loaded again, and the limit is back in the new Redis."""
    # A limit far above what one client connection can send: every 429 would be an error here.
    gw = cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", "100000/s,burst=20000,key=ip,scope=cluster",
                         "--redis-failure", "allow")
    statuses: list[int] = []
    stop = threading.Event()
    t = threading.Thread(target=_drive, args=(gw.port, lambda: False, statuses, stop))
    t.start()
    try:
        while len(statuses) < 100:
            time.sleep(0.01)
        loads = metric(gw, "ringway_redis_script_loads_total")
        redis.command("SCRIPT", "FLUSH")
        deadline = time.monotonic() + 20  # until the next lease needs the script
        while metric(gw, "ringway_redis_script_loads_total") <= loads and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(gw, "ringway_redis_script_loads_total") > loads
        redis.stop()
        redis.start()
        deadline = time.monotonic() + 20
        while not redis.command("KEYS", "rw:rl:*") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis.command("KEYS", "rw:rl:*"), "leases are taken from the new Redis"
    finally:
        stop.set()
        t.join(timeout=30)
    assert len(statuses) > 400
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert metric(gw, "ringway_redis_errors_total") == 0


def test_redis_stopped_local_policy_enforces_the_instance_share(gateway, echo, redis):
    """--redis-failure local:2 with Redis stopped: this gateway alone admits its share, burst
    20/2 = 10 (plus at most the tokens it still held), and rejects the rest."""
    gw = cluster_gateway(gateway, echo, f"127.0.0.1:{redis.port}", "60/m,burst=20,key=ip,scope=cluster",
                         "--redis-failure", "local:2", "--upstream-response-timeout", "3s")
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/x").status == 200
    redis.signal(signal.SIGSTOP)
    try:
        stopped: list[int] = []
        deadline = time.monotonic() + 20
        decided = 'ringway_cluster_limit_decisions_total{decision="policy_local"}'
        _drive(gw.port, lambda: metric(gw, decided) >= 40 or time.monotonic() > deadline, stopped)
    finally:
        redis.signal(signal.SIGCONT)
    assert set(stopped) == {200, 429}
    admitted = stopped.count(200)
    held = 2 * 1 + WORKERS * 1  # S with a lease of 1 (burst 20 / 8 = 2, but rate x TTL / 2 < 1)
    assert 10 <= admitted <= 10 + held, stopped
    assert stopped[-1] == 429 and 504 not in stopped


def test_password_and_database_from_the_config_file(gateway, echo, tmp_path):
    """"redis": {"password", "database"} in the JSON config: AUTH and SELECT before the script;
    a wrong password is an error the policy covers (deny: 429), never a hang or a 5xx, and once
    Redis accepts that password the gateway reconnects and leases again."""
    r = Redis(tmp_path, password="s3cret")
    try:
        def start(password: str, db: int = 3):
            cfg = tmp_path / f"cluster-{password}.json"
            cfg.write_text(json.dumps({"rate_limits": ["2/m,burst=3,key=ip,scope=cluster"],
                                       "redis": {"address": f"127.0.0.1:{r.port}", "failure": "deny",
                                                 "password": password, "database": db}}))
            return gateway(routes=[("/api/", echo)], threads=2, access_log=False, args=["--config", str(cfg)])
        gw = start("s3cret")
        with Conn(gw.port) as c:
            assert [c.request("GET", "/api/x").status for _ in range(4)] == [200, 200, 200, 429]
        assert r.command("SELECT", "3") == "OK"
        assert r.command("KEYS", "*") == [], "SELECT is per connection: database 0 is empty"
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        with s:
            f = s.makefile("rb")
            s.sendall(_command("AUTH", "s3cret") + _command("SELECT", "3") + _command("KEYS", "rw:rl:*"))
            _read_reply(f), _read_reply(f)
            assert _read_reply(f) == ["rw:rl:2/m,b=3,ip:127.0.0.1"]
        bad = start("wrong", 4)
        with Conn(bad.port) as c:
            statuses = [c.request("GET", "/api/x").status for _ in range(3)]
        assert statuses == [429] * 3
        assert metric(bad, "ringway_redis_errors_total") >= 1
        assert "WRONGPASS" in bad.stderr() or "auth" in bad.stderr().lower()
        r.command("CONFIG", "SET", "requirepass", "wrong")
        r.password = "wrong"
        later: list[int] = []
        deadline = time.monotonic() + 20
        _drive(bad.port, lambda: 200 in later or time.monotonic() > deadline, later)
        assert later[-1] == 200 and set(later) <= {200, 429}
    finally:
        r.stop()
