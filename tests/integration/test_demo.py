"""--demo: built-in services behind the gateway."""

import json

from conftest import curl


def test_demo_users_and_products(gateway):
    gw = gateway(args=["--demo"])
    p = curl(f"{gw.url}/api/users/")
    assert p.returncode == 0, p.stderr
    users = json.loads(p.stdout)
    assert isinstance(users, list) and users
    p = curl("-o", "/dev/null", "-w", "%{http_code}", f"{gw.url}/api/products/")
    assert p.returncode == 0 and p.stdout == b"200"


def test_demo_serves_https_with_a_throwaway_certificate(gateway):
    import re
    import time
    from conftest import free_port
    port = free_port()
    gw = gateway(args=["--demo", "--listen-tls", f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 10
    while "--cacert" not in gw.stderr():
        assert time.monotonic() < deadline, gw.stderr()
        time.sleep(0.05)
    m = re.search(r"curl -i --cacert (\S+) (https://localhost:\d+)/api/users/", gw.stderr())
    assert m, gw.stderr()
    cert, base = m.group(1), m.group(2)
    assert base == f"https://localhost:{port}"
    p = curl("--cacert", cert, f"{base}/api/users/")  # verified against the printed certificate
    assert p.returncode == 0, p.stderr
    assert isinstance(json.loads(p.stdout), list)
    p = curl(f"{base}/api/users/")  # and it is not trusted by anything else
    assert p.returncode != 0
