"""Raw-socket HTTP/1.1 client helpers for tests where framing matters.

read_response() parses exactly one response off a buffered connection (Content-Length, chunked,
or close-delimited; no body for HEAD requests, 1xx, 204 and 304), so pipelined responses and
stray bytes after a response can be checked byte for byte.
"""

from __future__ import annotations

import json
import socket
import time

TIMEOUT = 10.0


class Closed(Exception):
    """The peer closed (or reset) the connection before a complete response arrived."""

    def __init__(self, msg: str, partial: bytes = b""):
        super().__init__(msg)
        self.partial = partial


class Response:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
                 raw_head: bytes, version: str):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw_head = raw_head
        self.version = version

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers!r} body={self.body[:200]!r}>"


class Conn:
    """One client connection to the gateway with a receive buffer."""

    def __init__(self, port: int, timeout: float = TIMEOUT, host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def _read_until(self, sep: bytes) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[: i + len(sep)], self.buf[i + len(sep):]
                return out
            if not self._fill():
                raise Closed(f"closed while waiting for {sep!r}", self.buf)

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise Closed(f"closed after {len(self.buf)} of {n} body bytes", self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method: str = "GET") -> Response:
        while True:
            head = self._read_until(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            status_line = lines[0].decode("latin-1")
            version, _, rest = status_line.partition(" ")
            code_s, _, reason = rest.partition(" ")
            status = int(code_s)
            headers = []
            for line in lines[1:]:
                k, _, v = line.decode("latin-1").partition(":")
                headers.append((k, v.strip(" \t")))
            if 100 <= status < 200 and status != 101:
                continue  # interim response; the final one follows
            break
        resp = Response(status, reason, headers, b"", head, version)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te is not None:
            assert te.lower() == "chunked", f"unexpected transfer-encoding {te!r}"
            chunks = []
            while True:
                size_line = self._read_until(b"\r\n")
                size = int(size_line.strip().split(b";", 1)[0], 16)
                if size == 0:
                    while self._read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                chunks.append(self._read_exact(size))
                assert self._read_exact(2) == b"\r\n", "chunk not followed by CRLF"
            resp.body = b"".join(chunks)
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method: str, target: str, headers: list[tuple[str, str]] | None = None,
                body: bytes | None = None, host: str = "gw.test") -> Response:
        self.send(build_request(method, target, headers, body, host))
        return self.read_response(method)

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the peer closes (EOF or RST) within timeout with no further bytes; bytes that
        arrive first are left in self.buf and make the answer False."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return False
                except (ConnectionResetError, BrokenPipeError):
                    return True
                if not data:
                    return True
                self.buf += data
                return False
            return False
        finally:
            self.sock.settimeout(old)

    def read_to_eof(self, timeout: float = 10.0) -> tuple[bytes, str]:
        """Everything until the peer closes; returns (bytes, 'eof' | 'reset' | 'timeout')."""
        deadline = time.monotonic() + timeout
        out, self.buf = self.buf, b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out, "timeout"
            except ConnectionResetError:
                return out, "reset"
            if not data:
                return out, "eof"
            out += data
        return out, "timeout"


def build_request(method: str, target: str, headers: list[tuple[str, str]] | None = None,
                  body: bytes | None = None, host: str | None = "gw.test") -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    names = {k.lower() for k, _ in (headers or [])}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(body: bytes, size: int = 65536) -> bytes:
    out = []
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def one_shot(port: int, raw: bytes, method: str = "GET", timeout: float = TIMEOUT) -> tuple[Response, Conn]:
    """Sends raw bytes on a new connection and reads one response; the caller closes the Conn."""
    c = Conn(port, timeout)
    c.send(raw)
    return c.read_response(method), c


def is_problem(resp: Response, status: int) -> bool:
    ct = (resp.header("content-type") or "").split(";")[0].strip().lower()
    if resp.status != status or ct != "application/problem+json":
        return False
    doc = json.loads(resp.body)
    return doc.get("status") == status and isinstance(doc.get("title"), str) and doc["title"] != ""


def assert_problem(resp: Response, status: int) -> None:
    assert resp.status == status, f"expected {status}, got {resp!r}"
    ct = (resp.header("content-type") or "").split(";")[0].strip().lower()
    assert ct == "application/problem+json", f"content-type {ct!r} in {resp!r}"
    doc = json.loads(resp.body)
    assert doc.get("status") == status, doc
    assert isinstance(doc.get("title"), str) and doc["title"], doc


def hammer(port: int, path: str, start: float, stop_at: float, counts: dict, lock, errors: list) -> None:
    """Load for rate-limit tests (one thread each): connects, waits for the common start, then sends
    GET path back to back on one keep-alive connection until stop_at. Adds its 200s and 429s to
    counts["ok"] / counts["limited"] and keeps counts["last_sent"] (when the last request left)."""
    ok = limited = 0
    last_sent = 0.0
    try:
        c = Conn(port, timeout=10)
        try:
            delay = start - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                now = time.monotonic()
                if now >= stop_at:
                    break
                last_sent = now
                r = c.request("GET", path)
                if r.status == 200:
                    ok += 1
                elif r.status == 429:
                    limited += 1
                else:
                    errors.append(f"unexpected status {r.status}")
                    break
        finally:
            c.close()
    except (OSError, Closed) as e:  # a dropped connection is a failure, reported by the caller
        errors.append(repr(e))
    with lock:
        counts["ok"] += ok
        counts["limited"] += limited
        counts["last_sent"] = max(counts["last_sent"], last_sent)
