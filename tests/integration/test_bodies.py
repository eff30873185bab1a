"""Request and response bodies: large, chunked, and bodiless responses (HEAD, 204, 304)."""

import hashlib
import json

import pytest

from client import Conn, build_request, chunked
from conftest import curl
from upstreams import pattern_bytes


@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_large_post_intact(gw, echo, size):
    body = pattern_bytes(size)
    with Conn(gw.port, timeout=30) as c:
        r = c.request("POST", "/api/users/upload", [("Content-Type", "application/octet-stream")], body)
        assert r.status == 200, r
        doc = r.json()
        assert doc["body_len"] == size
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
        # the connection is still in sync after the large body
        assert c.request("GET", "/api/users/next").json()["target"] == "/next"


def test_large_post_with_curl(gw, echo, tmp_path):
    body = pattern_bytes(3 << 20)
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    p = curl("--data-binary", f"@{f}", "-H", "Content-Type: application/octet-stream",
             f"{gw.url}/api/users/curl-upload", timeout=30)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["body_len"] == len(body) and doc["body_sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_large_response_intact(gw, echo, size):
    with Conn(gw.port, timeout=30) as c:
        r = c.request("GET", f"/api/users/bytes/{size}")
        assert r.status == 200
        assert len(r.body) == size
        assert hashlib.sha256(r.body).hexdigest() == r.header("x-body-sha256")
        assert c.request("GET", "/api/users/next").status == 200


def test_chunked_request_body(gw, echo):
    body = pattern_bytes(300_000)
    with Conn(gw.port) as c:
        c.send(build_request("PUT", "/api/users/chunky", [("Transfer-Encoding", "chunked")])
               + chunked(body, 7777))
        r = c.read_response()
        assert r.status == 200, r
        doc = r.json()
        assert doc["body_len"] == len(body) and doc["body_sha256"] == hashlib.sha256(body).hexdigest()
        # the upstream sees exactly one framing header
        names = [k.lower() for k, _ in doc["headers"]]
        assert names.count("content-length") + names.count("transfer-encoding") == 1, names
        assert c.request("GET", "/api/users/next").status == 200


def test_chunked_request_with_extensions_and_trailers(gw, echo):
    raw = (build_request("POST", "/api/users/t", [("Transfer-Encoding", "chunked")])
           + b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    with Conn(gw.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
        assert c.request("GET", "/api/users/next").status == 200


def test_chunked_response(gw, echo):
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/users/chunked")
        assert r.status == 200
        assert r.json()["target"] == "/chunked"
        assert c.request("GET", "/api/users/next").json()["target"] == "/next"
    p = curl(f"{gw.url}/api/users/chunked")
    assert p.returncode == 0 and json.loads(p.stdout)["target"] == "/chunked"


@pytest.mark.parametrize("keep_alive", [False, True])
def test_chunked_response_to_http10_client_is_decoded_and_close_delimited(gw, echo, keep_alive):
    # RFC 9112 6.1: chunked framing must not be sent to an HTTP/1.0 recipient. The body is relayed
    # decoded and ends with the connection (even when the client asked for keep-alive).
    with Conn(gw.port) as c:
        c.send(b"GET /api/users/chunked HTTP/1.0\r\nHost: a\r\n"
               + (b"Connection: keep-alive\r\n" if keep_alive else b"") + b"\r\n")
        raw, how = c.read_to_eof()
    assert how == "eof", (how, raw)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), lines
    names = [ln.split(":", 1)[0].lower() for ln in lines[1:]]
    assert "transfer-encoding" not in names and "content-length" not in names, lines
    assert "Connection: close" in lines
    doc = json.loads(body)  # the decoded body, nothing else
    assert doc["target"] == "/chunked" and doc["method"] == "GET"
    # curl speaking HTTP/1.0 reads it as well
    p = curl("--http1.0", f"{gw.url}/api/users/chunked")
    assert p.returncode == 0 and json.loads(p.stdout)["target"] == "/chunked", p.stderr


def test_head_gets_no_body_and_connection_stays_usable(gw, echo):
    with Conn(gw.port) as c:
        c.send(build_request("HEAD", "/api/users/bytes/5000"))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("content-length") == "5000"
        # if any body bytes followed the HEAD response, this response would not parse
        r2 = c.request("GET", "/api/users/after")
        assert r2.status == 200 and r2.json()["target"] == "/after"


@pytest.mark.parametrize("code", [204, 304])
def test_bodiless_status_then_connection_usable(gw, echo, code):
    with Conn(gw.port) as c:
        r = c.request("GET", f"/api/users/status/{code}")
        assert r.status == code
        assert r.header("transfer-encoding") is None
        r2 = c.request("GET", "/api/users/after")
        assert r2.status == 200 and r2.json()["target"] == "/after"


def test_status_passes_through(gw, echo):
    with Conn(gw.port) as c:
        r = c.request("GET", "/api/users/status/418")
        assert r.status == 418 and r.json()["target"] == "/status/418"
