"""Test upstream servers for the integration suite.

Raw-socket HTTP/1.1 servers running on threads inside the pytest process, so that every byte of
framing is under the test's control (http.server normalises too much). One Upstream listens on a
free loopback port; each accepted connection gets a thread that serves requests until the peer
closes. Every byte received is recorded per connection, so smuggling tests can assert that nothing
reached the upstream.

Behaviour is chosen by the path the upstream sees (after the gateway stripped the route prefix):

  (anything else)   200, JSON echo of the request (see _echo_doc); HEAD gets the same head, no body
  /chunked          the echo JSON, sent chunked in several chunks
  /status/NNN       status NNN; 204 and 304 carry no body (304 carries a Content-Length of the
                    representation and an ETag, as RFC 9110 allows), others carry the echo JSON
  /bytes/N          N bytes of a deterministic pattern, Content-Length framed, X-Body-Sha256 header
  /slow/MS          sleeps MS milliseconds, then the echo JSON
  /hang             reads the request, never answers (until the peer closes or the server stops)
  /abort            head with Content-Length 100000, then 1000 body bytes, then close
  /abort-chunked    chunked head, one chunk, then close without the last chunk
  /reset            closes with SO_LINGER 0 (TCP RST) right after reading the request
  /malformed        answers with a broken status line, then closes
  /hop-by-hop       200 whose head carries hop-by-hop fields (Connection-nominated, Keep-Alive...)
  /close            echo JSON with Connection: close, then closes

Upstream.rewrite, when set, maps each request's path before the dispatch above, so one instance
can be made slow, failing or silent for every path (traffic tests): e.g. lambda p: "/slow/50".
  /c/...            answered by the test's own handler (Upstream.handler), which sees the Request
                    and returns (status, [(name, value)...], body[, chunked]); Content-Length is added
                    unless chunked is True
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time


class BadRequest(Exception):
    pass


def pattern_bytes(n: int) -> bytes:
    """Deterministic, non-repeating-looking body bytes of length n."""
    block = hashlib.sha256(b"ringway").digest() * 64  # 2 KiB
    reps = n // len(block) + 1
    return (block * reps)[:n]


class _Reader:
    """Buffered reader over a socket; raises EOFError on a clean close."""

    def __init__(self, sock: socket.socket, record, stopping: threading.Event):
        self.sock = sock
        self.buf = b""
        self.record = record
        self.stopping = stopping

    def _fill(self) -> None:
        # recv times out every 0.5 s so that stop() is noticed; otherwise keep waiting.
        while True:
            try:
                data = self.sock.recv(65536)
                break
            except socket.timeout:
                if self.stopping.is_set():
                    raise EOFError
        if not data:
            raise EOFError
        self.record(data)
        self.buf += data

    def read_until(self, sep: bytes, limit: int = 1 << 20) -> bytes:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[: i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Request:
    def __init__(self):
        self.method = ""
        self.target = ""
        self.version = ""
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.chunked = False

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def _read_request(r: _Reader) -> Request:
    head = r.read_until(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    req = Request()
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3:
        raise BadRequest("request line")
    req.method, req.target, req.version = parts
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("header line")
        req.headers.append((name, value.strip(" \t")))
    te = req.header("transfer-encoding")
    cl = req.header("content-length")
    if te is not None:
        if te.strip().lower() != "chunked":
            raise BadRequest("transfer-encoding")
        req.chunked = True
        body = []
        while True:
            size_line = r.read_until(b"\r\n").strip().split(b";", 1)[0]
            size = int(size_line, 16)
            if size == 0:
                # trailers until the empty line
                while r.read_until(b"\r\n") != b"\r\n":
                    pass
                break
            body.append(r.read_exact(size))
            if r.read_exact(2) != b"\r\n":
                raise BadRequest("chunk end")
        req.body = b"".join(body)
    elif cl is not None:
        req.body = r.read_exact(int(cl))
    return req


class ConnRecord:
    def __init__(self, conn_id: int):
        self.conn_id = conn_id
        self.received = bytearray()
        self.requests = 0
        self.lock = threading.Lock()


class Upstream:
    """A threaded raw-socket HTTP/1.1 test server on 127.0.0.1:<free port>."""

    def __init__(self, name: str = "up", port: int = 0, host: str = "127.0.0.1"):
        self.name = name
        self.lock = threading.Lock()
        self.accepts = 0
        self.conns: list[ConnRecord] = []
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))  # a port: restart an instance where it was
        self.lsock.listen(1024)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._socks: set[socket.socket] = set()
        self.rewrite = None  # callable(path) -> path, or None (see the module docstring)
        # handler(req) -> (status, headers, body) for paths under /c/ (set by the test)
        self.handler = None
        self._thread = threading.Thread(target=self._accept_loop, name=f"upstream-{name}", daemon=True)
        self._thread.start()

    # ---- observation helpers for tests -------------------------------------------------------
    def received_bytes(self) -> bytes:
        with self.lock:
            return b"".join(bytes(c.received) for c in self.conns)

    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request_count() >= n:
                return True
            time.sleep(0.01)
        return False

    def reset_counters(self) -> None:
        with self.lock:
            self.accepts = 0
            self.conns.clear()
            self.requests.clear()

    # ---- server ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self.lock:
                self.accepts += 1
                rec = ConnRecord(self.accepts)
                self.conns.append(rec)
                self._socks.add(s)
            threading.Thread(target=self._serve, args=(s, rec), daemon=True).start()

    def _serve(self, s: socket.socket, rec: ConnRecord) -> None:
        s.settimeout(0.5)

        def record(data: bytes) -> None:
            with self.lock:
                rec.received += data

        r = _Reader(s, record, self.stopping)
        try:
            while not self.stopping.is_set():
                try:
                    req = _read_request(r)
                except EOFError:
                    return
                except (BadRequest, ValueError):
                    self._send(s, b"HTTP/1.1 400 Upstream Says Bad Request\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n")
                    return
                with self.lock:
                    rec.requests += 1
                    self.requests.append(req)
                    accepts = self.accepts
                keep = self._respond(s, r, req, rec, accepts)
                if not keep:
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    @staticmethod
    def _send(s: socket.socket, data: bytes) -> None:
        s.settimeout(10)
        s.sendall(data)
        s.settimeout(0.5)

    def _echo_doc(self, req: Request, rec: ConnRecord, accepts: int) -> dict:
        return {
            "upstream": self.name,
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": [[k, v] for k, v in req.headers],
            "chunked": req.chunked,
            "body_len": len(req.body),
            "body_sha256": hashlib.sha256(req.body).hexdigest(),
            "conn_id": rec.conn_id,
            "conn_requests": rec.requests,
            "accepts": accepts,
        }

    def _respond(self, s, r, req: Request, rec: ConnRecord, accepts: int) -> bool:
        path = req.path
        rewrite = self.rewrite
        if rewrite is not None:
            path = rewrite(path)
        is_head = req.method == "HEAD"
        client_close = (req.header("connection") or "").lower() == "close"
        conn_hdr = b"Connection: close\r\n" if client_close else b""
        if self.handler is not None and path.startswith("/c/"):
            out = self.handler(req)
            status, headers, body = out[:3]
            chunked = len(out) > 3 and out[3]  # a 4th item True: the body goes chunked
            head = b"HTTP/1.1 %d Test\r\n" % status
            for k, v in headers:
                head += k.encode() + b": " + v.encode() + b"\r\n"
            if chunked and not is_head:
                head += b"Transfer-Encoding: chunked\r\n" + conn_hdr + b"\r\n"
                step = max(1, len(body) // 3)
                for i in range(0, len(body), step):
                    head += b"%x\r\n" % len(body[i:i + step]) + body[i:i + step] + b"\r\n"
                self._send(s, head + b"0\r\n\r\n")
                return not client_close
            if status not in (204, 304):
                head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            self._send(s, head + conn_hdr + b"\r\n" + (b"" if is_head or status in (204, 304) else body))
            return not client_close
        echo = json.dumps(self._echo_doc(req, rec, accepts)).encode()

        def simple(status: bytes, body: bytes, extra: bytes = b"") -> bool:
            head = (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + conn_hdr + b"\r\n")
            self._send(s, head if is_head else head + body)
            return not client_close

        if path == "/chunked":
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                    + conn_hdr + b"\r\n")
            if is_head:
                self._send(s, head)
                return not client_close
            self._send(s, head)
            step = max(1, len(echo) // 3)
            for i in range(0, len(echo), step):
                piece = echo[i:i + step]
                self._send(s, b"%x\r\n" % len(piece) + piece + b"\r\n")
                time.sleep(0.01)
            self._send(s, b"0\r\n\r\n")
            return not client_close
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            if code == 204:
                self._send(s, b"HTTP/1.1 204 No Content\r\nX-Upstream: " + self.name.encode() + b"\r\n"
                           + conn_hdr + b"\r\n")
                return not client_close
            if code == 304:
                self._send(s, b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n"
                           + conn_hdr + b"\r\n")
                return not client_close
            return simple(b"%d Test Status" % code, echo)
        if path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            body = pattern_bytes(n)
            extra = b"X-Body-Sha256: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n"
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                    + str(n).encode() + b"\r\n" + extra + conn_hdr + b"\r\n")
            self._send(s, head)
            if not is_head:
                self._send(s, body)
            return not client_close
        if path.startswith("/drip/"):
            # /drip/N/MS: a Content-Length body of N pattern bytes in 16 KiB pieces, MS apart
            n, ms = int(path.split("/")[2]), int(path.split("/")[3])
            body = pattern_bytes(n)
            extra = b"X-Body-Sha256: " + hashlib.sha256(body).hexdigest().encode() + b"\r\n"
            self._send(s, b"HTTP/1.1 200 OK\r\nContent-Length: " + str(n).encode() + b"\r\n"
                       + extra + conn_hdr + b"\r\n")
            for i in range(0, n, 16384):
                if self.stopping.wait(ms / 1000.0):
                    return False
                self._send(s, body[i:i + 16384])
            return not client_close
        if path.startswith("/slow/"):
            ms = int(path.split("/")[2])
            if self.stopping.wait(ms / 1000.0):
                return False
            return simple(b"200 OK", echo)
        if path == "/hang":
            while not self.stopping.is_set():
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return False
                with self.lock:
                    rec.received += data
            return False
        if path == "/abort":
            self._send(s, b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          b"Content-Length: 100000\r\n\r\n" + pattern_bytes(1000))
            time.sleep(0.05)
            return False
        if path == "/abort-chunked":
            self._send(s, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"a\r\n0123456789\r\n")
            time.sleep(0.05)
            return False
        if path == "/reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if path == "/malformed":
            self._send(s, b"HTTP/1.1 2x0 Broken\r\nContent-Length: 2\r\n\r\nok")
            return False
        if path.startswith("/interim/"):
            # /interim/together|apart: 100, 103 Early Hints and 102 before a 200, in one write or
            # one head at a time 50 ms apart
            heads = [b"HTTP/1.1 100 Continue\r\n\r\n",
                     b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
                     b"Connection: X-Hop\r\nX-Hop: 1\r\n\r\n",
                     b"HTTP/1.1 102 Processing\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + conn_hdr + b"\r\n"
                     + (b"" if is_head else b"final")]
            if path.endswith("/together"):
                self._send(s, b"".join(heads))
            else:
                for h in heads:
                    self._send(s, h)
                    if self.stopping.wait(0.05):
                        return False
            return not client_close
        if path == "/hop-by-hop":
            body = b"hop"
            self._send(s, b"HTTP/1.1 200 OK\r\nConnection: X-Resp-Secret\r\nX-Resp-Secret: 1\r\n"
                          b"Keep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 3\r\n\r\n"
                       + (b"" if is_head else body))
            return True
        if path == "/close":
            simple(b"200 OK", echo, b"Connection: close\r\n" if not client_close else b"")
            return False
        return simple(b"200 OK", echo, b"X-Upstream: " + self.name.encode() + b"\r\n")

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)


def refused_port() -> int:
    """A loopback port with (very likely) nothing listening: bound then closed, never listened."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TlsEchoUpstream(Upstream):
    """The echo upstream behind TLS (Python ssl, server side). With client_ca it asks for a client
    certificate and refuses a handshake without one signed by that CA (mTLS origination tests);
    the subjects of the verified client certificates it saw are in `peers`."""

    def __init__(self, name: str, cert: str, key: str, client_ca: str | None = None):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if client_ca is not None:
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.handshakes = 0
        self.refused = 0
        self.peers: list[str] = []
        super().__init__(name)
        self.url = f"https://localhost:{self.port}"

    def _serve(self, s, rec):
        import ssl
        try:
            s.settimeout(5)
            ss = self.ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.refused += 1
            s.close()
            return
        peer = ss.getpeercert()
        with self.lock:
            self.handshakes += 1
            if peer:
                self.peers.append(",".join(f"{k}={v}" for rdn in peer["subject"] for k, v in rdn))
        super()._serve(ss, rec)
