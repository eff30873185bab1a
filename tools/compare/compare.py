#!/usr/bin/python3
"""ringway comparison benchmark: ringway vs nginx, HAProxy and direct-to-upstream (and, when asked,
a bare io_uring relay as the floor), same machine, same run, interleaved rounds. See
tools/compare/README.md for what is measured and how.

Usage: tools/compare.sh [--quick] [--rounds N] [--duration S] [--ringway PATH] ...
"""

import argparse
import hashlib
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.dont_write_bytecode = True  # keep the source tree clean of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402
import loadgen  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PLAIN_SCENARIOS = ["small", "latency", "big-get", "big-post", "idle", "wholebox"]
HTTPS_SCENARIOS = ["https-small", "https-1m-get", "https-1m-post", "handshakes", "resumed-handshakes",
                   "idle-tls-rss"]
ALL_SCENARIOS = PLAIN_SCENARIOS + HTTPS_SCENARIOS
# Cache hits (issue 16): nginx with proxy_cache and ringway with its cache answer /cached/*, which
# the origin marks fresh for an hour; the other targets relay it (references). Not in the default
# list: a ringway without the cache cannot take part.
CACHE_SCENARIOS = ["cache-hit", "cache-big"]
# --scenarios shorthands
SCENARIO_GROUPS = {"https": HTTPS_SCENARIOS, "cache": CACHE_SCENARIOS, "all": ALL_SCENARIOS}
# Pinned-layout scenarios, in run order; the idle ones and whole box are steps of their own.
PINNED_SCENARIOS = ["small", "latency", "big-get", "big-post", "https-small", "https-1m-get",
                    "https-1m-post", "handshakes", "resumed-handshakes", "cache-hit", "cache-big"]

# scenario -> path, lua script (wrk) or s_time mode (handshakes), response body size, TLS or not
SCENARIOS = {
    "small":    {"path": "/small", "script": "get", "title": "small GET (100 B body)", "body": 100},
    "latency":  {"path": "/small", "script": "get", "title": "small GET latency", "body": 100},
    "big-get":  {"path": "/big", "script": "get", "title": "1 MiB GET", "body": configs.BIG_SIZE},
    "big-post": {"path": "/post", "script": "post", "title": "1 MiB POST", "body": 2},
    "wholebox": {"path": "/small", "script": "get", "title": "small GET, whole box", "body": 100},
    # HTTPS (issue 13): the proxies terminate TLS 1.3, plaintext to the same upstream.
    "https-small":   {"path": "/small", "script": "get", "title": "HTTPS small GET", "body": 100, "tls": True},
    "https-1m-get":  {"path": "/big", "script": "get", "title": "HTTPS 1 MiB GET", "body": configs.BIG_SIZE,
                      "tls": True},
    "https-1m-post": {"path": "/post", "script": "post", "title": "HTTPS 1 MiB POST", "body": 2, "tls": True},
    "handshakes":         {"path": "/small", "s_time": "new", "title": "full TLS 1.3 handshakes", "tls": True},
    "resumed-handshakes": {"path": "/small", "s_time": "reuse", "title": "resumed TLS 1.3 handshakes",
                           "tls": True},
    "cache-hit": {"path": "/cached/small", "script": "get", "title": "cache hit, small GET", "body": 100},
    "cache-big": {"path": "/cached/big", "script": "get", "title": "cache hit, 1 MiB GET", "body": configs.BIG_SIZE},
}
# Scenarios that move 1 MiB bodies (haproxy+splice runs these only).
BIG_SCENARIOS = ("big-get", "big-post")


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


class Target:
    """One column of the comparison: how to start it and where it listens."""

    def __init__(self, name, kind, splice=None, binary=None):
        self.name = name
        self.kind = kind  # direct | nginx | haproxy | ringway | bare-relay
        self.splice = splice
        self.binary = binary  # ringway only: None = --ringway
        # The bare relay is one thread: a reference for the pinned layout only (not whole box, and
        # not the idle test, where it holds an upstream connection per client and parses nothing).
        self.pinned_only = kind == "bare-relay"
        # HTTPS scenarios: nginx, HAProxy (not the splice variant: nothing splices a TLS leg) and
        # ringway get a TLS listener next to the plaintext one, in the same process.
        self.tls_capable = kind in ("nginx", "ringway") or (kind == "haproxy" and not splice)
        self.child = None
        self.port = None
        self.tls_port = None
        self.crashes = []

    def start(self, ctx, layout, upstream_port, tmp_root):
        if self.kind == "direct":
            self.port = upstream_port
            self.child = None
            return None
        tmp = mkdtemp(f"{self.name.replace('+', '_')}-", tmp_root)
        port = self.port or procs.free_port()
        tls = None
        if ctx.tls and self.tls_capable:
            tls = dict(ctx.tls, port=self.tls_port or procs.free_port())
        workers = layout["workers"]
        if self.kind == "nginx":
            conf = configs.nginx_proxy_conf(tmp, port, upstream_port, workers, tls, cache=ctx.cache)
            argv = ["nginx", "-p", tmp, "-e", f"{tmp}/error.log", "-c", conf]
        elif self.kind == "haproxy":
            conf = configs.haproxy_conf(tmp, port, upstream_port, workers, self.splice, tls)
            argv = ["haproxy", "-db", "-f", conf]
        elif self.kind == "bare-relay":
            argv = [ctx.bare_relay, "--buffer-size", str(configs.BARE_RELAY_BUFFER),
                    "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream_port}"]
        else:
            argv = [self.binary or ctx.ringway, "--threads", str(workers), "--access-log", "off",
                    "--listen", f"127.0.0.1:{port}", "--route", f"/=http://127.0.0.1:{upstream_port}"]
            if ctx.cache:  # the routes come from a file then: a --route flag would replace them
                argv = argv[:-2] + ["--config", configs.ringway_cache_config(tmp, upstream_port)]
            if tls:
                argv += ["--listen-tls", f"127.0.0.1:{tls['port']}", "--tls-cert", f"{tls['cert']}:{tls['key']}",
                         "--tls-min-version", "1.3", "--tls-ciphersuites", configs.TLS_CIPHERSUITE]
        child = procs.Child(self.name, argv, os.path.join(tmp, "stdout.log"), cpus=layout["proxy_cpus"])
        for p in (port, tls["port"]) if tls else (port,):
            if not procs.wait_listening(p, child):
                reason = child.exit_status() or f"not listening on {p} after 10 s"
                tail = child.log_tail()
                child.stop()
                return f"{self.name} failed to start ({reason}): {tail}"
        self.child = child
        self.port = port
        self.tls_port = tls["port"] if tls else None
        return None

    def runs(self, scen):
        """Whether this target takes part in a pinned-layout scenario."""
        if SCENARIOS[scen].get("tls"):
            return self.tls_capable
        return scen in BIG_SCENARIOS or not self.splice

    def stop(self):
        if self.child:
            self.child.stop()
            self.child = None


class Ctx:
    pass


class UpstreamFailed(Exception):
    pass


def rotate(seq, k):
    if not seq:
        return []
    k %= len(seq)
    return seq[k:] + seq[:k]


def cpu_snapshot(child):
    return procs.tree_cpu(child.pid) if child else None


def measure_run(ctx, target, scen, layout, upstream, duration, conns):
    """One wrk run against one target, with CPU of the proxy and the upstream around it."""
    spec = SCENARIOS[scen]
    if spec.get("s_time"):
        return measure_handshakes(ctx, target, scen, layout, upstream, duration, conns)
    url = scenario_url(target, scen)
    script = ctx.scripts[spec["script"]]
    box0, own0 = procs.box_ticks(), procs.own_cpu_ticks()
    pcpu0 = cpu_snapshot(target.child)
    ucpu0 = procs.tree_cpu(upstream.pid)
    sampler_pid = target.child.pid if target.child else upstream.pid
    with procs.TaskSampler(sampler_pid) as sampler:
        r, _ = loadgen.run_wrk(url, script, conns, layout["wrk_threads"], duration,
                               cpus=layout["load_cpus"])
    pcpu1 = cpu_snapshot(target.child)
    box1, own1 = procs.box_ticks(), procs.own_cpu_ticks()
    pipes = procs.count_pipes(target.child.pid) if target.child else None
    ucpu1 = procs.tree_cpu(upstream.pid)
    r = dict(r)
    r.update(target=target.name, scenario=scen, conns=conns, duration=duration,
             threads_seen=sampler.names, pipes=pipes)
    problems = []
    if "failed" in r:
        problems.append(r["failed"])
    else:
        errs = {k: r[k] for k in ("connect", "read", "write", "timeout", "status") if r[k]}
        if errs:
            problems.append("wrk errors " + ", ".join(f"{k}={v}" for k, v in errs.items()))
        if r["requests"] == 0:
            problems.append("no completed requests")
        body = spec["body"]
        if r["bytes"] < r["requests"] * body:
            problems.append(f"short responses ({r['bytes']} bytes for {r['requests']} requests)")
        if r["bytes"] > (r["requests"] + conns) * (body + 4096):
            problems.append(f"oversized responses ({r['bytes']} bytes for {r['requests']} requests)")
        reqs = max(r["requests"], 1)
        # Everything the machine did in the run that was not the proxy, the upstream, wrk or this
        # script: other people's work. Plus what the hypervisor stole.
        total = max(box1[2] - box0[2], 1)
        ours = (ucpu1[0] - ucpu0[0]) + (own1 - own0)
        if target.child and target.child.alive():
            ours += pcpu1[0] - pcpu0[0]
        r["other_load"] = max(0.0, (box1[0] - box0[0]) - ours) / total
        r["steal"] = (box1[1] - box0[1]) / total
        r["upstream_cpu_us_per_req"] = procs.ticks_to_us(ucpu1[0] - ucpu0[0]) / reqs
        if target.child and target.child.alive():
            r["cpu_us"] = procs.ticks_to_us(pcpu1[0] - pcpu0[0])
            r["cpu_live_tasks_us"] = procs.ticks_to_us(pcpu1[1] - pcpu0[1])
            r["cpu_us_per_req"] = r["cpu_us"] / reqs
            r["core_busy"] = r["cpu_us"] / (r["duration_us"] or 1)
            if set(pcpu0[2]) != set(pcpu1[2]):
                problems.append(f"process set changed during the run ({pcpu0[2]} -> {pcpu1[2]})")
    return after_run(ctx, target, scen, layout, upstream, r, problems)


def scenario_url(target, scen):
    spec = SCENARIOS[scen]
    if spec.get("tls"):
        return f"https://127.0.0.1:{target.tls_port}{spec['path']}"
    return f"http://127.0.0.1:{target.port}{spec['path']}"


def measure_handshakes(ctx, target, scen, layout, upstream, duration, clients):
    """One openssl s_time run (`clients` processes at once on the load CPU) against a target's TLS
    listener: handshakes per second, and the proxy's CPU per handshake. Each connection also
    fetches /small (HTTP/1.0) through the proxy, so the proxy's cost per handshake includes one
    small proxied request and the connection's accept and close, the same for every target."""
    spec = SCENARIOS[scen]
    box0, own0 = procs.box_ticks(), procs.own_cpu_ticks()
    pcpu0 = cpu_snapshot(target.child)
    ucpu0 = procs.tree_cpu(upstream.pid)
    with procs.TaskSampler(target.child.pid) as sampler:
        r = loadgen.run_s_time(target.tls_port, spec["s_time"], clients, duration, spec["path"],
                               cpus=layout["load_cpus"])
    pcpu1 = cpu_snapshot(target.child)
    box1, own1 = procs.box_ticks(), procs.own_cpu_ticks()
    ucpu1 = procs.tree_cpu(upstream.pid)
    r = dict(r)
    r.update(target=target.name, scenario=scen, conns=clients, duration=duration,
             threads_seen=sampler.names, pipes=None)
    problems = list(r.pop("problems", []))
    if "failed" in r:
        problems.append(r["failed"])
    else:
        n = r["connections"]
        r["requests"] = n
        r["rps"] = n / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
        if n == 0:
            problems.append("no completed handshakes")
        # s_time's -www reads the response to EOF: the 100-byte body plus the head, per connection.
        if r["bytes_per_conn"] is not None and r["bytes_per_conn"] < 100 + 40:
            problems.append(f"short responses ({r['bytes_per_conn']} bytes per connection)")
        if spec["s_time"] == "new" and r["resumed"]:
            problems.append(f"{r['resumed']} connections resumed a session in the full-handshake run")
        if spec["s_time"] == "reuse" and r["full"]:
            problems.append(f"{r['full']} of {r['resumed'] + r['full']} connections did not resume")
        reqs = max(n, 1)
        total = max(box1[2] - box0[2], 1)
        ours = (ucpu1[0] - ucpu0[0]) + (own1 - own0)
        if target.child.alive():
            ours += pcpu1[0] - pcpu0[0]
        # own_cpu_ticks counts reaped children (the s_time processes) as ours.
        r["other_load"] = max(0.0, (box1[0] - box0[0]) - ours) / total
        r["steal"] = (box1[1] - box0[1]) / total
        r["upstream_cpu_us_per_req"] = procs.ticks_to_us(ucpu1[0] - ucpu0[0]) / reqs
        if target.child.alive():
            r["cpu_us"] = procs.ticks_to_us(pcpu1[0] - pcpu0[0])
            r["cpu_live_tasks_us"] = procs.ticks_to_us(pcpu1[1] - pcpu0[1])
            r["cpu_us_per_req"] = r["cpu_us"] / reqs
            r["core_busy"] = r["cpu_us"] / (r["duration_us"] or 1)
            if set(pcpu0[2]) != set(pcpu1[2]):
                problems.append(f"process set changed during the run ({pcpu0[2]} -> {pcpu1[2]})")
    return after_run(ctx, target, scen, layout, upstream, r, problems)


def after_run(ctx, target, scen, layout, upstream, r, problems):
    """A dead proxy makes the run invalid; it is restarted for the later runs."""
    if target.child and not target.child.alive():
        status = target.child.exit_status()
        tail = target.child.log_tail()
        problems.append(f"{target.name} died ({status})")
        target.crashes.append({"scenario": scen, "status": status, "log": tail})
        log(f"!! {target.name} died during {scen}: {status}\n{tail}")
        target.child.stop()
        target.child = None
        err = target.start(ctx, layout, upstream.port_, ctx.tmp)
        if err:
            log(f"!! restart failed: {err}")
    r["problems"] = problems
    return r


def mkdtemp(prefix, parent):
    # nginx workers run as an unprivileged user when started as root: they must read the files.
    d = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(d, 0o755)
    return d


def start_upstream(ctx, layout, tag):
    tmp = mkdtemp(f"upstream-{tag.replace(' ', '_')}-", ctx.tmp)
    port = procs.free_port()
    conf, have_echo = configs.upstream_nginx_conf(tmp, port, layout["upstream_workers"])
    ctx.post_reads_body = have_echo
    child = procs.Child(f"upstream-{tag}", ["nginx", "-p", tmp, "-e", f"{tmp}/error.log", "-c", conf],
                        os.path.join(tmp, "stdout.log"), cpus=layout["load_cpus"])
    if not procs.wait_listening(port, child):
        tail = child.log_tail()
        child.stop()
        raise UpstreamFailed(f"upstream nginx did not start: {tail}")
    child.port_ = port
    with open(os.path.join(tmp, "www", "big"), "rb") as f:
        ctx.big_sha = hashlib.sha256(f.read()).hexdigest()
    return child


def fmt_rps(r):
    if "failed" in r:
        return "FAILED: " + "; ".join(r["problems"])
    s = f"{r['rps']:,.0f} req/s"
    if "cpu_us_per_req" in r:
        s += f", proxy {r['cpu_us_per_req']:.1f} us/req ({r['core_busy'] * 100:.0f}% core)"
    if r["problems"]:
        s += "  INVALID: " + "; ".join(r["problems"])
    return s


def run_layout(ctx, layout, targets, scenarios, rounds, duration, results, progress):
    upstream = start_upstream(ctx, layout, layout["name"])
    try:
        for t in targets:
            err = t.start(ctx, layout, upstream.port_, ctx.tmp)
            if err:
                log(f"!! {err}")
                t.failed = err
                continue
            t.failed = None
            bad = loadgen.sanity_check(t.port, configs.SMALL_BODY, ctx.big_sha, configs.BIG_SIZE)
            if not bad and t.tls_port:
                bad = tls_check(ctx, t, results)
            if bad:
                log(f"!! {t.name} sanity check failed: {bad}")
                t.failed = f"sanity check failed: {bad}"
            else:
                aff = procs.affinity_report(t.child.pid if t.child else upstream.pid)
                log(f"{t.name} on port {t.port}: sanity check ok; cpus allowed: {aff}")
                results["affinity"].setdefault(layout["name"], {})[t.name] = aff
        live = [t for t in targets if not t.failed]
        for t in targets:
            if t.failed:
                results["failures"].append({"layout": layout["name"], "target": t.name, "reason": t.failed})
        # Warm-up (not recorded): first-touch allocations, upstream pools, page cache.
        for scen in scenarios:
            for t in live:
                if not t.runs(scen):
                    continue
                if SCENARIOS[scen].get("s_time"):
                    loadgen.run_s_time(t.tls_port, SCENARIOS[scen]["s_time"], 1, 1, SCENARIOS[scen]["path"],
                                       cpus=layout["load_cpus"])
                else:
                    loadgen.run_wrk(scenario_url(t, scen), ctx.scripts[SCENARIOS[scen]["script"]], 8,
                                    layout["wrk_threads"], 1, cpus=layout["load_cpus"])
        for rnd in range(rounds):
            for scen in scenarios:
                pool = [t for t in live if t.runs(scen)]
                for t in rotate(pool, rnd):
                    if t.kind != "direct" and t.child is None:
                        continue  # crashed and could not be restarted
                    conns = ctx.conns[scen]
                    progress[0] += 1
                    r = measure_run(ctx, t, scen, layout, upstream, duration, conns)
                    r["round"] = rnd + 1
                    r["layout"] = layout["name"]
                    results["runs"].append(r)
                    extra = ""
                    if scen == "latency" and "p50" in r:
                        extra = f", p50 {r['p50']:.0f} us, p99 {r['p99']:.0f} us"
                    if SCENARIOS[scen].get("s_time") and "resumed" in r:
                        extra = f" (handshakes; {r['resumed']} resumed, {r['full']} full)"
                    log(f"[{progress[0]}/{progress[1]}] {layout['name']} round {rnd + 1} {scen} "
                        f"{t.name}: {fmt_rps(r)}{extra}")
        for t in targets:
            for c in t.crashes:
                results["crashes"].append(dict(c, target=t.name, layout=layout["name"]))
            t.crashes = []
    finally:
        for t in targets:
            t.stop()
            t.port = None
            t.tls_port = None
        upstream.stop()


def tls_check(ctx, t, results):
    """The sanity check again over TLS, and what the listener negotiates: every target must agree
    on TLS 1.3, the one cipher suite, X25519 and the ECDSA certificate, or the comparison is not
    like for like. Returns None or the reason."""
    bad = loadgen.sanity_check(t.tls_port, configs.SMALL_BODY, ctx.big_sha, configs.BIG_SIZE,
                               tls=ctx.client_tls)
    if bad:
        return f"over TLS: {bad}"
    neg = loadgen.tls_probe(t.tls_port)
    results["tls"][t.name] = neg
    want = {"protocol": "TLSv1.3", "cipher": configs.TLS_CIPHERSUITE, "group": "X25519", "signature": "ECDSA"}
    for k, v in want.items():
        if not neg.get(k, "").startswith(v):
            return f"TLS listener negotiated {k} {neg.get(k)!r}, want {v} ({neg.get('error', '')})"
    return None


def idle_test(ctx, layout, targets, results, tls=False):
    """Plaintext: ctx.idle_conns keep-alive connections (results["idle"]); tls: ctx.idle_tls_conns
    TLS keep-alive connections to the TLS listener (results["idle_tls"], scenario idle-tls-rss)."""
    upstream = start_upstream(ctx, layout, "idle-tls" if tls else "idle")
    wanted = ctx.idle_tls_conns if tls else ctx.idle_conns
    try:
        for t in targets:
            if (not t.tls_capable) if tls else (t.splice or t.pinned_only):
                continue
            # A fresh process per target, so the baseline is not inflated (or hidden) by whatever
            # the throughput runs left in allocator caches.
            if t.kind == "direct":
                fresh = start_upstream(ctx, layout, "idle-direct")
                pid, port, owner = fresh.pid, fresh.port_, fresh
            else:
                err = t.start(ctx, layout, upstream.port_, ctx.tmp)
                if err:
                    results["idle_tls" if tls else "idle"].append({"target": t.name, "problems": [err]})
                    continue
                pid, port, owner = t.child.pid, t.tls_port if tls else t.port, t.child
            entry = {"target": t.name, "problems": []}
            try:
                bad = loadgen.sanity_check(port, configs.SMALL_BODY, ctx.big_sha, configs.BIG_SIZE,
                                           tls=ctx.client_tls if tls else None)
                if bad:
                    entry["problems"].append(f"sanity check: {bad}")
                scheme = "https" if tls else "http"
                loadgen.run_wrk(f"{scheme}://127.0.0.1:{port}/small", ctx.scripts["get"], 4, 1, 1,
                                cpus=layout["load_cpus"])
                time.sleep(1.0)
                entry["rss_before_kib"] = procs.tree_rss_kib(pid)
                log(f"idle: opening {wanted} {'TLS ' if tls else ''}keep-alive connections to {t.name} ...")
                t0 = time.monotonic()
                if tls:
                    held = loadgen.IdleTlsConnections(port, wanted, ctx.client_tls)
                    ok, reasons = held.ok, held.reasons
                else:
                    socks, ok, reasons = loadgen.hold_idle_connections(port, wanted)
                entry["open_seconds"] = time.monotonic() - t0
                time.sleep(1.0)
                entry["rss_after_kib"] = procs.tree_rss_kib(pid)
                entry["still_open"] = held.still_open() if tls else loadgen.count_still_open(socks)
                entry["ok"] = ok
                entry["wanted"] = wanted
                if reasons:
                    entry["problems"].append("connection failures: " + ", ".join(
                        f"{k} x{v}" for k, v in sorted(reasons.items())))
                if entry["still_open"] < ok:
                    entry["problems"].append(f"{ok - entry['still_open']} connections closed by the server while idle")
                if tls:
                    held.close()
                else:
                    for s in socks:
                        s.close()
                time.sleep(1.5)
                entry["rss_closed_kib"] = procs.tree_rss_kib(pid)
                if ok:
                    entry["kib_per_conn"] = (entry["rss_after_kib"] - entry["rss_before_kib"]) / ok
                if not owner.alive():
                    entry["problems"].append(f"{t.name} died ({owner.exit_status()}): {owner.log_tail()}")
                log(f"idle{' TLS' if tls else ''} {t.name}: {ok}/{wanted} ok, RSS {entry['rss_before_kib']} -> "
                    f"{entry['rss_after_kib']} KiB ({entry.get('kib_per_conn', 0):.2f} KiB/conn), "
                    f"{entry['rss_closed_kib']} KiB after closing"
                    + (f"  INVALID: {'; '.join(entry['problems'])}" if entry["problems"] else ""))
            finally:
                if t.kind == "direct":
                    fresh.stop()
                else:
                    t.stop()
                    t.port = None
                    t.tls_port = None
            results["idle_tls" if tls else "idle"].append(entry)
    finally:
        upstream.stop()


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for lim in ((want, max(want, hard)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            return lim[0]
        except (ValueError, OSError):
            continue
    return soft


def machine_info(args_text):
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, timeout=10, cwd=REPO).stdout.decode().strip()
        except Exception:
            return ""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": cmd(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
        "kernel": platform.release(),
        "cpu": f"{cpu} ({os.cpu_count()} CPUs)",
        "command": args_text,
        "nginx": cmd(["sh", "-c", "nginx -v 2>&1"]).replace("nginx version: ", ""),
        "haproxy": cmd(["haproxy", "-v"]).splitlines()[0] if cmd(["haproxy", "-v"]) else "",
        "wrk": (cmd(["sh", "-c", "wrk -v 2>&1"]).splitlines() or [""])[0].split(" Copyright")[0],
    }


def main():
    ap = argparse.ArgumentParser(description="Benchmark ringway against nginx, HAProxy and direct.")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, 2 rounds")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 2)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 10, quick 3)")
    ap.add_argument("--ringway", default=os.path.join(REPO, "build", "src", "ringway"))
    ap.add_argument("--bare-relay", default=os.path.join(REPO, "build", "bench", "relay", "bare_relay"),
                    help="the bare io_uring relay binary for target 'bare-relay'")
    ap.add_argument("--baseline", metavar="PATH",
                    help="a second ringway binary, measured as target 'ringway-base' in the same "
                         "interleaved rounds (A/B of a change)")
    ap.add_argument("--scenarios", default=",".join(PLAIN_SCENARIOS),
                    help=f"comma list from {','.join(ALL_SCENARIOS)}; 'https' = the HTTPS ones (issue 13), "
                         f"'all' = every one (default: {','.join(PLAIN_SCENARIOS)})")
    ap.add_argument("--targets", default="direct,nginx,haproxy,haproxy+splice,ringway",
                    help="comma list of targets to measure (ratios need nginx and haproxy); "
                         "'bare-relay' adds the bare io_uring relay (pinned small GET and 1 MiB only)")
    ap.add_argument("--idle-conns", type=int, help="idle keep-alive connections (default 10000)")
    ap.add_argument("--idle-tls-conns", type=int, default=2000,
                    help="idle TLS keep-alive connections in idle-tls-rss (default 2000)")
    ap.add_argument("--hs-clients", type=int, default=4,
                    help="openssl s_time processes at once in handshakes / resumed-handshakes (default 4)")
    ap.add_argument("--proxy-cpu", default="1", help="CPU for the proxy under test (pinned layout)")
    ap.add_argument("--load-cpu", default="0", help="CPU shared by wrk and the upstream (pinned layout)")
    ap.add_argument("--haproxy-splice", choices=["forced", "auto"], default="forced",
                    help="haproxy+splice entry: 'option splice-request/-response' (forced, default) or "
                         "'option splice-auto' (2.6 did not splice at all on loopback here)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"), help="output directory")
    ap.add_argument("--name", default="latest", help="output file stem (latest.md, latest.png, ...)")
    ap.add_argument("--from-json", metavar="FILE",
                    help="only rewrite the markdown and chart from a previous run's JSON")
    args = ap.parse_args()
    if args.from_json:
        import json
        with open(args.from_json) as f:
            results = json.load(f)
        tmp = mkdtemp("ringway-compare-", None)
        try:
            log("wrote " + ", ".join(report.write_all(results, args.out, args.name, tmp)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return 0

    rounds = args.rounds or (2 if args.quick else 3)
    duration = args.duration or (3 if args.quick else 10)
    scenarios = []
    for s in args.scenarios.split(","):
        for x in SCENARIO_GROUPS.get(s, [s] if s else []):
            if x not in scenarios:
                scenarios.append(x)
    for s in scenarios:
        if s not in ALL_SCENARIOS + CACHE_SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if not (os.path.isfile(args.ringway) and os.access(args.ringway, os.X_OK)):
        sys.exit(f"compare: no ringway binary at {args.ringway}; run tools/build.sh to build it "
                 "(or pass --ringway PATH)")
    missing = [b for b in ("wrk", "nginx", "haproxy", "taskset", "gnuplot") if not shutil.which(b)]
    if missing:
        sys.exit(f"compare: missing {' '.join(missing)}; tools/setup.sh installs them "
                 "(Debian: wrk nginx-light haproxy util-linux gnuplot-nox)")

    ctx = Ctx()
    ctx.ringway = os.path.abspath(args.ringway)
    ctx.idle_conns = args.idle_conns or 10000
    nofile = raise_nofile(configs.MAX_FDS)
    configs.nofile = nofile
    if nofile < ctx.idle_conns + 512:
        ctx.idle_conns = max(100, nofile - 512)
        log(f"RLIMIT_NOFILE is {nofile}: idle connections reduced to {ctx.idle_conns}")
    ctx.idle_tls_conns = min(args.idle_tls_conns, max(100, nofile - 512))
    ctx.conns = {"small": 64, "latency": 4, "big-get": 16, "big-post": 16, "wholebox": 64,
                 "https-small": 64, "https-1m-get": 16, "https-1m-post": 16,
                 "handshakes": args.hs_clients, "resumed-handshakes": args.hs_clients,
                 "cache-hit": 64, "cache-big": 16}
    ctx.cache = any(s in CACHE_SCENARIOS for s in scenarios)
    args_text = "tools/compare.sh " + " ".join(sys.argv[1:])

    pinned = {"name": "pinned", "workers": 1, "upstream_workers": 1, "wrk_threads": 1,
              "proxy_cpus": args.proxy_cpu, "load_cpus": args.load_cpu}
    whole = {"name": "whole box", "workers": 2, "upstream_workers": 2, "wrk_threads": 2,
             "proxy_cpus": None, "load_cpus": None}
    targets = [Target("direct", "direct"), Target("nginx", "nginx"), Target("haproxy", "haproxy"),
               Target("ringway", "ringway")]
    big = [s for s in scenarios if s in BIG_SCENARIOS]
    if big:
        targets.insert(3, Target("haproxy+splice", "haproxy", splice=args.haproxy_splice))
    wanted = [t for t in args.targets.split(",") if t]
    for w in wanted:
        if w not in ("direct", "nginx", "haproxy", "haproxy+splice", "ringway", "bare-relay"):
            ap.error(f"unknown target {w}")
    if "bare-relay" in wanted:
        # Located like ringway: a fixed path in build/, built by tools/build.sh (benchmarks are on
        # by default), never built behind the user's back.
        if not (os.path.isfile(args.bare_relay) and os.access(args.bare_relay, os.X_OK)):
            sys.exit(f"compare: no bare relay binary at {args.bare_relay}; build it with "
                     "`ninja -C build bench/relay/bare_relay` (build/ must be configured with "
                     "-Dbenchmarks=true, the default; else `meson configure build -Dbenchmarks=true`), "
                     "or pass --bare-relay PATH")
        ctx.bare_relay = os.path.abspath(args.bare_relay)
        targets.append(Target("bare-relay", "bare-relay"))
    if args.baseline:
        if not (os.path.isfile(args.baseline) and os.access(args.baseline, os.X_OK)):
            ap.error(f"--baseline: no executable at {args.baseline}")
        targets.append(Target("ringway-base", "ringway", binary=os.path.abspath(args.baseline)))
        wanted.append("ringway-base")
    targets = [t for t in targets if t.name in wanted]
    pinned_scen = [s for s in PINNED_SCENARIOS if s in scenarios]
    tls_scen = [s for s in scenarios if SCENARIOS.get(s, {}).get("tls") or s == "idle-tls-rss"]
    if tls_scen and not shutil.which("openssl"):
        sys.exit("compare: the HTTPS scenarios need the openssl command (Debian: openssl)")

    n_box = len([t for t in targets if not t.splice and not t.pinned_only])
    n_tls = len([t for t in targets if t.tls_capable])
    n_runs = rounds * sum(len([t for t in targets if t.runs(s)]) for s in pinned_scen)
    n_runs += rounds * n_box * ("wholebox" in scenarios)
    # Measured here: ~0.4 s per run of overhead, 1 s warm-ups, ~5 s per idle-connection target.
    est = n_runs * (duration + 0.4) + len(targets) * len(pinned_scen) * 1.3
    est += n_box * 1.3 * ("wholebox" in scenarios)
    est += n_box * (2.5 + ctx.idle_conns / 4000) if "idle" in scenarios else 0
    # The asyncio TLS client opens ~300-1,000 connections/s here (busy machine).
    est += n_tls * (4 + ctx.idle_tls_conns / 300) if "idle-tls-rss" in scenarios else 0
    log(f"plan: {n_runs} measured runs (wrk, or openssl s_time for handshakes) of {duration} s in {rounds} rounds; "
        f"about {est / 60:.0f} min; load average now {os.getloadavg()[0]:.2f}")

    info = machine_info(args_text)
    info["load_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["ringway"] = ctx.ringway
    if "bare-relay" in wanted:
        info["bare_relay"] = ctx.bare_relay
    results = {"info": info, "runs": [], "idle": [], "idle_tls": [], "tls": {}, "crashes": [], "failures": [],
               "affinity": {},
               "settings": {"rounds": rounds, "duration": duration, "conns": ctx.conns,
                            "idle_conns": ctx.idle_conns, "idle_tls_conns": ctx.idle_tls_conns,
                            "tls_ciphersuite": configs.TLS_CIPHERSUITE, "proxy_cpu": args.proxy_cpu,
                            "load_cpu": args.load_cpu, "haproxy_splice": args.haproxy_splice}}
    progress = [0, n_runs]

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started in the background (SIGINT ignored)

    ctx.tmp = mkdtemp("ringway-compare-", None)
    t_start = time.monotonic()
    try:
        ctx.scripts = loadgen.write_scripts(ctx.tmp, configs.BIG_SIZE)
        ctx.tls, ctx.client_tls = None, None
        if tls_scen:
            # One certificate for every proxy, made fresh for the run (ECDSA P-256).
            ctx.tls = configs.make_tls_cert(ctx.tmp)
            ctx.client_tls = loadgen.tls_client_context(ctx.tls["cert"])
        steps = []
        if pinned_scen:
            steps.append(("pinned", lambda: run_layout(ctx, pinned, targets, pinned_scen, rounds, duration,
                                                       results, progress)))
        if "idle" in scenarios:
            steps.append(("idle", lambda: idle_test(ctx, pinned, targets, results)))
        if "idle-tls-rss" in scenarios:
            steps.append(("idle TLS", lambda: idle_test(ctx, pinned, targets, results, tls=True)))
        if "wholebox" in scenarios:
            wb_targets = [Target(t.name, t.kind, binary=t.binary) for t in targets
                          if not t.splice and not t.pinned_only]
            steps.append(("whole box", lambda: run_layout(ctx, whole, wb_targets, ["wholebox"], rounds,
                                                          duration, results, progress)))
        for name, step in steps:
            try:
                step()
            except UpstreamFailed as e:  # reported in the table, the other steps still run
                log(f"!! {name}: {e}")
                results["failures"].append({"layout": name, "target": "upstream", "reason": str(e)})
        info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info["elapsed"] = f"{(time.monotonic() - t_start) / 60:.1f} min"
        info["post_reads_body"] = getattr(ctx, "post_reads_body", True)
        os.makedirs(args.out, exist_ok=True)
        paths = report.write_all(results, args.out, args.name, ctx.tmp)
        log("wrote " + ", ".join(paths))
        print()
        with open(paths[0]) as f:
            print(f.read())
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping everything")
        return 130
    finally:
        procs.kill_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
