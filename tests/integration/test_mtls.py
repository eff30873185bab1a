"""Client certificates (mTLS, issue 13): --tls-client-ca / --tls-client-auth, per-listener policy in
the JSON config, the verified subject forwarded to the upstream (client copies removed), `auth:
mtls` routes (401 / 403 problem+json), and the subject as a rate-limit key. Real clients: Python
ssl and curl, with a CA and client certificates made by the openssl CLI for this module."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest

from client import Conn
from conftest import curl, free_port


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, timeout=20, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a server certificate for localhost, two client certificates it signed, and one
    client certificate signed by another CA (an intruder)."""
    d = tmp_path_factory.mktemp("mpki")

    def ca(name: str):
        key, crt = d / f"{name}.key", d / f"{name}.pem"
        assert _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
                    "-subj", f"/CN={name}").returncode == 0
        return str(crt), str(key)

    def leaf(name: str, subj: str, issuer, ext_text: str):
        key, csr, crt, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
        ext.write_text(ext_text)
        assert _run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subj).returncode == 0
        p = _run("openssl", "x509", "-req", "-in", str(csr), "-CA", issuer[0], "-CAkey", issuer[1],
                 "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
        assert p.returncode == 0, p.stderr
        return str(crt), str(key)

    root = ca("mtls test CA")
    other = ca("other CA")
    server = leaf("localhost", "/CN=localhost", root, "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    client_ext = "extendedKeyUsage=clientAuth\n"
    return {
        "ca": root[0], "ca_key": root[1],
        "server": f"{server[0]}:{server[1]}",
        "alice": leaf("alice", "/O=ringway tests/CN=alice", root, client_ext),
        "bob": leaf("bob", "/O=ringway tests/CN=bob", root, client_ext),
        "intruder": leaf("mallory", "/O=ringway tests/CN=mallory", other, client_ext),
        "dir": d,
    }


ALICE = "CN=alice,O=ringway tests"
BOB = "CN=bob,O=ringway tests"


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def tls_gateway(gateway, pki, routes, auth: str, extra: list[str] | None = None):
    port = free_port()
    gw = gateway(routes=routes,
                 args=["--listen-tls", f"127.0.0.1:{port}", "--tls-cert", pki["server"],
                       "--tls-client-ca", pki["ca"], "--tls-client-auth", auth, *(extra or [])])
    gw.tls_port = port
    wait_port(port)
    return gw


class TlsConn(Conn):
    def __init__(self, port: int, pki, cert: str | None = None, timeout: float = 20):
        ctx = ssl.create_default_context(cafile=pki["ca"])
        if cert is not None:
            ctx.load_cert_chain(*pki[cert])
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock.settimeout(timeout)
        self.buf = b""


def forwarded(r) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in r.json()["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def handshake_refused(port: int, pki, cert: str | None) -> bool:
    """True when the server refuses the connection (TLS 1.3 reports it at the first read)."""
    try:
        with TlsConn(port, pki, cert) as c:
            c.sock.sendall(b"GET /open/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return c.sock.recv(1) == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_required_refuses_a_handshake_without_a_valid_certificate(gateway, echo, pki):
    gw = tls_gateway(gateway, pki, [("/open/", echo)], "required")
    assert handshake_refused(gw.tls_port, pki, None)
    assert handshake_refused(gw.tls_port, pki, "intruder")
    with TlsConn(gw.tls_port, pki, "alice") as c:
        r = c.request("GET", "/open/x")
        assert r.status == 200
    # curl, the everyday client, with the same certificate
    cert, key = pki["alice"]
    p = curl("--cacert", pki["ca"], "--cert", cert, "--key", key,
             f"https://localhost:{gw.tls_port}/open/curl")
    assert p.returncode == 0, p.stderr
    assert ALICE in json.dumps(json.loads(p.stdout)["headers"])
    p = curl("--cacert", pki["ca"], f"https://localhost:{gw.tls_port}/open/curl")
    assert p.returncode != 0


def test_verified_subject_is_forwarded_and_client_copies_removed(gateway, echo, pki):
    gw = tls_gateway(gateway, pki, [("/open/", echo)], "optional")
    forged = [("X-Client-Cert-Subject", "CN=admin"), ("x-client-cert-subject", "CN=root")]
    with TlsConn(gw.tls_port, pki, "alice") as c:
        h = forwarded(c.request("GET", "/open/a", forged))
        assert h["x-client-cert-subject"] == [ALICE]
    with TlsConn(gw.tls_port, pki, None) as c:  # optional: no certificate is fine, no subject
        r = c.request("GET", "/open/b", forged)
        assert r.status == 200
        assert "x-client-cert-subject" not in forwarded(r)
    with Conn(gw.port) as c:  # the plaintext listener removes the copies too
        assert "x-client-cert-subject" not in forwarded(c.request("GET", "/open/c", forged))


def test_auth_mtls_route_answers_401_and_403_as_problem_json(gateway, echo, pki, tmp_path):
    port = free_port()
    cfg = tmp_path / "mtls.json"
    cfg.write_text(json.dumps({
        "routes": [
            {"prefix": "/open/", "upstreams": [echo.url]},
            {"prefix": "/certs/", "upstreams": [echo.url], "auth": "mtls"},
            {"prefix": "/alice/", "upstreams": [echo.url], "auth": "mtls", "client_subjects": [ALICE]},
        ],
        "listen_tls": [f"127.0.0.1:{port}"],
        "tls": {"certs": [pki["server"]], "client_ca": pki["ca"], "client_auth": "optional",
                "client_subject_header": "X-Peer"},
    }))
    gw = gateway(args=["--config", str(cfg)])
    wait_port(port)
    with TlsConn(port, pki, None) as c:
        assert c.request("GET", "/open/x").status == 200
        r = c.request("GET", "/certs/x", [("X-Peer", ALICE)])
        assert r.status == 401 and r.header("content-type") == "application/problem+json"
        assert "client certificate" in r.json()["detail"]
    with Conn(gw.port) as c:
        assert c.request("GET", "/certs/x").status == 401
    with TlsConn(port, pki, "bob") as c:
        r = c.request("GET", "/certs/x")
        assert r.status == 200 and forwarded(r)["x-peer"] == [BOB]
        r = c.request("GET", "/alice/x")
        assert r.status == 403 and r.header("content-type") == "application/problem+json"
    with TlsConn(port, pki, "alice") as c:
        assert c.request("GET", "/alice/x").status == 200


def test_client_auth_per_listener_in_the_json_config(gateway, echo, pki, tmp_path):
    public, internal = free_port(), free_port()
    cfg = tmp_path / "listeners.json"
    cfg.write_text(json.dumps({
        "routes": [{"prefix": "/open/", "upstreams": [echo.url]}],
        "listen_tls": [f"127.0.0.1:{public}",
                       {"address": f"127.0.0.1:{internal}", "client_auth": "required"}],
        "tls": {"certs": [pki["server"]], "client_ca": pki["ca"]},
    }))
    gateway(args=["--config", str(cfg)])
    wait_port(public)
    wait_port(internal)
    with TlsConn(public, pki, None) as c:
        assert c.request("GET", "/open/x").status == 200
    assert handshake_refused(internal, pki, None)
    with TlsConn(internal, pki, "bob") as c:
        assert forwarded(c.request("GET", "/open/x"))["x-client-cert-subject"] == [BOB]


def test_rate_limit_keyed_by_client_certificate(gateway, echo, pki):
    gw = tls_gateway(gateway, pki, [("/open/", echo)], "optional",
                     ["--rate-limit", "2/m,key=client-cert"])
    with TlsConn(gw.tls_port, pki, "alice") as c:
        assert [c.request("GET", "/open/x").status for _ in range(3)] == [200, 200, 429]
    with TlsConn(gw.tls_port, pki, "bob") as c:  # another subject, its own budget
        assert c.request("GET", "/open/x").status == 200


def test_misconfigured_mtls_is_refused_at_start(ringway_bin, pki, echo):
    def check(*args: str) -> str:
        p = subprocess.run([str(ringway_bin), "-t", "--route", f"/a/={echo.url}", *args],
                           capture_output=True, timeout=20)
        assert p.returncode != 0
        return p.stderr.decode()

    assert "tls-client-ca" in check("--auth", "mtls")
    assert "client-cert" in check("--rate-limit", "1/s,key=client-cert")
    assert "tls-client-ca" in check("--listen-tls", "127.0.0.1:1", "--tls-cert", pki["server"],
                                    "--tls-client-auth", "required")


# ---- origination: per-upstream TLS settings, client certificates to upstreams --------------------

from upstreams import TlsEchoUpstream  # noqa: E402


@pytest.fixture
def tls_echo(pki):
    started = []

    def make(require_client_cert: bool = False) -> TlsEchoUpstream:
        cert, key = pki["server"].split(":")
        u = TlsEchoUpstream("tls-echo", cert, key, pki["ca"] if require_client_cert else None)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


def routes_file(tmp_path, routes) -> str:
    p = tmp_path / "routes.json"
    p.write_text(json.dumps({"routes": routes}))
    return str(p)


def test_upstream_requiring_a_client_certificate(gateway, pki, tls_echo, tmp_path):
    up = tls_echo(require_client_cert=True)
    cert, key = pki["alice"]
    cfg = routes_file(tmp_path, [
        {"prefix": "/with/", "upstreams": [{"url": up.url, "tls": {"ca": pki["ca"], "cert": cert, "key": key}}]},
        {"prefix": "/without/", "upstreams": [{"url": up.url, "tls": {"ca": pki["ca"]}}]},
    ])
    gw = gateway(args=["--config", cfg])
    with Conn(gw.port) as c:
        r = c.request("GET", "/with/x")
        assert r.status == 200, r
        assert r.json()["target"] == "/x"
        r = c.request("GET", "/without/x")
        assert r.status == 502 and r.header("content-type") == "application/problem+json"
    assert up.peers == ["organizationName=ringway tests,commonName=alice"]
    # TLS 1.3: the client is done before the server has judged its (missing) certificate, so the
    # 502 can come back before the upstream's thread has counted the refusal.
    deadline = time.monotonic() + 5
    while up.refused < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert up.refused >= 1


def test_upstream_ca_server_name_and_verify_false(gateway, pki, tls_echo, tmp_path):
    up = tls_echo()
    url_by_ip = f"https://127.0.0.1:{up.port}"
    cfg = routes_file(tmp_path, [
        # The global settings (system bundle) do not know the test CA; the upstream's own CA does.
        {"prefix": "/own-ca/", "upstreams": [{"url": up.url, "tls": {"ca": pki["ca"]}}]},
        {"prefix": "/global/", "upstreams": [up.url]},
        # The certificate names localhost: asking for another name fails, naming it works.
        {"prefix": "/named/", "upstreams": [{"url": url_by_ip, "tls": {"ca": pki["ca"], "server_name": "localhost"}}]},
        {"prefix": "/misnamed/", "upstreams": [{"url": up.url, "tls": {"ca": pki["ca"], "server_name": "api.test"}}]},
        {"prefix": "/unverified/", "upstreams": [{"url": up.url, "tls": {"verify": False}}]},
    ])
    gw = gateway(args=["--config", cfg])
    with Conn(gw.port) as c:
        assert c.request("GET", "/own-ca/x").status == 200
        assert c.request("GET", "/global/x").status == 502
        assert c.request("GET", "/named/x").status == 200
        assert c.request("GET", "/misnamed/x").status == 502
        assert c.request("GET", "/unverified/x").status == 200
    assert "not verified" in gw.stderr() and "/unverified/" in gw.stderr()


def test_upstream_tls_settings_are_checked(ringway_bin, pki, tmp_path):
    def check(upstream) -> str:
        p = subprocess.run([str(ringway_bin), "-t", "--config", routes_file(tmp_path, [
            {"prefix": "/a/", "upstreams": [upstream]}])], capture_output=True, timeout=20)
        assert p.returncode != 0
        return p.stderr.decode()

    assert "https://" in check({"url": "http://127.0.0.1:1", "tls": {"verify": False}})
    assert "go together" in check({"url": "https://localhost:1", "tls": {"cert": pki["alice"][0]}})
    assert "unknown key" in check({"url": "https://localhost:1", "tls": {"insecure": True}})
    assert "file" in check({"url": "https://localhost:1", "tls": {"ca": str(tmp_path / "missing.pem")}})


def test_https_aggregate_legs(gateway, pki, echo, tls_echo):
    up = tls_echo()
    gw = gateway(args=["--aggregate", f"/both=tls:{up.url}/x,plain:{echo.url}/y",
                       "--upstream-ca", pki["ca"]])
    with Conn(gw.port) as c:
        for _ in range(3):
            r = c.request("GET", "/both")
            assert r.status == 200, r
            doc = r.json()
            assert doc["tls"]["target"] == "/x" and doc["plain"]["target"] == "/y"
            assert dict((k.lower(), v) for k, v in doc["tls"]["headers"])["host"] == f"localhost:{up.port}"
    assert up.handshakes == 1  # the leg's TLS connection is pooled and reused
    # Without the test CA the leg's certificate check fails: 502, nothing goes out in plaintext.
    untrusting = gateway(args=["--aggregate", f"/untrusted=tls:{up.url}/x"])
    with Conn(untrusting.port) as c:
        assert c.request("GET", "/untrusted").status == 502
    assert up.request_count() == 3


# ---- visibility: access log fields and /metrics --------------------------------------------------

from conftest import http_get  # noqa: E402


def _poll(fn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def _metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return -1.0


def test_tls_parameters_in_the_access_log_and_handshakes_in_metrics(gateway, echo, pki):
    gw = tls_gateway(gateway, pki, [("/open/", echo)], "required", ["--client-header-timeout", "1s"])
    tls12 = ssl.create_default_context(cafile=pki["ca"])
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    tls12.load_cert_chain(*pki["alice"])

    def get12(session=None):
        raw = socket.create_connection(("127.0.0.1", gw.tls_port), timeout=10)
        s = tls12.wrap_socket(raw, server_hostname="localhost", session=session)
        s.sendall(b"GET /open/12 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
        out = (s.session, s.session_reused)
        s.close()
        return out

    with TlsConn(gw.tls_port, pki, "alice") as c:
        assert c.request("GET", "/open/13").status == 200
    session, reused = get12()
    assert not reused
    _, reused = get12(session)
    assert reused
    # Failures: no certificate, one from another CA, plaintext HTTP on the TLS port, TLS 1.1, a
    # client that says nothing.
    assert handshake_refused(gw.tls_port, pki, None)
    assert handshake_refused(gw.tls_port, pki, "intruder")
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        while s.recv(100):  # an alert at most, then the close
            pass
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{gw.tls_port}", "-tls1_1",
                        "-cipher", "DEFAULT@SECLEVEL=0"], input=b"", capture_output=True, timeout=20)
    assert p.returncode != 0
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as s:
        assert s.recv(1) == b""  # closed by the handshake timeout

    def lines():
        text = gw.access_log.read_text() if gw.access_log.exists() else ""
        got = [json.loads(line) for line in text.splitlines() if line]
        return got if len(got) >= 3 else None

    logged = _poll(lines)
    assert logged, "access log lines"
    by_path = {line["path"]: line["tls"] for line in logged}
    assert by_path["/open/13"]["version"] == "TLSv1.3" and by_path["/open/13"]["sni"] == "localhost"
    assert by_path["/open/13"]["cipher"].startswith("TLS_")
    # One full handshake, then one resumed; each worker buffers its own log lines, so the two
    # connections' lines may be written in either order.
    assert sorted(line["tls"]["resumed"] for line in logged if line["path"] == "/open/12") == [False, True]
    assert all(line["tls"]["version"] == "TLSv1.2" for line in logged if line["path"] == "/open/12")

    want = {
        'ringway_tls_handshakes_total{version="TLSv1.3",resumed="false"}': 1,
        'ringway_tls_handshakes_total{version="TLSv1.2",resumed="false"}': 1,
        'ringway_tls_handshakes_total{version="TLSv1.2",resumed="true"}': 1,
        'ringway_tls_handshake_failures_total{reason="no_client_certificate"}': 1,
        'ringway_tls_handshake_failures_total{reason="unknown_ca"}': 1,
        'ringway_tls_handshake_failures_total{reason="http_request"}': 1,
        'ringway_tls_handshake_failures_total{reason="protocol_version"}': 1,
        'ringway_tls_handshake_failures_total{reason="timeout"}': 1,
    }

    def metrics_ok():
        text = http_get(gw.admin_port, "/metrics")[2].decode()
        got = {k: _metric(text, k) for k in want}
        return got if all(got[k] >= v for k, v in want.items()) else None

    assert _poll(metrics_ok), http_get(gw.admin_port, "/metrics")[2].decode()
    # Plaintext requests leave the tls object out of their log line.
    with Conn(gw.port) as c:
        assert c.request("GET", "/open/plain").status == 200
    plain = _poll(lambda: [line for line in (lines() or []) if line["path"] == "/open/plain"])
    assert plain and "tls" not in plain[0]
