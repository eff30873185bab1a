"""Load: wrk through ringway to Debian's nginx serving a small static file, zero errors allowed."""

import re
import shutil
import subprocess
import time

import pytest

from conftest import _die_with_parent, free_port, http_get

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx(tmp_path):
    root = tmp_path / "nginx"
    (root / "www").mkdir(parents=True)
    (root / "www" / "hello.json").write_text('{"hello": "world", "pad": "' + "x" * 200 + '"}\n')
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / d).mkdir()
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    default_type application/json;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/www;
        location / {{ }}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(root / "stderr.log", "wb"), preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if http_get(port, "/hello.json")[0] == 200:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nginx did not start: " + (root / "stderr.log").read_text()
                                     + (root / "error.log").read_text())
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_wrk_through_gateway_no_errors(gateway, nginx):
    gw = gateway(routes=[("/static/", nginx)], threads=0, access_log=False,
                 args=["--access-log", "off"])
    p = subprocess.run(["wrk", "-t2", "-c256", "-d30s", "--timeout", "10s", f"{gw.url}/static/hello.json"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    out = p.stdout + p.stderr
    print(out)
    assert p.returncode == 0, out
    m = re.search(r"(\d+) requests in", out)
    assert m and int(m.group(1)) > 0, out
    assert "Non-2xx or 3xx responses" not in out, out
    assert "Socket errors" not in out, out
    assert gw.proc.poll() is None, "gateway died under load"
    status, _, _ = http_get(gw.port, "/static/hello.json")
    assert status == 200
