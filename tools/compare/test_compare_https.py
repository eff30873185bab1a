"""Self-checks of the comparison tool's HTTPS parts (issue 13) that need no load and no ringway
binary: the report's ratios against the better of nginx and HAProxy, the s_time output parsing,
and that nginx and HAProxy accept the generated TLS configurations (`nginx -t`, `haproxy -c`).

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tools/compare/test_compare_https.py
(about a second; not part of tests/integration, the tool is not shipped)."""

import os
import shutil
import subprocess
import sys

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402
import loadgen  # noqa: E402
import report  # noqa: E402


def _run(target, scen, rps, cpu_us_per_req, **extra):
    r = {"layout": "pinned", "scenario": scen, "target": target, "round": 1, "rps": rps,
         "cpu_us_per_req": cpu_us_per_req, "core_busy": 0.5, "problems": []}
    r.update(extra)
    return r


def _results(runs, idle_tls=()):
    return {"info": {"date": "d", "commit": "c", "ringway": "r", "cpu": "cpu", "kernel": "k",
                     "load_start": "0", "nginx": "n", "haproxy": "h", "wrk": "w", "command": "cmd"},
            "settings": {"rounds": 1, "duration": 1, "proxy_cpu": "1", "load_cpu": "0", "idle_conns": 10,
                         "idle_tls_conns": 2000, "tls_ciphersuite": "TLS_AES_128_GCM_SHA256",
                         "conns": {"small": 64, "latency": 4, "big-get": 16, "big-post": 16,
                                   "https-small": 64, "https-1m-get": 16, "https-1m-post": 16,
                                   "handshakes": 4, "resumed-handshakes": 4}},
            "runs": list(runs), "idle": [], "idle_tls": list(idle_tls), "crashes": [], "failures": [],
            "affinity": {}, "tls": {"ringway": {"protocol": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256",
                                                "group": "X25519, 253 bits", "signature": "ECDSA"}}}


def _markdown(results):
    return report.markdown(results, report.aggregate(results), "x")


def _row(md, prefix):
    rows = [l for l in md.splitlines() if l.startswith(prefix)]
    assert len(rows) == 1, (prefix, rows)
    return [c.strip() for c in rows[0].split("|")]


def test_https_small_ratios_use_the_better_of_nginx_and_haproxy():
    # nginx has the lower CPU/req, HAProxy the higher req/s: each ratio must pick its own "better".
    md = _markdown(_results([_run("nginx", "https-small", 1000, 40.0), _run("haproxy", "https-small", 1200, 50.0),
                             _run("ringway", "https-small", 1500, 30.0)]))
    assert "### HTTPS small GET" in md
    cells = _row(md, "| HTTPS small GET CPU/req vs the better")
    assert cells[2] == "0.75" and cells[4] == "met"           # 30 / 40
    cells = _row(md, "| HTTPS small GET req/s vs the better")
    assert cells[2] == "1.25" and cells[4] == "met"           # 1500 / 1200
    ring = _row(md, "| ringway | 1,500")
    assert ring[8] == "0.75x" and ring[9] == "1.25x"          # vs the better: CPU, req/s


def test_https_big_and_handshake_targets():
    runs = [_run("nginx", "https-1m-get", 100, 1000.0), _run("haproxy", "https-1m-get", 90, 1200.0),
            _run("ringway", "https-1m-get", 95, 900.0),
            _run("nginx", "handshakes", 300, 500.0), _run("haproxy", "handshakes", 280, 400.0),
            _run("ringway", "handshakes", 320, 450.0),
            _run("nginx", "resumed-handshakes", 600, 200.0, resumed=100, full=0),
            _run("haproxy", "resumed-handshakes", 600, 250.0),
            _run("ringway", "resumed-handshakes", 600, 250.0)]
    md = _markdown(_results(runs))
    cells = _row(md, "| HTTPS 1 MiB GET CPU/MiB vs the better")
    assert cells[2] == "0.90" and cells[4] == "NOT met"       # 900 / 1000 > 0.85
    # Handshakes per core-second: 1e6 / CPU µs per handshake; the target is against nginx.
    cells = _row(md, "| full TLS 1.3 handshakes per core-second vs nginx")
    assert cells[2] == "1.11" and cells[4] == "met"           # (1e6/450) / (1e6/500)
    cells = _row(md, "| resumed TLS 1.3 handshakes per core-second vs nginx")
    assert cells[2] == "0.80" and cells[4] == "NOT met"
    assert "| ringway | 320 | 320–320 | 450 | 2,222 |" in md


def test_invalid_reference_gives_no_ratio():
    runs = [_run("nginx", "https-small", 1000, 40.0, problems=["wrk errors read=3"]),
            _run("haproxy", "https-small", 1200, 50.0), _run("ringway", "https-small", 1500, 30.0)]
    md = _markdown(_results(runs))
    assert _row(md, "| HTTPS small GET CPU/req vs the better")[2] == "n/a"


def test_idle_tls_rss_against_nginx():
    idle = [{"target": "nginx", "problems": [], "ok": 2000, "wanted": 2000, "kib_per_conn": 20.0},
            {"target": "ringway", "problems": [], "ok": 2000, "wanted": 2000, "kib_per_conn": 15.0}]
    md = _markdown(_results([], idle))
    assert "### 2000 idle TLS keep-alive client connections" in md
    cells = _row(md, "| idle TLS connection RSS vs nginx")
    assert cells[2] == "0.75" and cells[4] == "met"


def test_plain_only_results_have_no_https_section():
    results = _results([_run("nginx", "small", 1000, 40.0), _run("ringway", "small", 1100, 30.0)])
    results["tls"] = {}
    md = _markdown(results)
    assert "HTTPS" not in md and "issue 13" not in md


S_TIME_REUSE = """Now timing with session id reuse.
starting
rrrrrr*rr

9 connections in 0.45s; 2006.67 connections/user sec, bytes read 3123
9 connections in 2 real seconds, 347 bytes read per connection
"""


def test_s_time_output_parsing():
    m = loadgen._S_TIME_CONNS.findall(S_TIME_REUSE)
    assert m == [("9", "347")]
    marks = "".join(l for l in S_TIME_REUSE.splitlines() if l and set(l) <= set("r*t3"))
    assert marks.count("r") == 8 and len(marks) == 9


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_generated_tls_configs_are_accepted(tmp_path):
    os.chmod(tmp_path, 0o755)
    tls = configs.make_tls_cert(str(tmp_path))
    if shutil.which("nginx"):
        d = tmp_path / "nginx"
        d.mkdir()
        conf = configs.nginx_proxy_conf(str(d), 1, 2, 1, dict(tls, port=3))
        text = open(conf).read()
        assert "ssl_protocols TLSv1.3;" in text and "Ciphersuites TLS_AES_128_GCM_SHA256" in text
        p = subprocess.run(["nginx", "-t", "-p", str(d), "-e", str(d / "error.log"), "-c", conf],
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr.decode()
    if shutil.which("haproxy"):
        d = tmp_path / "haproxy"
        d.mkdir()
        conf = configs.haproxy_conf(str(d), 1, 2, 1, None, dict(tls, port=3))
        assert "ssl-min-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256" in open(conf).read()
        p = subprocess.run(["haproxy", "-c", "-f", conf], capture_output=True, timeout=30)
        assert p.returncode == 0, (p.stdout + p.stderr).decode()
