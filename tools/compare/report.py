"""Turns the raw runs into bench/results/<name>.md (tables, ratios, target checks), <name>.json
(every run, for anyone who wants to recompute) and a gnuplot chart (<name>.png and <name>.svg).

A target whose runs had any error is shown with its numbers but marked INVALID, and no ratio is
computed against or from it."""

import json
import os
import statistics
import subprocess

MIB = 1 << 20


def _agg(runs):
    """Median over rounds of the runs that produced numbers; status says if any run was bad."""
    numbered = [r for r in runs if "rps" in r]
    bad = [r for r in runs if r.get("problems")]
    out = {"n": len(runs), "valid": not bad and bool(numbered)}
    if bad:
        reasons = []
        for r in bad:
            for p in r["problems"]:
                if p not in reasons:
                    reasons.append(p)
        out["status"] = f"INVALID ({len(bad)}/{len(runs)} runs: {'; '.join(reasons)[:300]})"
    else:
        out["status"] = "ok" if numbered else "no data"
    if not numbered:
        return out
    med = statistics.median
    out["rps"] = med(r["rps"] for r in numbered)
    out["rps_min"] = min(r["rps"] for r in numbered)
    out["rps_max"] = max(r["rps"] for r in numbered)
    for k in ("cpu_us_per_req", "core_busy", "upstream_cpu_us_per_req", "p50", "p99", "p999", "pipes",
              "other_load"):
        vals = [r[k] for r in numbered if r.get(k) is not None]
        if vals:
            out[k] = med(vals)
    return out


def aggregate(results):
    groups = {}
    for r in results["runs"]:
        groups.setdefault((r["layout"], r["scenario"]), {}).setdefault(r["target"], []).append(r)
    agg = {}
    for key, by_target in groups.items():
        agg[key] = {t: _agg(rs) for t, rs in by_target.items()}
    return agg


def _ratio(a, b, key):
    if not a or not b or not a.get("valid") or not b.get("valid") or key not in a or key not in b:
        return None
    if not b[key]:
        return None
    return a[key] / b[key]


def _fx(x):
    return "n/a" if x is None else f"{x:.2f}x"


def _f(d, key, fmt):
    return fmt.format(d[key]) if d and key in d else "—"


def _order(names):
    pref = ["direct", "nginx", "haproxy", "haproxy+splice", "ringway", "ringway-base", "bare-relay"]
    return sorted(names, key=lambda n: pref.index(n) if n in pref else 99)


def _better_cpu(a):
    """The one of nginx and HAProxy with the lower CPU/req (issue 12's reference), if both are valid."""
    cands = [x for x in (a.get("nginx"), a.get("haproxy")) if x and x.get("valid") and "cpu_us_per_req" in x]
    return min(cands, key=lambda x: x["cpu_us_per_req"]) if len(cands) == 2 else None


def _better_rps(a):
    """The one of nginx and HAProxy with the higher req/s, if both are valid."""
    cands = [x for x in (a.get("nginx"), a.get("haproxy")) if x and x.get("valid") and "rps" in x]
    return max(cands, key=lambda x: x["rps"]) if len(cands) == 2 else None


def _per_core(d):
    """Handshakes per second of one core's CPU time: 1 s / the proxy's CPU per handshake."""
    if d and "cpu_us_per_req" in d and d["cpu_us_per_req"]:
        return dict(d, per_core=1e6 / d["cpu_us_per_req"])
    return d


def tls_table(a, unit):
    """HTTPS scenarios (issue 13): unit "req" (small GET) or "MiB" (1 MiB bodies: one body per
    request, so µs per request == µs per MiB). Ratios against nginx, HAProxy and the better of the
    two: lower CPU for the CPU column, higher req/s for the req/s column."""
    fmt = "{:.2f}" if unit == "req" else "{:.0f}"
    lines = [f"| target | req/s (median) | min–max | proxy CPU µs/{unit} | proxy CPU, % of one core "
             f"| CPU/{unit} vs nginx | vs HAProxy | vs the better | req/s vs the better | upstream µs/req "
             "| others' CPU | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    ng, hp, bc, br = a.get("nginx"), a.get("haproxy"), _better_cpu(a), _better_rps(a)
    for t in _order(a):
        d = a[t]
        ref = t in ("nginx", "haproxy")
        lines.append(
            f"| {t} | {_f(d, 'rps', '{:,.0f}')} | {_f(d, 'rps_min', '{:,.0f}')}–{_f(d, 'rps_max', '{:,.0f}')} "
            f"| {_f(d, 'cpu_us_per_req', fmt)} | {_f(d, 'core_busy', '{:.0%}')} "
            f"| {_fx(_ratio(d, ng, 'cpu_us_per_req')) if t != 'nginx' else ''} "
            f"| {_fx(_ratio(d, hp, 'cpu_us_per_req')) if t != 'haproxy' else ''} "
            f"| {_fx(_ratio(d, bc, 'cpu_us_per_req')) if not ref else ''} "
            f"| {_fx(_ratio(d, br, 'rps')) if not ref else ''} "
            f"| {_f(d, 'upstream_cpu_us_per_req', '{:.2f}')} | {_f(d, 'other_load', '{:.0%}')} | {d['status']} |")
    return lines


def handshake_table(a):
    lines = ["| target | handshakes/s (median) | min–max | proxy CPU µs/handshake | handshakes per core-second "
             "| proxy CPU, % of one core | per core vs nginx | vs HAProxy | vs the better | others' CPU | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    a = {t: _per_core(d) for t, d in a.items()}
    ng, hp = a.get("nginx"), a.get("haproxy")
    bc = _better_cpu(a)
    bc = _per_core(bc) if bc else None
    for t in _order(a):
        d = a[t]
        ref = t in ("nginx", "haproxy")
        lines.append(
            f"| {t} | {_f(d, 'rps', '{:,.0f}')} | {_f(d, 'rps_min', '{:,.0f}')}–{_f(d, 'rps_max', '{:,.0f}')} "
            f"| {_f(d, 'cpu_us_per_req', '{:.0f}')} | {_f(d, 'per_core', '{:,.0f}')} | {_f(d, 'core_busy', '{:.0%}')} "
            f"| {_fx(_ratio(d, ng, 'per_core')) if t != 'nginx' else ''} "
            f"| {_fx(_ratio(d, hp, 'per_core')) if t != 'haproxy' else ''} "
            f"| {_fx(_ratio(d, bc, 'per_core')) if not ref else ''} "
            f"| {_f(d, 'other_load', '{:.0%}')} | {d['status']} |")
    return lines


def _idle_ratio(idle, a, b):
    ea = next((e for e in idle if e["target"] == a), None)
    eb = next((e for e in idle if e["target"] == b), None)
    if not ea or not eb or ea["problems"] or eb["problems"] or "kib_per_conn" not in ea or not eb.get("kib_per_conn"):
        return None
    return ea["kib_per_conn"] / eb["kib_per_conn"]


def tls_headline(agg, idle_tls):
    out = []
    for scen, title, unit in (("https-small", "HTTPS small GET", "req"), ("https-1m-get", "HTTPS 1 MiB GET", "MiB"),
                              ("https-1m-post", "HTTPS 1 MiB POST", "MiB")):
        a = agg.get(("pinned", scen), {})
        rw = a.get("ringway")
        if rw:
            out.append(f"- {title}, pinned: ringway CPU/{unit} = {_fx(_ratio(rw, a.get('nginx'), 'cpu_us_per_req'))} "
                       f"nginx, {_fx(_ratio(rw, a.get('haproxy'), 'cpu_us_per_req'))} HAProxy, "
                       f"{_fx(_ratio(rw, _better_cpu(a), 'cpu_us_per_req'))} the better; req/s = "
                       f"{_fx(_ratio(rw, _better_rps(a), 'rps'))} the better")
    for scen, title in (("handshakes", "full TLS 1.3 handshakes"), ("resumed-handshakes", "resumed TLS 1.3 handshakes")):
        a = {t: _per_core(d) for t, d in agg.get(("pinned", scen), {}).items()}
        rw = a.get("ringway")
        if rw:
            out.append(f"- {title} per core-second: ringway {_f(rw, 'per_core', '{:,.0f}')} = "
                       f"{_fx(_ratio(rw, a.get('nginx'), 'per_core'))} nginx, "
                       f"{_fx(_ratio(rw, a.get('haproxy'), 'per_core'))} HAProxy")
    for e in idle_tls:
        if e["target"] == "ringway" and "kib_per_conn" in e:
            out.append(f"- idle TLS keep-alive: ringway {e['kib_per_conn']:.2f} KiB RSS per connection = "
                       f"{_fx(_idle_ratio(idle_tls, 'ringway', 'nginx'))} nginx, "
                       f"{_fx(_idle_ratio(idle_tls, 'ringway', 'haproxy'))} HAProxy"
                       + ("" if not e["problems"] else " (INVALID)"))
    return out


def small_table(a, lat):
    lat_cols = lat is not None
    br = a.get("bare-relay")  # the column exists only when the bare relay was measured
    lines = ["| target | req/s (median) | min–max | proxy CPU µs/req | proxy CPU, % of one core | CPU/req vs nginx "
             "| CPU/req vs HAProxy " + ("| CPU/req vs bare relay " if br else "")
             + "| req/s vs nginx | req/s vs HAProxy | upstream µs/req "
             + ("| p50 µs (c4) | p99 µs (c4) " if lat_cols else "") + "| others' CPU | status |",
             "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if br else "") + "---:|---:|---:|"
             + ("---:|---:|" if lat_cols else "") + "---:|---|"]
    ng, hp = a.get("nginx"), a.get("haproxy")
    for t in _order(a):
        d = a[t]
        l = (lat or {}).get(t, {})
        status = d["status"] if l.get("valid", True) else f"{d['status']}; latency {l['status']}"
        proxy = t != "direct"
        lines.append(
            f"| {t} | {_f(d, 'rps', '{:,.0f}')} | {_f(d, 'rps_min', '{:,.0f}')}–{_f(d, 'rps_max', '{:,.0f}')} "
            f"| {_f(d, 'cpu_us_per_req', '{:.2f}') if proxy else '—'} "
            f"| {_f(d, 'core_busy', '{:.0%}') if proxy else '—'} "
            f"| {_fx(_ratio(d, ng, 'cpu_us_per_req')) if proxy and t != 'nginx' else ''} "
            f"| {_fx(_ratio(d, hp, 'cpu_us_per_req')) if proxy and t != 'haproxy' else ''} "
            + (f"| {_fx(_ratio(d, br, 'cpu_us_per_req')) if proxy and t != 'bare-relay' else ''} " if br else "")
            + f"| {_fx(_ratio(d, ng, 'rps')) if t != 'nginx' else ''} "
            f"| {_fx(_ratio(d, hp, 'rps')) if t != 'haproxy' else ''} "
            f"| {_f(d, 'upstream_cpu_us_per_req', '{:.2f}')} "
            + (f"| {_f(l, 'p50', '{:.0f}')} | {_f(l, 'p99', '{:.0f}')} " if lat_cols else "")
            + f"| {_f(d, 'other_load', '{:.0%}')} | {status} |")
    return lines


def big_table(a):
    br = a.get("bare-relay")  # the column exists only when the bare relay was measured
    lines = ["| target | req/s (median) | MiB/s | proxy CPU µs/MiB | proxy CPU, % of one core | CPU/MiB vs nginx "
             "| vs HAProxy | vs HAProxy+splice " + ("| vs bare relay " if br else "")
             + "| throughput vs direct | pipe fds after run | others' CPU | status |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if br else "") + "---:|---:|---:|---|"]
    ng, hp, hs, di = a.get("nginx"), a.get("haproxy"), a.get("haproxy+splice"), a.get("direct")
    for t in _order(a):
        d = a[t]
        proxy = t != "direct"
        # Each request moves exactly one 1 MiB body, so µs per request == µs per MiB.
        lines.append(
            f"| {t} | {_f(d, 'rps', '{:,.0f}')} | {_f(d, 'rps', '{:,.0f}')} "
            f"| {_f(d, 'cpu_us_per_req', '{:.0f}') if proxy else '—'} "
            f"| {_f(d, 'core_busy', '{:.0%}') if proxy else '—'} "
            f"| {_fx(_ratio(d, ng, 'cpu_us_per_req')) if proxy and t != 'nginx' else ''} "
            f"| {_fx(_ratio(d, hp, 'cpu_us_per_req')) if proxy and t != 'haproxy' else ''} "
            f"| {_fx(_ratio(d, hs, 'cpu_us_per_req')) if proxy and t != 'haproxy+splice' else ''} "
            + (f"| {_fx(_ratio(d, br, 'cpu_us_per_req')) if proxy and t != 'bare-relay' else ''} " if br else "")
            + f"| {_fx(_ratio(d, di, 'rps')) if proxy else ''} | {_f(d, 'pipes', '{:.0f}') if proxy else '—'} "
            f"| {_f(d, 'other_load', '{:.0%}')} | {d['status']} |")
    return lines


def idle_table(idle):
    lines = ["| target | connections ok | RSS before (KiB) | RSS with connections (KiB) | KiB per connection "
             "| RSS after closing (KiB) | status |", "|---|---:|---:|---:|---:|---:|---|"]
    for e in sorted(idle, key=lambda e: _order([x["target"] for x in idle]).index(e["target"])):
        status = "ok" if not e["problems"] else "INVALID: " + "; ".join(e["problems"])[:300]
        name = e["target"] + (" (the upstream nginx itself)" if e["target"] == "direct" else "")
        lines.append(f"| {name} | {e.get('ok', '—')}/{e.get('wanted', '—')} | {e.get('rss_before_kib', '—')} "
                     f"| {e.get('rss_after_kib', '—')} | {_f(e, 'kib_per_conn', '{:.2f}')} "
                     f"| {e.get('rss_closed_kib', '—')} | {status} |")
    return lines


def headline(agg, idle):
    out = []
    s = agg.get(("pinned", "small"), {})
    lat = agg.get(("pinned", "latency"), {})
    rw = s.get("ringway")
    if rw:
        ng, hp = s.get("nginx"), s.get("haproxy")
        better = max((x for x in (ng, hp) if x and x.get("valid")), key=lambda x: x["rps"], default=None)
        out.append(f"- small GET, pinned: ringway CPU/req = {_fx(_ratio(rw, ng, 'cpu_us_per_req'))} nginx, "
                   f"{_fx(_ratio(rw, hp, 'cpu_us_per_req'))} HAProxy; req/s = {_fx(_ratio(rw, ng, 'rps'))} nginx, "
                   f"{_fx(_ratio(rw, hp, 'rps'))} HAProxy, {_fx(_ratio(rw, better, 'rps'))} the better of the two"
                   + (f"; p99 at c4 = {_fx(_ratio(lat.get('ringway'), lat.get('nginx'), 'p99'))} nginx"
                      if lat else ""))
    br = s.get("bare-relay")
    if br:
        out.append(f"- small GET, pinned, against the floor: ringway CPU/req = "
                   f"{_fx(_ratio(rw, br, 'cpu_us_per_req'))} the bare io_uring relay; the bare relay = "
                   f"{_fx(_ratio(br, s.get('nginx'), 'cpu_us_per_req'))} nginx, "
                   f"{_fx(_ratio(br, s.get('haproxy'), 'cpu_us_per_req'))} HAProxy")
    for scen, title in (("big-get", "1 MiB GET"), ("big-post", "1 MiB POST")):
        b = agg.get(("pinned", scen), {})
        rw = b.get("ringway")
        if rw:
            out.append(f"- {title}, pinned: ringway CPU/MiB = {_fx(_ratio(rw, b.get('haproxy'), 'cpu_us_per_req'))} "
                       f"HAProxy, {_fx(_ratio(rw, b.get('haproxy+splice'), 'cpu_us_per_req'))} HAProxy+splice, "
                       f"{_fx(_ratio(rw, b.get('nginx'), 'cpu_us_per_req'))} nginx"
                       + (f", {_fx(_ratio(rw, b['bare-relay'], 'cpu_us_per_req'))} bare relay"
                          if b.get("bare-relay") else "")
                       + f"; throughput = {_fx(_ratio(rw, b.get('direct'), 'rps'))} direct")
    w = agg.get(("whole box", "wholebox"), {})
    rw = w.get("ringway")
    if rw:
        out.append(f"- small GET, whole box: ringway req/s = {_fx(_ratio(rw, w.get('nginx'), 'rps'))} nginx, "
                   f"{_fx(_ratio(rw, w.get('haproxy'), 'rps'))} HAProxy")
    for e in idle:
        if e["target"] == "ringway" and "kib_per_conn" in e:
            out.append(f"- idle keep-alive: ringway {e['kib_per_conn']:.2f} KiB RSS per connection"
                       + ("" if not e["problems"] else " (INVALID)"))
    return out


def targets_check(agg, idle, idle_tls=()):
    """The numeric targets of issues 3, 4 (and 12, 13 when measured), computed from this run only."""
    rows = []

    def row(what, val, limit, higher_is_better=False):
        if val is None:
            rows.append(f"| {what} | n/a | {'≥' if higher_is_better else '≤'} {limit} | not measured or invalid |")
            return
        ok = val >= limit if higher_is_better else val <= limit
        rows.append(f"| {what} | {val:.2f} | {'≥' if higher_is_better else '≤'} {limit} | {'met' if ok else 'NOT met'} |")

    s = agg.get(("pinned", "small"), {})
    rw = s.get("ringway")
    if rw:
        row("small GET CPU/req vs nginx", _ratio(rw, s.get("nginx"), "cpu_us_per_req"), 0.8)
        row("small GET CPU/req vs HAProxy", _ratio(rw, s.get("haproxy"), "cpu_us_per_req"), 0.8)
        cands = [x for x in (s.get("nginx"), s.get("haproxy")) if x and x.get("valid")]
        better = max(cands, key=lambda x: x["rps"]) if len(cands) == 2 else None
        row("small GET req/s vs the better of nginx/HAProxy", _ratio(rw, better, "rps"), 1.1, True)
        if s.get("bare-relay"):
            # Issue 12, same run: better = the lower CPU/req of the two.
            row("small GET CPU/req vs the better of nginx/HAProxy (issue 12)",
                _ratio(rw, _better_cpu(s), "cpu_us_per_req"), 0.8)
            row("small GET CPU/req vs the bare relay (issue 12)",
                _ratio(rw, s["bare-relay"], "cpu_us_per_req"), 1.05)
    lat = agg.get(("pinned", "latency"), {})
    if lat.get("ringway"):
        row("p99 at c4 vs nginx", _ratio(lat["ringway"], lat.get("nginx"), "p99"), 1.0)
    for e in idle:
        if e["target"] == "ringway":
            row("idle connection RSS, KiB", e.get("kib_per_conn") if not e["problems"] else None, 4.0)
    for scen, title in (("big-get", "1 MiB GET"), ("big-post", "1 MiB POST")):
        b = agg.get(("pinned", scen), {})
        if b.get("ringway"):
            row(f"{title} CPU/MiB vs HAProxy", _ratio(b["ringway"], b.get("haproxy"), "cpu_us_per_req"), 0.5)
            row(f"{title} CPU/MiB vs HAProxy+splice",
                _ratio(b["ringway"], b.get("haproxy+splice"), "cpu_us_per_req"), 0.5)
            row(f"{title} throughput vs direct", _ratio(b["ringway"], b.get("direct"), "rps"), 0.95, True)
    n_plain = len(rows)
    # Issue 13: HTTPS, against the better of nginx and HAProxy (lower CPU, higher req/s), same run.
    a = agg.get(("pinned", "https-small"), {})
    if a.get("ringway"):
        row("HTTPS small GET CPU/req vs the better of nginx/HAProxy (issue 13)",
            _ratio(a["ringway"], _better_cpu(a), "cpu_us_per_req"), 0.8)
        row("HTTPS small GET req/s vs the better of nginx/HAProxy (issue 13)",
            _ratio(a["ringway"], _better_rps(a), "rps"), 1.1, True)
    for scen, title in (("https-1m-get", "HTTPS 1 MiB GET"), ("https-1m-post", "HTTPS 1 MiB POST")):
        a = agg.get(("pinned", scen), {})
        if a.get("ringway"):
            row(f"{title} CPU/MiB vs the better of nginx/HAProxy (issue 13)",
                _ratio(a["ringway"], _better_cpu(a), "cpu_us_per_req"), 0.85)
    for scen, title in (("handshakes", "full"), ("resumed-handshakes", "resumed")):
        a = {t: _per_core(d) for t, d in agg.get(("pinned", scen), {}).items()}
        if a.get("ringway"):
            row(f"{title} TLS 1.3 handshakes per core-second vs nginx (issue 13)",
                _ratio(a["ringway"], a.get("nginx"), "per_core"), 1.0, True)
    if any(e["target"] == "ringway" for e in idle_tls):
        row("idle TLS connection RSS vs nginx (issue 13)", _idle_ratio(idle_tls, "ringway", "nginx"), 1.0)
    if not rows:
        return []
    names = ((["3", "4"] if n_plain else []) + (["12"] if s.get("bare-relay") else [])
             + (["13"] if len(rows) > n_plain else []))
    issues = ("issue " if len(names) == 1 else "issues ") + (
        ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0])
    return [f"| target ({issues}) | this run | goal | |", "|---|---:|---|---|"] + rows


def threads_seen(results):
    """Thread names seen per target, and whether CPU went to threads that exited mid-run (the
    process total minus the live threads; per-thread tick rounding makes that +-1 tick each)."""
    seen = {}
    for r in results["runs"]:
        if r["target"] == "direct":
            continue
        d = seen.setdefault((r["layout"], r["target"]), {"names": {}, "gone_us": 0.0, "runs": 0})
        for k, v in r.get("threads_seen", {}).items():
            d["names"][k] = max(d["names"].get(k, 0), v)
        if "cpu_us" in r:
            d["gone_us"] += r["cpu_us"] - r["cpu_live_tasks_us"]
            d["runs"] += 1
    lines = []
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    for layout in sorted({k[0] for k in seen}, key=lambda l: l != "pinned"):
        for t in _order([k[1] for k in seen if k[0] == layout]):
            d = seen[(layout, t)]
            names = ", ".join(f"{k} x{v}" for k, v in sorted(d["names"].items()))
            slack = 2 * tick_us * max(d["runs"], 1)
            gone = (f"{d['gone_us'] / 1000:.0f} ms of CPU in threads that exited during runs"
                    if d["gone_us"] > slack else "no CPU in exited threads beyond tick rounding")
            lines.append(f"- {layout}, {t}: {names}; {gone}")
    return lines


def markdown(results, agg, chart_name):
    i = results["info"]
    st = results["settings"]
    L = [f"# ringway comparison — {i['date']}", "",
         f"- commit `{i['commit']}`, ringway binary `{i['ringway']}`"
         + (f", bare relay binary `{i['bare_relay']}`" if i.get("bare_relay") else ""),
         f"- machine: {i['cpu']}, kernel {i['kernel']}",
         f"- load average before the run: {i['load_start']}; after: {i.get('load_end', '?')} "
         "(the latter includes the benchmark itself)",
         f"- {i['nginx']}; {i['haproxy']}; {i['wrk']}",
         f"- command: `{i['command']}` (took {i.get('elapsed', '?')})",
         f"- {st['rounds']} interleaved rounds of {st['duration']} s wrk runs, order rotated each round; "
         "medians shown, with the min–max of req/s",
         f"- pinned layout: proxy under test with one worker on CPU {st['proxy_cpu']}; wrk (1 thread) and "
         f"the upstream nginx (1 worker) on CPU {st['load_cpu']}. Connections: small GET "
         f"{st['conns']['small']}, latency {st['conns']['latency']}, 1 MiB {st['conns']['big-get']}.",
         ""]
    other = sorted(r["other_load"] for r in results["runs"] if "other_load" in r)
    steal = sorted(r["steal"] for r in results["runs"] if "steal" in r)
    if other:
        med_o = statistics.median(other)
        L.insert(-1, f"- during the measured runs, other processes used a median {med_o:.0%} of the "
                     f"machine's CPU (max {other[-1]:.0%}); steal time (hypervisor) median "
                     f"{statistics.median(steal):.1%}, max {steal[-1]:.1%}")
        if med_o > 0.05 or other[-1] > 0.25:
            L += [f"**Warning: the machine was busy: other work used a median {med_o:.0%} (max "
                  f"{other[-1]:.0%}) of the CPU during the runs, so these numbers are rough. Rerun on "
                  "a quiet machine before quoting them.**", ""]
    L += [f"![chart]({chart_name}.png)", "", "## Headline", ""]
    idle_tls = results.get("idle_tls", [])
    L += (headline(agg, results["idle"]) + tls_headline(agg, idle_tls)) or ["- (ringway not measured)"]
    tc = targets_check(agg, results["idle"], idle_tls)
    if tc:
        L += ["", "## Targets", ""] + tc
    if ("pinned", "small") in agg:
        L += ["", "## Small GET (100-byte body), pinned, 64 connections", ""]
        L += small_table(agg[("pinned", "small")], agg.get(("pinned", "latency"), {}))
        L += ["", "p50/p99 come from separate runs at 4 connections (wrk `--latency`), same rounds. "
              "When the proxy's CPU is well below 100% of its core, the proxy was not the bottleneck: the "
              "shared wrk+upstream core was, and req/s then also reflects how much work each proxy makes "
              "the other side do (see upstream µs/req)."]
    for scen, title in (("big-get", "1 MiB GET"), ("big-post", "1 MiB POST")):
        if ("pinned", scen) in agg:
            L += ["", f"## {title}, pinned, {st['conns'][scen]} connections", ""] + big_table(agg[("pinned", scen)])
    for scen, title, unit in (("cache-hit", "Cache hit, small GET (issue 16)", "req"),
                              ("cache-big", "Cache hit, 1 MiB GET (issue 16)", "MiB")):
        if ("pinned", scen) in agg:  # nginx proxy_cache and ringway --cache answer /cached/*
            L += ["", f"## {title}, pinned, {st['conns'].get(scen, 64)} connections", ""]
            L += tls_table(agg[("pinned", scen)], unit)
    if results["idle"]:
        L += ["", f"## {st['idle_conns']} idle keep-alive client connections, pinned", "",
              "Each target is started fresh, warmed with a few requests, then gets the connections (one "
              "small GET each, kept open). KiB per connection = (RSS with connections - RSS before) / "
              "connections. RSS does not include kernel socket buffers.", ""]
        L += idle_table(results["idle"])
    tls_scen = [k for k in agg if k[0] == "pinned" and k[1] in ("https-small", "https-1m-get", "https-1m-post",
                                                                 "handshakes", "resumed-handshakes")]
    if tls_scen or idle_tls:
        neg = results.get("tls", {})
        L += ["", "## HTTPS (issue 13), pinned", "",
              f"nginx, HAProxy and ringway terminate TLS on a second listener of the same process with one "
              f"certificate made for the run (self-signed ECDSA P-256), TLS 1.3 only, cipher suite "
              f"`{st.get('tls_ciphersuite', 'TLS_AES_128_GCM_SHA256')}` only, ECDHE groups X25519, P-256, P-384 "
              "(clients offer X25519), session tickets on; plaintext HTTP/1.1 to the same upstream as above. nginx: "
              "`listen ... ssl`, `ssl_protocols TLSv1.3`, `ssl_conf_command Ciphersuites ...`, `ssl_ecdh_curve "
              "X25519:prime256v1:secp384r1`, `ssl_session_cache shared:SSL:10m`, `ssl_session_tickets on`; HAProxy: "
              "`bind ... ssl crt ... ssl-min-ver TLSv1.3 ciphersuites ... curves X25519:P-256:P-384` (its default "
              "session cache and tickets); ringway: `--listen-tls ... --tls-cert ... --tls-min-version 1.3 "
              "--tls-ciphersuites ...` (its default tickets). direct, haproxy+splice and the bare relay do not "
              "take part. When HTTPS scenarios are selected, the TLS listener is present in every step of the run. "
              "Negotiated with `openssl s_client` before measuring: "
              + ("; ".join(f"{t}: {d.get('protocol')}, {d.get('cipher')}, {d.get('group')}, {d.get('signature')}"
                           for t, d in sorted(neg.items())) or "not recorded") + "."]
    if ("pinned", "https-small") in agg:
        L += ["", f"### HTTPS small GET (100-byte body), keep-alive, {st['conns'].get('https-small', 64)} connections",
              ""] + tls_table(agg[("pinned", "https-small")], "req")
    for scen, title in (("https-1m-get", "HTTPS 1 MiB GET"), ("https-1m-post", "HTTPS 1 MiB POST")):
        if ("pinned", scen) in agg:
            L += ["", f"### {title}, keep-alive, {st['conns'].get(scen, 16)} connections", ""]
            L += tls_table(agg[("pinned", scen)], "MiB")
    for scen, title in (("handshakes", "Full TLS 1.3 handshakes (`openssl s_time -new`)"),
                        ("resumed-handshakes", "Resumed TLS 1.3 handshakes (`openssl s_time -reuse`, session tickets)")):
        if ("pinned", scen) in agg:
            L += ["", f"### {title}, {st['conns'].get(scen, 4)} clients at once", ""]
            L += handshake_table(agg[("pinned", scen)])
    if tls_scen and any(k[1] in ("handshakes", "resumed-handshakes") for k in tls_scen):
        L += ["", "Each s_time connection makes one handshake, sends `GET /small HTTP/1.0` and reads to the "
              "server's close, so the proxy's CPU per handshake also covers the accept, one small proxied "
              "request and the close, alike for every target. The clients run on the load CPU and are the "
              "bottleneck (the proxy's core is not saturated): compare handshakes per core-second (1 s / "
              "the proxy's CPU per handshake), not handshakes/s. The resumed run is INVALID if any "
              "connection failed to resume, the full run if any did."]
    if idle_tls:
        L += ["", f"### {st.get('idle_tls_conns', '?')} idle TLS keep-alive client connections", "",
              "A fresh process per target; an asyncio client (Python ssl, TLS 1.3) opens the connections, "
              "64 handshakes at a time, sends one small GET on each, reads the response and keeps the "
              "connection open. KiB per connection = (RSS with connections - RSS before) / connections; "
              "RSS does not include kernel socket buffers.", ""]
        L += idle_table(idle_tls)
    if ("whole box", "wholebox") in agg:
        L += ["", "## Small GET, whole box (2 workers each, nothing pinned, wrk -t2, upstream 2 workers)", "",
              "Here wrk, the upstream and the proxy compete for both CPUs, so CPU per request includes "
              "contention effects; treat req/s as the headline.", ""]
        L += small_table(agg[("whole box", "wholebox")], None)
    L += ["", "## How the numbers are taken", "",
          "- CPU: utime+stime from `/proc/PID/stat` of every process of the proxy (nginx: master and workers) "
          "before and after each run. That count covers every thread of the process, including threads "
          "that exited during the run and the kernel's io_uring helpers that live in the process: io-wq "
          "workers (`iou-wrk-*`) and, if enabled, SQPOLL threads (`iou-sqp-*`). `/proc/PID/task/*/stat` is "
          "summed too, to see what live threads hold. Resolution is one clock tick (10 ms) per run.",
          "- Others' CPU: the share of the whole machine's CPU (from /proc/stat) used during a target's "
          "runs by anything other than the proxy, the upstream, wrk and this script (median over rounds). "
          "Well above 0% means other work was competing; req/s suffers most, CPU per request less.",
          "- Errors: any wrk socket error (connect/read/write/timeout), any status >= 400, too few or too "
          "many response bytes for the requests counted, a proxy process that died or changed, make the "
          "run INVALID; INVALID results stay in the table and get no ratios.",
          "- Before measuring, each target passes a check on one keep-alive connection: small GET, 1 MiB "
          "GET (SHA-256 compared), 1 MiB POST, small GET"
          + ("; with HTTPS scenarios the same again over TLS (certificate verified), an HTTP/1.0 GET without "
             "Host over TLS (the request s_time sends), and an `openssl s_client` probe of what is negotiated."
             if results.get("tls") else "."),
          "- nginx proxy config: `upstream` with `keepalive 64`, `proxy_http_version 1.1`, `proxy_set_header "
          "Connection \"\"`, `proxy_request_buffering off`, `proxy_max_temp_file_size 0`, access_log off. "
          "HAProxy: `mode http`, `http-reuse always`, no logs, `nbthread` = workers; haproxy+splice adds "
          + ("`option splice-request` and `option splice-response` (forced kernel splicing: HAProxy 2.6's "
             "`option splice-auto` made no splice(2) calls at all in this setup, checked with strace, so it "
             "would just repeat the plain haproxy entry)"
             if st.get("haproxy_splice", "forced") == "forced" else
             "`option splice-auto` (note: 2.6 may never splice on loopback; run with "
             "`--haproxy-splice forced` to compare against real kernel splicing)")
          + ". ringway: `--threads N --access-log off`."
          + (" bare-relay: `bench/relay/bare_relay`, one thread, no HTTP work: one upstream connection per "
             "client connection, bytes copied both ways with io_uring receives into provided 64 KiB buffers "
             "and sends (as ringway's engine drives the kernel); for small requests the floor of what relaying "
             "costs here. It never splices, so for 1 MiB bodies it is a copy relay that a splicing proxy "
             "can beat. Pinned layout only." if i.get("bare_relay") else ""),
          "- Upstream: nginx (1 worker pinned, or 2 in the whole-box layout) serving static files for the GETs (100 B and 1 MiB), and for POST "
          + ("`echo_read_request_body` (the whole body is read before the 2-byte reply)."
             if i.get("post_reads_body", True) else
             "`return 200` (nginx discards the body and may answer before the upload is complete)."),
          ]
    for layout, by_target in results.get("affinity", {}).items():
        L += ["", f"CPU affinity of each target's threads after start ({layout} layout; cpu list: thread names):", ""]
        for t in _order(by_target):
            L.append(f"- {t}: " + "; ".join(f"{cpus}: {', '.join(n)}" for cpus, n in by_target[t].items()))
    th = threads_seen(results)
    if th:
        L += ["", "Threads seen in each proxy during the runs (max at once, sampled every 250 ms):", ""] + th
    if results["failures"] or results["crashes"]:
        L += ["", "## Failures", ""]
        for f in results["failures"]:
            L.append(f"- {f['layout']}: {f['target']}: {f['reason']}")
        for c in results["crashes"]:
            L.append(f"- {c['layout']}: {c['target']} died during {c['scenario']} ({c['status']}); last log lines:")
            L += ["", "```", c["log"] or "(empty)", "```", ""]
    return "\n".join(L) + "\n"


def chart(results, agg, tmp, out_base):
    """gnuplot 2x2: small GET req/s, small GET CPU/req, 1 MiB CPU/MiB, whole-box req/s."""
    def dat(name, rows):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            for r in rows:
                f.write(" ".join(str(x) for x in r) + "\n")
        return p

    def val(d, k):
        return d[k] if d and k in d else "?"

    def lab(d, k, fmt):
        if not d or k not in d:
            return '"n/a"'
        return '"' + fmt.format(d[k]) + ("" if d.get("valid") else " INVALID") + '"'

    s = agg.get(("pinned", "small"), {})
    w = agg.get(("whole box", "wholebox"), {})
    g = agg.get(("pinned", "big-get"), {})
    p = agg.get(("pinned", "big-post"), {})
    small_rows = [(f'"{t}"', val(s[t], "rps"), lab(s[t], "rps", "{:,.0f}")) for t in _order(s)]
    cpu_rows = [(f'"{t}"', val(s[t], "cpu_us_per_req"), lab(s[t], "cpu_us_per_req", "{:.1f}"))
                for t in _order(s) if t != "direct"]
    big_names = [t for t in _order(set(g) | set(p)) if t != "direct"]
    big_rows = [(f'"{t}"', val(g.get(t), "cpu_us_per_req"), val(p.get(t), "cpu_us_per_req"),
                 lab(g.get(t), "cpu_us_per_req", "{:.0f}"), lab(p.get(t), "cpu_us_per_req", "{:.0f}"))
                for t in big_names]
    wb_rows = [(f'"{t}"', val(w[t], "rps"), lab(w[t], "rps", "{:,.0f}")) for t in _order(w)]
    i = results["info"]
    panels = []
    if small_rows:
        f = dat("small.dat", small_rows)
        panels.append(f"set title 'small GET, pinned: requests/s (higher is better)'\n"
                      f"plot '{f}' using 2:xtic(1) lc rgb '#4477aa' notitle, "
                      f"'' using 0:2:3 with labels offset 0,0.8 notitle")
    if cpu_rows:
        f = dat("cpu.dat", cpu_rows)
        panels.append(f"set title 'small GET, pinned: proxy CPU µs per request (lower is better)'\n"
                      f"plot '{f}' using 2:xtic(1) lc rgb '#cc6677' notitle, "
                      f"'' using 0:2:3 with labels offset 0,0.8 notitle")
    if big_rows:
        f = dat("big.dat", big_rows)
        panels.append(f"set title '1 MiB bodies, pinned: proxy CPU µs per MiB (lower is better)'\n"
                      f"set key top left\n"
                      f"plot '{f}' using 2:xtic(1) lc rgb '#228833' title 'GET', "
                      f"'' using 3 lc rgb '#ccbb44' title 'POST', "
                      f"'' using ($0-1.0/6):2:4 with labels offset 0,0.8 font ',8' notitle, "
                      f"'' using ($0+1.0/6):3:5 with labels offset 0,0.8 font ',8' notitle\n"
                      f"unset key")
    # HTTPS (issue 13): each scenario's proxy CPU per request / MiB / handshake relative to nginx.
    tls_rows = []
    for scen, label in (("https-small", "small GET"), ("https-1m-get", "1 MiB GET"), ("https-1m-post", "1 MiB POST"),
                        ("handshakes", "full handshake"), ("resumed-handshakes", "resumed handshake")):
        a = agg.get(("pinned", scen), {})
        ng = a.get("nginx")
        if not ng or not (a.get("haproxy") or a.get("ringway")):
            continue
        hr, rr = _ratio(a.get("haproxy"), ng, "cpu_us_per_req"), _ratio(a.get("ringway"), ng, "cpu_us_per_req")
        tls_rows.append((f'"{label}"', "?" if hr is None else hr, "?" if rr is None else rr,
                         '"n/a"' if hr is None else f'"{hr:.2f}"', '"n/a"' if rr is None else f'"{rr:.2f}"'))
    if tls_rows:
        f = dat("tls.dat", tls_rows)
        panels.append(f"set title 'HTTPS, pinned: proxy CPU per request / MiB / handshake, relative to nginx "
                      f"(nginx = 1, lower is better)'\n"
                      f"set key top left\nset format y '%.1f'\n"
                      f"plot '{f}' using 2:xtic(1) lc rgb '#ccbb44' title 'HAProxy', "
                      f"'' using 3 lc rgb '#4477aa' title 'ringway', "
                      f"'' using ($0-1.0/6):2:4 with labels offset 0,0.8 font ',8' notitle, "
                      f"'' using ($0+1.0/6):3:5 with labels offset 0,0.8 font ',8' notitle\n"
                      f"unset key\nset format y '%.0f'")
    if wb_rows:
        f = dat("wb.dat", wb_rows)
        panels.append(f"set title 'small GET, whole box (2 workers): requests/s'\n"
                      f"plot '{f}' using 2:xtic(1) lc rgb '#66ccee' notitle, "
                      f"'' using 0:2:3 with labels offset 0,0.8 notitle")
    if not panels:
        return []
    cols = 2 if len(panels) > 1 else 1
    rows = (len(panels) + 1) // 2
    common = ("set style data histogram\nset style histogram clustered gap 1\n"
              "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
              "set offsets 0,0,graph 0.12,0\nset grid ytics\nunset key\nset datafile missing '?'\n"
              "set format y '%.0f'\n")
    body = (f"set multiplot layout {rows},{cols} title \"ringway comparison — {i['date']}, commit "
            f"{i['commit']}, {i['cpu']}, kernel {i['kernel']}\"\n" + "\n".join(panels) + "\nunset multiplot\n")
    made = []
    for term, ext in (("pngcairo size 1400,{h} font 'sans,10'", "png"),
                      ("svg size 1400,{h} dynamic font 'sans,10'", "svg")):
        path = f"{out_base}.{ext}"
        script = f"set terminal {term.format(h=420 * rows)}\nset output '{path}'\n{common}{body}"
        gp = os.path.join(tmp, f"chart-{ext}.gp")
        with open(gp, "w") as fh:
            fh.write(script)
        r = subprocess.run(["gnuplot", gp], capture_output=True, timeout=60)
        if r.returncode == 0 and os.path.exists(path):
            made.append(path)
        else:
            print(f"gnuplot ({ext}) failed: {r.stderr.decode()[-500:]}")
    return made


def write_all(results, out_dir, name, tmp):
    base = os.path.join(out_dir, name)
    # The raw runs first: if rendering fails, nothing measured is lost (--from-json redoes the rest).
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    agg = aggregate(results)
    md = base + ".md"
    with open(md, "w") as f:
        f.write(markdown(results, agg, name))
    return [md, base + ".json"] + chart(results, agg, tmp, base)
