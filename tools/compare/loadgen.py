"""Load generation: wrk runs (bounded in time, results read from a Lua done() hook rather than
from wrk's human-readable text), a plain-socket sanity check of each endpoint, and the idle
keep-alive connection test (10,000 non-blocking sockets, one request each). For the HTTPS
scenarios: the same check over TLS, what each listener negotiates (openssl s_client), handshake
runs (openssl s_time, several clients at once) and idle TLS connections (an asyncio client)."""

import asyncio
import hashlib
import json
import os
import re
import selectors
import socket
import ssl
import subprocess
import time

DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RWJSON {"requests":%d,"bytes":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def write_scripts(tmp, big_size):
    get = os.path.join(tmp, "get.lua")
    with open(get, "w") as f:
        f.write(DONE_LUA)
    post = os.path.join(tmp, "post.lua")
    with open(post, "w") as f:
        f.write('wrk.method = "POST"\n'
                f'wrk.body = string.rep("p", {big_size})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n' + DONE_LUA)
    return {"get": get, "post": post}


def run_wrk(url, script, conns, threads, duration, cpus=None, timeout_s="5s"):
    """Returns (dict with the done() numbers, raw text). Raises nothing: failures come back as
    {'failed': reason}."""
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout_s}",
            "-s", script, url]
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=duration + 30, start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"failed": "wrk did not finish in time"}, ""
    text = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith("RWJSON "):
            r = json.loads(line[7:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            return r, text
    return {"failed": f"wrk exit {p.returncode}: {text.strip()[-200:]}"}, text


def _read_response(sock, deadline):
    """Minimal HTTP/1.1 response reader for the sanity check (Content-Length framing only)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" not in headers:
        raise ValueError(f"no Content-Length in response ({lines[0]})")
    n = int(headers["content-length"])
    while len(body) < n:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return status, headers, body[:n], body[n:]


def tls_client_context(cert):
    """Verifies the tool's own certificate (name localhost); TLS 1.3 only, like the listeners."""
    ctx = ssl.create_default_context(cafile=cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def _connect(port, tls):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls is None:
        return s
    try:
        return tls.wrap_socket(s, server_hostname="localhost")
    except BaseException:
        s.close()
        raise


def sanity_check(port, small_body, big_sha, big_size, tls=None):
    """One keep-alive connection: small GET, 1 MiB GET (checked by SHA-256), 1 MiB POST, small GET
    again. Returns None if all is well, else the reason. tls: an SSLContext to check over TLS;
    then an HTTP/1.0 GET without Host on a second connection too, the request openssl s_time sends
    in the handshake scenarios (it must be a 200 and the server must close)."""
    deadline = time.monotonic() + 15
    try:
        if tls is not None:
            with _connect(port, tls) as s:
                s.sendall(b"GET /small HTTP/1.0\r\n\r\n")
                data = b""
                while time.monotonic() < deadline:
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) or body != small_body:
                    return f"HTTP/1.0 GET over TLS (s_time's request): {head[:40]!r}, {len(body)} body bytes"
        with _connect(port, tls) as s:
            def ask(req):
                s.sendall(req)
                st, h, body, extra = _read_response(s, deadline)
                if extra:
                    raise ValueError("bytes after the response body")
                return st, body
            st, b = ask(b"GET /small HTTP/1.1\r\nHost: compare\r\n\r\n")
            if st != 200 or b != small_body:
                return f"small GET: status {st}, {len(b)} bytes"
            st, b = ask(b"GET /big HTTP/1.1\r\nHost: compare\r\n\r\n")
            if st != 200 or hashlib.sha256(b).hexdigest() != big_sha:
                return f"1 MiB GET: status {st}, {len(b)} bytes, sha mismatch"
            st, b = ask(b"POST /post HTTP/1.1\r\nHost: compare\r\nContent-Length: %d\r\n"
                        b"Content-Type: application/octet-stream\r\n\r\n" % big_size
                        + b"p" * big_size)
            if st != 200 or b != b"ok":
                return f"1 MiB POST: status {st}, body {b[:40]!r}"
            st, b = ask(b"GET /small HTTP/1.1\r\nHost: compare\r\n\r\n")
            if st != 200 or b != small_body:
                return f"small GET after POST: status {st}"
    except Exception as e:  # any failure is a reason, never a crash of the tool
        return f"{type(e).__name__}: {e}"
    return None


def hold_idle_connections(port, count, batch=200, timeout=60.0):
    """Opens `count` keep-alive connections in batches, sends one small GET on each and reads the
    full response. Returns (list of open sockets, number that got a 200, failure reasons)."""
    req = b"GET /small HTTP/1.1\r\nHost: compare\r\n\r\n"
    sel = selectors.DefaultSelector()
    open_socks = []
    ok = 0
    reasons = {}
    deadline = time.monotonic() + timeout

    def fail(why):
        reasons[why] = reasons.get(why, 0) + 1

    made = 0
    while made < count and time.monotonic() < deadline:
        n = min(batch, count - made)
        pending = {}
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, 115):  # EINPROGRESS
                fail(f"connect errno {err}")
                s.close()
                continue
            pending[s] = {"state": "connect", "buf": b""}
            sel.register(s, selectors.EVENT_WRITE)
        made += n
        while pending and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=0.5):
                s = key.fileobj
                st = pending[s]
                try:
                    if st["state"] == "connect":
                        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if e:
                            raise OSError(e, os.strerror(e))
                        s.send(req)
                        st["state"] = "read"
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    chunk = s.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed by server")
                    st["buf"] += chunk
                    head, sep, body = st["buf"].partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    lines = head.split(b"\r\n")
                    cl = 0
                    for l in lines[1:]:
                        if l.lower().startswith(b"content-length:"):
                            cl = int(l.split(b":", 1)[1])
                    if len(body) < cl:
                        continue
                    sel.unregister(s)
                    del pending[s]
                    if lines[0].split()[1] == b"200":
                        ok += 1
                        open_socks.append(s)
                    else:
                        fail(f"status {lines[0].decode('latin-1')}")
                        s.close()
                except (OSError, ValueError, IndexError) as e:
                    fail(f"{type(e).__name__}: {e}")
                    sel.unregister(s)
                    del pending[s]
                    s.close()
        for s in list(pending):
            fail("timed out")
            sel.unregister(s)
            s.close()
    sel.close()
    if made < count:
        fail(f"not attempted (time limit): {count - made}")
    return open_socks, ok, reasons


def count_still_open(socks):
    """Connections the server has not closed while we measured (a readable socket with EOF)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    for key, _ in sel.select(timeout=0):
        try:
            if key.fileobj.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except OSError:
            closed += 1
    sel.close()
    return len(socks) - closed


def tls_probe(port):
    """What the listener negotiates with a default OpenSSL client: protocol, cipher suite, ECDHE
    group, signature type ({} and a reason on failure)."""
    try:
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                            "localhost", "-brief"], input=b"", capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return {"error": "openssl s_client timed out"}
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    out = {}
    for key, label in (("protocol", "Protocol version"), ("cipher", "Ciphersuite"),
                       ("group", "Server Temp Key"), ("signature", "Signature type")):
        m = re.search(rf"^{label}: (.*)$", text, re.M)
        if m:
            out[key] = m.group(1).strip()
    if "protocol" not in out:
        out["error"] = f"openssl s_client exit {p.returncode}: {text.strip()[-200:]}"
    return out


_S_TIME_CONNS = re.compile(r"^(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", re.M)


def run_s_time(port, mode, clients, duration, www, cpus=None):
    """`clients` openssl s_time processes at once, each making sequential TLS 1.3 connections for
    `duration` s: mode "new" = a full handshake each time, "reuse" = resuming the first connection's
    session. Each connection fetches `www` (HTTP/1.0, so the server closes; reading it is also what
    makes the client take the TLS 1.3 session ticket). Returns a dict: connections, resumed (count
    of 'r' marks s_time prints per connection), bytes_per_conn (min over clients), duration_us
    (wall), per-client exit codes, or {'failed': reason}."""
    argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", f"-{mode}", "-time", str(duration),
            "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256", "-www", www]
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    t0 = time.monotonic()
    ps = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True) for _ in range(clients)]
    texts, codes = [], []
    for p in ps:
        try:
            out, _ = p.communicate(timeout=max(0.0, t0 + duration + 30 - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in ps:
                q.kill()
            for q in ps:
                q.wait()
            return {"failed": "openssl s_time did not finish in time"}
        texts.append(out.decode("utf-8", "replace"))
        codes.append(p.returncode)
    wall_us = (time.monotonic() - t0) * 1e6
    r = {"connections": 0, "resumed": 0, "full": 0, "duration_us": wall_us, "exit_codes": codes,
         "bytes_per_conn": None}
    problems = []
    for text, code in zip(texts, codes):
        m = _S_TIME_CONNS.findall(text)
        # One mark per connection on lines of their own: 'r' resumed, '*' a full TLS 1.3 handshake.
        marks = "".join(l for l in text.splitlines() if l and set(l) <= set("r*t3"))
        if code != 0 or not m:
            problems.append(f"s_time exit {code}: {text.strip()[-160:]}")
        if m:
            conns, per = int(m[-1][0]), int(m[-1][1])
            r["connections"] += conns
            r["bytes_per_conn"] = per if r["bytes_per_conn"] is None else min(r["bytes_per_conn"], per)
        r["resumed"] += marks.count("r")
        r["full"] += len(marks) - marks.count("r")
    r["problems"] = problems
    return r


async def _open_idle_tls(port, count, ctx, concurrency, timeout):
    req = b"GET /small HTTP/1.1\r\nHost: compare\r\n\r\n"
    sem = asyncio.Semaphore(concurrency)
    held, reasons = [], {}

    async def one():
        async with sem:
            w = None
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
                w.write(req)
                head = await r.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1]
                cl = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"content-length:"):
                        cl = int(line.split(b":", 1)[1])
                await r.readexactly(cl)
                if status != b"200":
                    raise ValueError(f"status {status.decode('latin-1')}")
                held.append((r, w))
            except (OSError, ValueError, IndexError, ssl.SSLError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as e:
                why = f"{type(e).__name__}: {e}"[:120]
                reasons[why] = reasons.get(why, 0) + 1
                if w is not None:
                    w.close()

    tasks = [asyncio.ensure_future(one()) for _ in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    if pending:
        reasons["timed out"] = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    return held, reasons


class IdleTlsConnections:
    """`count` TLS keep-alive connections, each after one small GET (full response read), held
    open by an asyncio loop that runs only while we open, check or close them (idle in between:
    nothing is sent, the kernel keeps the sockets)."""

    def __init__(self, port, count, ctx, concurrency=64, timeout=90.0):
        self.loop = asyncio.new_event_loop()
        self.held, self.reasons = self.loop.run_until_complete(
            _open_idle_tls(port, count, ctx, concurrency, timeout))
        self.ok = len(self.held)

    def still_open(self):
        """Connections the server has not closed (lets the loop read any pending EOF first)."""
        self.loop.run_until_complete(asyncio.sleep(0.2))
        return sum(1 for r, w in self.held if not r.at_eof() and not w.is_closing())

    def close(self):
        for _, w in self.held:
            w.close()
        self.loop.run_until_complete(asyncio.sleep(0.2))
        self.held = []
        self.loop.close()
