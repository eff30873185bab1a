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
