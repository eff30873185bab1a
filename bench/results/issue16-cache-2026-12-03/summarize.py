#!/usr/bin/env python3
"""Medians of the cache scenarios from cache.json (the compare tool's report does not render them)."""
import json
import statistics as st
import sys

d = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "cache.json"))
rows = {}
for r in d["runs"]:
    rows.setdefault((r["scenario"], r["target"]), []).append(r)
print("| scenario | target | req/s (median) | proxy CPU µs per request (median) | CPU vs nginx |")
print("|---|---|---:|---:|---:|")
for sc in ("cache-hit", "cache-big"):
    ng = st.median(r["cpu_us_per_req"] for r in rows[(sc, "nginx")])
    for t in ("nginx", "ringway"):
        rs = rows[(sc, t)]
        cpu = st.median(r["cpu_us_per_req"] for r in rs)
        print(f"| {sc} | {t} | {st.median(r['rps'] for r in rs):,.0f} | {cpu:.2f} | "
              f"{'' if t == 'nginx' else f'{cpu / ng:.2f}x'} |")
