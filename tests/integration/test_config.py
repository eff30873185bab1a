"""Command line and --config file: -t validation, file equivalent to flags, --help/--version."""

import json
import subprocess

from client import Conn, assert_problem
from conftest import BINARY, free_port


def run(*args, timeout=20):
    return subprocess.run([str(BINARY), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, text=True)


def test_t_good_flags_exit_0(ringway_bin):
    p = run("-t", "--listen", f"127.0.0.1:{free_port()}", "--route", "/a/=http://127.0.0.1:9")
    assert p.returncode == 0, p.stderr


def test_t_bad_flags_exit_nonzero_with_message(ringway_bin):
    for bad in (["--route", "no-equals-sign"], ["--route", "/a/=ftp://127.0.0.1:1"],
                ["--max-body-size", "lots"], ["--client-header-timeout", "soon"],
                ["--listen", "127.0.0.1:notaport"], ["--no-such-flag"]):
        p = run("-t", "--listen", f"127.0.0.1:{free_port()}", *bad)
        assert p.returncode != 0, (bad, p)
        assert p.stderr.strip(), (bad, "no error message on stderr")


def test_t_config_file(tmp_path, ringway_bin):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"listen": [f"127.0.0.1:{free_port()}"],
                                "routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:9"]}]}))
    p = run("-t", "--config", str(good))
    assert p.returncode == 0, p.stderr
    for i, text in enumerate(['{"listen": ', '{"routes": [{"prefix": "/a/"}]}', '{"threads": "many"}',
                              '{"no_such_key": 1}']):
        bad = tmp_path / f"bad{i}.json"
        bad.write_text(text)
        p = run("-t", "--config", str(bad))
        assert p.returncode != 0, (text, p)
        assert p.stderr.strip(), (text, "no error message on stderr")
    p = run("-t", "--config", str(tmp_path / "missing.json"))
    assert p.returncode != 0 and p.stderr.strip()


def test_help_and_version(ringway_bin):
    p = run("--help")
    assert p.returncode == 0 and "--route" in p.stdout
    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip()


def test_config_file_equivalent_to_flags(gateway, upstream, tmp_path):
    a, b = upstream("a"), upstream("b")
    port, admin_port = free_port(), free_port()
    cfg = {
        "listen": [f"127.0.0.1:{port}"],
        "admin_listen": f"127.0.0.1:{admin_port}",
        "threads": 1,
        "routes": [{"prefix": "/api/users/", "upstreams": [a.url, b.url]}],
        "add_headers": {"X-Gateway": "True"},
        "max_body_size": "1k",
        "access_log": str(tmp_path / "file-access.log"),
        "timeouts": {"upstream_response": "1s", "drain": "3s"},
    }
    path = tmp_path / "ringway.json"
    path.write_text(json.dumps(cfg))
    from conftest import Gateway
    gw = Gateway(tmp_path, [str(BINARY), "--config", str(path)], port, admin_port, None, 3.0)
    gateway.gateways.append(gw)  # stopped (and checked) by the fixture
    why = gw.wait_ready()
    assert why is None, f"{why}\n{gw.stderr()[-2000:]}"
    with Conn(port) as c:
        seen = set()
        for i in range(4):
            doc = c.request("GET", f"/api/users/{i}?q=1").json()
            assert doc["target"] == f"/{i}?q=1"
            assert [v for k, v in doc["headers"] if k.lower() == "x-gateway"] == ["True"]
            seen.add(doc["upstream"])
        assert seen == {"a", "b"}
        assert_problem(c.request("POST", "/api/users/x", body=b"z" * 2000), 413)
    with Conn(port, timeout=15) as c:
        assert_problem(c.request("GET", "/api/users/hang"), 504)


def test_flags_override_config_file(gateway, echo, tmp_path):
    path = tmp_path / "ringway.json"
    path.write_text(json.dumps({"routes": [{"prefix": "/api/users/", "upstreams": [echo.url]}],
                                "max_body_size": "1k"}))
    gw = gateway(args=["--config", str(path), "--max-body-size", "4k"])
    with Conn(gw.port) as c:
        assert c.request("POST", "/api/users/x", body=b"z" * 2000).status == 200


def test_t_cluster_rate_limit_settings(ringway_bin, tmp_path):
    """scope=cluster (issue 15) is validated with its Redis settings; the mistakes are named."""
    base = ["-t", "--listen", f"127.0.0.1:{free_port()}", "--route", "/a/=http://127.0.0.1:9"]
    p = run(*base, "--rate-limit", "100/s,burst=20,key=ip,scope=cluster", "--redis", "127.0.0.1:6379",
            "--redis-failure", "local:3")
    assert p.returncode == 0, p.stderr
    cfg = tmp_path / "cluster.json"
    cfg.write_text(json.dumps({"rate_limits": ["10/s,scope=cluster"],
                               "redis": {"address": "unix:/run/redis.sock", "failure": "deny",
                                         "password": "pw", "database": 1}}))
    p = run(*base, "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    p = run(*base, "--rate-limit", "10/s,scope=cluster")
    assert p.returncode != 0 and "scope=cluster needs --redis" in p.stderr, p.stderr
    p = run(*base, "--rate-limit", "10/s,scope=cluster", "--redis", "127.0.0.1:6379", "--redis-failure", "maybe")
    assert p.returncode != 0 and "--redis-failure" in p.stderr, p.stderr
    p = run(*base, "--rate-limit", "10/s,scope=local")
    assert p.returncode == 0, p.stderr
