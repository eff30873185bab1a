"""HTTPS termination (issue 13): real TLS clients (Python ssl, curl, openssl s_client) against
--listen-tls, with certificates made by the openssl CLI for each test session."""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from client import Conn, build_request
from conftest import curl
from upstreams import pattern_bytes


def _run(*args: str, inp: bytes | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), input=inp, capture_output=True, timeout=timeout,
                          stdin=None if inp is not None else subprocess.DEVNULL)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and two server certificates it signed: localhost/127.0.0.1 (ECDSA) and
    api.test (RSA)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = d / "ca.key", d / "ca.pem"
    assert _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
                "-subj", "/CN=ringway test CA").returncode == 0

    def leaf(name: str, san: str, key_args: list[str]):
        key, csr, crt, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n")
        assert _run("openssl", "req", "-new", *key_args, "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", f"/CN={name}").returncode == 0
        p = _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
        assert p.returncode == 0, p.stderr
        return f"{crt}:{key}"

    return {
        "ca": str(ca),
        "local": leaf("localhost", "DNS:localhost,IP:127.0.0.1",
                      ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        "api": leaf("api.test", "DNS:api.test", ["-newkey", "rsa:2048"]),
        "renewed": leaf("renewed.localhost", "DNS:localhost,IP:127.0.0.1",
                        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    }


def tls_port(gw) -> int:
    return gw.tls_port


@pytest.fixture
def tgw(gateway, echo, pki):
    """A gateway with a plaintext and a TLS listener, /api/users/ routed to the echo upstream."""
    from conftest import free_port
    port = free_port()
    gw = gateway(routes=[("/api/users/", echo)],
                 args=["--listen-tls", f"127.0.0.1:{port}", "--tls-cert", pki["local"],
                       "--tls-cert", pki["api"], "--hsts", "600", "--client-header-timeout", "2s"])
    gw.tls_port = port
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return gw
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


class TlsConn(Conn):
    def __init__(self, port: int, ca: str, server_hostname: str = "localhost", timeout: float = 30,
                 context: ssl.SSLContext | None = None):
        ctx = context or ssl.create_default_context(cafile=ca)
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        self.sock.settimeout(timeout)
        self.buf = b""


def test_https_request_is_forwarded_with_https_proto_and_hsts(tgw, echo, pki):
    with TlsConn(tls_port(tgw), pki["ca"]) as c:
        assert c.sock.version() in ("TLSv1.3", "TLSv1.2")
        assert c.sock.selected_alpn_protocol() is None  # no ALPN asked
        r = c.request("GET", "/api/users/42?x=1")
        assert r.status == 200, r
        doc = r.json()
        assert doc["target"] == "/42?x=1"
        headers = {k.lower(): v for k, v in doc["headers"]}
        assert headers["x-forwarded-proto"] == "https"
        assert r.header("strict-transport-security") == "max-age=600"
        # keep-alive: more requests on the same TLS connection, pipelined too
        c.send(build_request("GET", "/api/users/a") + build_request("GET", "/api/users/b"))
        assert [c.read_response().json()["target"] for _ in range(2)] == ["/a", "/b"]
    # The plaintext listener still speaks plain HTTP, without HSTS.
    with Conn(tgw.port) as c:
        r = c.request("GET", "/api/users/plain")
        assert r.json()["target"] == "/plain"
        assert r.header("strict-transport-security") is None
        headers = {k.lower(): v for k, v in r.json()["headers"]}
        assert headers["x-forwarded-proto"] == "http"


def test_curl_verifies_the_certificate_and_gets_the_body(tgw, pki):
    p = curl("--cacert", pki["ca"], "--http1.1", f"https://localhost:{tls_port(tgw)}/api/users/curl")
    assert p.returncode == 0, p.stderr
    assert b'"target": "/curl"' in p.stdout
    p = curl(f"https://localhost:{tls_port(tgw)}/api/users/curl")  # no CA: refused by curl
    assert p.returncode != 0


@pytest.mark.parametrize("size", [1 << 20, 16 << 20])
def test_large_bodies_both_ways_over_tls(tgw, echo, pki, size):
    body = pattern_bytes(size)
    with TlsConn(tls_port(tgw), pki["ca"], timeout=60) as c:
        r = c.request("POST", "/api/users/upload", [("Content-Type", "application/octet-stream")], body)
        assert r.status == 200, r
        assert r.json()["body_len"] == size
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        r = c.request("GET", f"/api/users/bytes/{size}")
        assert r.status == 200
        assert len(r.body) == size
        assert hashlib.sha256(r.body).hexdigest() == r.header("x-body-sha256")
        assert c.request("GET", "/api/users/next").json()["target"] == "/next"


def test_expect_continue_over_tls(tgw, echo, pki):
    body = pattern_bytes(100_000)
    with TlsConn(tls_port(tgw), pki["ca"]) as c:
        c.send(build_request("PUT", "/api/users/e", [("Expect", "100-continue"),
                                                     ("Content-Length", str(len(body)))]))
        assert c._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue\r\n")
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and r.json()["body_len"] == len(body)


def _s_client(port: int, *extra: str, inp: bytes = b"Q\n") -> subprocess.CompletedProcess:
    return _run("openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra, inp=inp)


def test_versions_sni_and_resumption_with_openssl(tgw, pki, tmp_path):
    port = tls_port(tgw)
    p = _s_client(port, "-tls1_2", "-servername", "localhost", "-CAfile", pki["ca"])
    assert "Protocol  : TLSv1.2" in p.stdout.decode(), p.stdout.decode()[-2000:]
    assert "Verify return code: 0 (ok)" in p.stdout.decode()
    p = _s_client(port, "-tls1_3", "-servername", "localhost", "-CAfile", pki["ca"])
    assert "TLSv1.3" in p.stdout.decode()
    # TLS 1.1 and older are refused (RFC 8996)
    p = _s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert "Cipher is (NONE)" in p.stdout.decode() or p.returncode != 0
    # SNI picks the certificate whose names match; the first one is the default.
    p = _s_client(port, "-servername", "api.test", "-CAfile", pki["ca"])
    assert "subject=CN = api.test" in p.stdout.decode()
    p = _s_client(port, "-servername", "unknown.example", "-CAfile", pki["ca"])
    assert "subject=CN = localhost" in p.stdout.decode()
    # Resumption with a session ticket (TLS 1.2 shows it plainly as "Reused").
    sess = tmp_path / "sess.pem"
    p = _s_client(port, "-tls1_2", "-servername", "localhost", "-sess_out", str(sess))
    assert p.returncode == 0 and sess.exists()
    p = _s_client(port, "-tls1_2", "-servername", "localhost", "-sess_in", str(sess))
    assert "Reused, TLSv1.2" in p.stdout.decode(), p.stdout.decode()[-2000:]


def test_garbage_and_a_dripped_hello_do_not_hurt(tgw, pki):
    port = tls_port(tgw)
    # Plain HTTP sent to the TLS listener: the handshake fails and the connection closes.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"HTTP/1.1" not in data  # at most a TLS alert
    # A ClientHello that never completes is cut by the head timeout (2 s here).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a record, then nothing
        t0 = time.monotonic()
        s.settimeout(10)
        try:
            assert s.recv(4096) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 9
    # ...and the listener still serves.
    with TlsConn(port, pki["ca"]) as c:
        assert c.request("GET", "/api/users/after").json()["target"] == "/after"


def test_many_concurrent_handshakes(tgw, pki):
    port = tls_port(tgw)
    ctx = ssl.create_default_context(cafile=pki["ca"])
    results: list[int] = []
    lock = threading.Lock()

    def one(i: int):
        try:
            with TlsConn(port, pki["ca"], context=ctx, timeout=30) as c:
                status = c.request("GET", f"/api/users/h{i}").status
        except Exception:  # noqa: BLE001 - counted as a failure below
            status = -1
        with lock:
            results.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results.count(200) == 200, sorted(set(results))


# ---- origination: https:// upstreams ------------------------------------------------------------

from upstreams import Upstream  # noqa: E402


class TlsUpstream(Upstream):
    """The echo upstream behind TLS (Python ssl, server side); counts handshakes and resumptions."""

    def __init__(self, name: str, cert_key: str):
        cert, key = cert_key.split(":")
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.handshakes = 0
        self.resumed = 0
        super().__init__(name)

    def _serve(self, s, rec):
        try:
            s.settimeout(5)
            ss = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError):
            s.close()
            return
        with self.lock:
            self.handshakes += 1
            self.resumed += 1 if ss.session_reused else 0
        super()._serve(ss, rec)


@pytest.fixture
def tls_upstream(pki):
    started = []

    def make(cert: str = "local") -> TlsUpstream:
        u = TlsUpstream("tls-echo", pki[cert])
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


def test_https_upstream_verified_pooled_and_intact(gateway, pki, tls_upstream):
    up = tls_upstream()
    gw = gateway(routes=[("/s/", f"https://localhost:{up.port}")], args=["--upstream-ca", pki["ca"]])
    body = pattern_bytes(4 << 20)
    with Conn(gw.port, timeout=60) as c:
        for i in range(5):
            r = c.request("GET", f"/s/{i}?q=1")
            assert r.status == 200, r
            assert r.json()["target"] == f"/{i}?q=1"
        r = c.request("POST", "/s/up", [("Content-Type", "application/octet-stream")], body)
        assert r.status == 200 and r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        r = c.request("GET", f"/s/bytes/{4 << 20}")
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == r.header("x-body-sha256")
    assert up.handshakes == 1, up.handshakes  # one TLS connection, reused from the pool


def test_https_upstream_sessions_resume_on_reconnect(gateway, pki, tls_upstream):
    up = tls_upstream()
    gw = gateway(routes=[("/s/", f"https://localhost:{up.port}")],
                 args=["--upstream-ca", pki["ca"], "--upstream-keepalive", "0"], threads=1)
    with Conn(gw.port) as c:
        for i in range(4):
            assert c.request("GET", f"/s/{i}").status == 200
    assert up.handshakes == 4
    assert up.resumed >= 2, (up.handshakes, up.resumed)


def test_https_upstream_untrusted_or_misnamed_is_502(gateway, pki, tls_upstream):
    up = tls_upstream()
    other = tls_upstream("api")  # a valid certificate, for another name
    gw = gateway(routes=[("/untrusted/", f"https://localhost:{up.port}"),
                         ("/misnamed/", f"https://localhost:{other.port}")])
    with Conn(gw.port) as c:
        r = c.request("GET", "/untrusted/x")  # the system bundle does not know the test CA
        assert r.status == 502, r
        assert "not signed by a trusted CA" in r.json()["detail"]
    gw2 = gateway(routes=[("/misnamed/", f"https://localhost:{other.port}")],
                  args=["--upstream-ca", pki["ca"]])
    with Conn(gw2.port) as c:
        r = c.request("GET", "/misnamed/x")
        assert r.status == 502, r
        assert "does not name the upstream host" in r.json()["detail"]
    assert up.request_count() == 0 and other.request_count() == 0


def _common_name(c: TlsConn) -> str:
    subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
    return subject["commonName"]


def test_sighup_reloads_certificates_and_a_bad_file_keeps_the_old_ones(gateway, echo, pki, tmp_path):
    import shutil
    import signal
    from conftest import free_port, http_get
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    old_cert, old_key = pki["local"].split(":")
    new_cert, new_key = pki["renewed"].split(":")
    shutil.copy(old_cert, cert)
    shutil.copy(old_key, key)
    port = free_port()
    gw = gateway(routes=[("/api/users/", echo)],
                 args=["--listen-tls", f"127.0.0.1:{port}", "--tls-cert", f"{cert}:{key}"])

    def wait_for(text: str):
        deadline = time.monotonic() + 10
        while text not in gw.stderr():
            assert time.monotonic() < deadline, gw.stderr()
            time.sleep(0.05)

    def reloads() -> dict:
        body = http_get(gw.admin_port, "/metrics")[2].decode()
        return {l.split('"')[1]: int(l.split()[-1]) for l in body.splitlines()
                if l.startswith("ringway_tls_certificate_reloads_total{")}

    deadline = time.monotonic() + 10
    while True:
        try:
            opened = TlsConn(port, pki["ca"])
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with opened:
        assert _common_name(opened) == "localhost"
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        gw.signal(signal.SIGHUP)
        wait_for("certificates reloaded")
        with TlsConn(port, pki["ca"]) as fresh:
            assert _common_name(fresh) == "renewed.localhost"
            assert fresh.request("GET", "/api/users/new").status == 200
        # The connection made before the reload is not touched.
        assert opened.request("GET", "/api/users/old").json()["target"] == "/old"
    assert reloads() == {"ok": 1, "failed": 0}
    cert.write_text("not a certificate\n")
    gw.signal(signal.SIGHUP)
    wait_for("certificate reload failed, keeping the old certificates")
    with TlsConn(port, pki["ca"]) as after:
        assert _common_name(after) == "renewed.localhost"
        assert after.request("GET", "/api/users/after").status == 200
    assert reloads() == {"ok": 1, "failed": 1}


def test_redirect_https_sends_plaintext_requests_to_the_tls_listener(gateway, echo, pki):
    from conftest import free_port
    port = free_port()
    gw = gateway(routes=[("/api/users/", echo)],
                 args=["--listen-tls", f"127.0.0.1:{port}", "--tls-cert", pki["local"],
                       "--redirect-https"])
    with Conn(gw.port) as c:
        r = c.request("POST", "/api/users/x?y=1", [("Host", "api.example:8080")], b"")
        assert r.status == 308, r
        assert r.header("location") == f"https://api.example:{port}/api/users/x?y=1"
        assert r.header("content-length") == "0"
        r = c.request("GET", "/other", [("Host", "[::1]:8080")])
        assert r.header("location") == f"https://[::1]:{port}/other"
    assert echo.request_count() == 0  # nothing is forwarded in plaintext
    deadline = time.monotonic() + 10
    while True:
        try:
            tc = TlsConn(port, pki["ca"])
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with tc:
        assert tc.request("GET", "/api/users/x").json()["target"] == "/x"  # TLS is served
    # The admin listener is not redirected.
    from conftest import http_get
    assert http_get(gw.admin_port, "/healthz")[0] == 200
