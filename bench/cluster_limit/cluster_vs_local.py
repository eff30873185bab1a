#!/usr/bin/env python3
"""CPU per request through a cluster-scoped rate limit (issue 15) against the same limit scoped
locally, in the same interleaved rounds, plus Redis commands per 1,000 admitted requests.

Layout (the compare tool's pinned one): ringway with one worker on CPU 1; wrk (1 thread, 64
connections), the nginx origin (/small, 100 bytes) and redis-server share CPU 0. The limits are
never exceeded, so every request is a 200 and the cluster path spends leased tokens; Redis is
asked once per lease (L = min(burst/8, rate x 0.5 s)).

  ninja -C build src/ringway && python3 bench/cluster_limit/cluster_vs_local.py [--rounds 3] [--duration 5]

Prints a table; results of a run are in bench/results/ (see its README lines) when kept.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "compare"))
import configs  # noqa: E402
import loadgen  # noqa: E402
import procs  # noqa: E402

SPECS = {
    # name: (--rate-limit spec, cluster?)
    "local 50k/s": ("50000/s,burst=1000,key=ip", False),
    "cluster 50k/s": ("50000/s,burst=1000,key=ip,scope=cluster", True),
    "cluster 1M/s": ("1000000/s,burst=100000,key=ip,scope=cluster", True),
}


def redis_calls(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > 4 and data.startswith(b"$"):
                want = int(data[1:data.index(b"\r\n")])
                if len(data) >= data.index(b"\r\n") + 2 + want + 2:
                    break
    total = 0
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(("cmdstat_evalsha:", "cmdstat_script")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--ringway", default=os.path.join(ROOT, "build", "src", "ringway"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rw-cluster-bench-")
    os.chmod(tmp, 0o755)  # the nginx worker (not root) reads www/ under it
    try:
        up_port = procs.free_port()
        conf, _ = configs.upstream_nginx_conf(tmp, up_port, 1)
        up = procs.Child("nginx", ["nginx", "-p", tmp, "-e", f"{tmp}/error.log", "-c", conf],
                         os.path.join(tmp, "nginx.log"), cpus="0")
        procs.wait_listening(up_port, up)
        redis_port = procs.free_port()
        rd = procs.Child("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], os.path.join(tmp, "redis.log"), cpus="0")
        procs.wait_listening(redis_port, rd)
        scripts = loadgen.write_scripts(tmp, 16)
        results = {name: {"req": 0, "ticks": 0, "calls": 0, "errors": 0} for name in SPECS}
        names = list(SPECS)
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                spec, cluster = SPECS[name]
                port = procs.free_port()
                argv = [args.ringway, "--listen", f"127.0.0.1:{port}", "--threads", "1", "--access-log", "off",
                        "--route", f"/=http://127.0.0.1:{up_port}", "--rate-limit", spec]
                if cluster:
                    argv += ["--redis", f"127.0.0.1:{redis_port}"]
                gw = procs.Child("ringway", argv, os.path.join(tmp, "ringway.log"), cpus="1")
                procs.wait_listening(port, gw)
                loadgen.run_wrk(f"http://127.0.0.1:{port}/small", scripts["get"], 64, 1, 1, cpus="0")  # warm
                calls0 = redis_calls(redis_port)
                t0, _, _, _ = procs.tree_cpu(gw.pid)
                r, _ = loadgen.run_wrk(f"http://127.0.0.1:{port}/small", scripts["get"], 64, 1, args.duration, cpus="0")
                t1, _, _, _ = procs.tree_cpu(gw.pid)
                calls = redis_calls(redis_port) - calls0
                gw.stop()
                if "failed" in r:
                    print(f"{name}: {r['failed']}", file=sys.stderr)
                    continue
                res = results[name]
                res["req"] += r["requests"]
                res["ticks"] += t1 - t0
                res["calls"] += calls
                res["errors"] += r["status"] + r["read"] + r["write"] + r["timeout"]
                print(f"round {rnd + 1} {name:>14}: {r['rps']:8.0f} req/s, "
                      f"{procs.ticks_to_us(t1 - t0) / max(1, r['requests']):.2f} us CPU/req, {calls} Redis calls",
                      file=sys.stderr)
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        print(f"\nload average at the end: {' '.join(load)}; {args.rounds} rounds x {args.duration:.0f} s, "
              "ringway 1 worker on CPU 1, wrk/nginx/redis on CPU 0\n")
        print("| limit | requests | ringway CPU/request | vs local | Redis commands per 1,000 admitted | non-2xx |")
        print("|---|---:|---:|---:|---:|---:|")
        base = None
        for name in names:
            res = results[name]
            cpu = procs.ticks_to_us(res["ticks"]) / max(1, res["req"])
            if base is None:
                base = cpu
            print(f"| `{SPECS[name][0]}` | {res['req']} | {cpu:.2f} us | {cpu / base:.3f}x | "
                  f"{1000 * res['calls'] / max(1, res['req']):.2f} | {res['errors']} |")
    finally:
        procs.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
