"""Load generation: wrk runs (bounded in time, results read from a Lua done() hook rather than
from wrk's human-readable text), a plain-socket sanity check of each endpoint, and the idle
keep-alive connection test (10,000 non-blocking sockets, one request each)."""

import hashlib
import json
import os
import selectors
import socket
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


def sanity_check(port, small_body, big_sha, big_size):
    """One keep-alive connection: small GET, 1 MiB GET (checked by SHA-256), 1 MiB POST, small GET
    again. Returns None if all is well, else the reason."""
    deadline = time.monotonic() + 15
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
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
