"""Fixtures for the ringway integration suite: the real binary on loopback against test upstreams.

The binary is RINGWAY_BIN or <repo>/build/src/ringway. If it is missing the session stops with an
error (nothing is skipped silently). Every process and thread a fixture starts is stopped at
teardown, also when the test fails; every test runs under a wall-clock alarm.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from upstreams import Upstream

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("RINGWAY_BIN", REPO / "build" / "src" / "ringway"))
SANITIZED = bool(os.environ.get("RINGWAY_SANITIZED"))
READY_TIMEOUT = 60.0 if SANITIZED else 15.0
TEST_TIMEOUT = 120 if SANITIZED else 60
SLOW_TEST_TIMEOUT = 180
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (skipped in the sanitizer pass)")


def pytest_collection_modifyitems(session, config, items):
    needs_binary = [i for i in items if "gateway" in getattr(i, "fixturenames", ())
                    or "ringway_bin" in getattr(i, "fixturenames", ())]
    if needs_binary and not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
        pytest.exit(f"ringway binary not found or not executable: {BINARY}\n"
                    f"Build it first (tools/build.sh) or point RINGWAY_BIN at it. "
                    f"{len(needs_binary)} tests need it; none were run.", returncode=1)


@pytest.fixture(autouse=True)
def _wall_clock_limit(request):
    """Bounds every test in time: SIGALRM raises inside whatever the test is blocked on."""
    limit = SLOW_TEST_TIMEOUT if request.node.get_closest_marker("slow") else TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its {limit} s wall-clock limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if pytest dies, so no gateway is ever orphaned."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def parse_duration(text: str) -> float:
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    """Minimal GET with Connection: close (used for readiness and admin polling)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/"):
        raise ConnectionError(f"GET {path} on port {port}: no HTTP response (got {data[:80]!r})")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        body = out
    return status, headers, body


class Gateway:
    """One running ringway process."""

    def __init__(self, workdir: Path, args: list[str], port: int, admin_port: int | None,
                 access_log: Path | None, drain_timeout: float = 10.0):
        self.workdir = workdir
        self.args = args
        self.port = port
        self.admin_port = admin_port
        self.access_log = access_log
        self.stdout_path = workdir / f"ringway-{port}.stdout"
        self.stderr_path = workdir / f"ringway-{port}.stderr"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
                                     cwd=workdir, preexec_fn=_die_with_parent)
        self.stopped = False
        self.drain_timeout = drain_timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        self._out.flush()
        return self.stdout_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> str | None:
        """None when ready; otherwise why not (the process exited, or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return f"exited with {rc} before becoming ready"
            try:
                if self.admin_port is not None:
                    status, _, _ = http_get(self.admin_port, "/readyz", timeout=1.0)
                    if status == 200:
                        return None
                else:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                    return None
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.05)
        return f"not ready after {timeout} s"

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float | None = None) -> list[str]:
        """SIGTERM, wait (drain timeout + slack), SIGKILL if needed. Returns problems (non-zero
        exit, no exit, sanitizer reports)."""
        if timeout is None:
            timeout = self.drain_timeout + (10.0 if SANITIZED else 3.0)
        problems = []
        if not self.stopped:
            self.stopped = True
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                problems.append(f"did not exit within {timeout} s of SIGTERM (killed)")
            rc = self.proc.returncode
            if rc != 0 and not problems:
                problems.append(f"exit status {rc} after SIGTERM (expected 0)")
            self._out.close()
            self._err.close()
        err = self.stderr_path.read_text(errors="replace")
        if any(m in err for m in SANITIZER_MARKERS):
            problems.append("sanitizer report in stderr")
        if problems:
            problems.append(f"command: {' '.join(self.args)}\nstderr tail:\n{err[-4000:]}")
        return problems


class GatewayFactory:
    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.gateways: list[Gateway] = []

    def __call__(self, routes: list[tuple[str, object]] | None = None, args: list[str] | None = None,
                 threads: int = 2, admin: bool = True, access_log: bool = True,
                 drain_timeout: str = "3s", expect_ready: bool = True) -> Gateway:
        """Starts ringway with routes [(prefix, url | Upstream | [urls...])] plus extra args."""
        last_error = ""
        for attempt in range(5):
            port = free_port()
            admin_port = free_port() if admin else None
            cmd = [str(BINARY), "--listen", f"127.0.0.1:{port}"]
            if admin_port is not None:
                cmd += ["--admin-listen", f"127.0.0.1:{admin_port}"]
            if threads:
                cmd += ["--threads", str(threads)]
            log = None
            if access_log:
                log = self.tmp_path / f"access-{port}.log"
                cmd += ["--access-log", str(log)]
            if drain_timeout:
                cmd += ["--drain-timeout", drain_timeout]
            for prefix, target in routes or []:
                targets = target if isinstance(target, (list, tuple)) else [target]
                urls = [t.url if isinstance(t, Upstream) else str(t) for t in targets]
                cmd += ["--route", f"{prefix}={','.join(urls)}"]
            cmd += args or []
            gw = Gateway(self.tmp_path, cmd, port, admin_port, log,
                         parse_duration(drain_timeout) if drain_timeout else 10.0)
            self.gateways.append(gw)
            if not expect_ready:
                return gw
            why = gw.wait_ready()
            if why is None:
                return gw
            err = gw.stderr()
            gw.stop(timeout=5)
            last_error = f"{why}\ncommand: {' '.join(cmd)}\nstderr:\n{err[-3000:]}"
            if "in use" not in err.lower():
                break
        pytest.fail(f"ringway did not start: {last_error}", pytrace=False)

    def stop_all(self) -> list[str]:
        problems = []
        for gw in self.gateways:
            problems += gw.stop()
        return problems


@pytest.fixture
def ringway_bin() -> Path:
    return BINARY


@pytest.fixture
def gateway(tmp_path, ringway_bin):
    """Factory: gateway(routes=[(prefix, upstream)], args=[...]) -> Gateway (ready)."""
    factory = GatewayFactory(tmp_path)
    yield factory
    problems = factory.stop_all()
    if problems:
        pytest.fail("ringway shutdown problem:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def upstream():
    """Factory: upstream(name) -> a started Upstream; all are stopped at teardown."""
    started: list[Upstream] = []

    def make(name: str = "up") -> Upstream:
        u = Upstream(name)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


@pytest.fixture
def echo(upstream):
    return upstream("echo")


@pytest.fixture
def gw(gateway, echo):
    """A gateway with /api/users/ routed to the echo upstream (and nothing else)."""
    return gateway(routes=[("/api/users/", echo)])


def curl(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Runs curl (silent, bounded); returns the CompletedProcess with bytes stdout/stderr."""
    return subprocess.run(["curl", "-sS", "--max-time", str(int(timeout)), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 10)


def metric(gw, name: str) -> int:
    """The value of an unlabelled series on gw's admin /metrics."""
    status, _, body = http_get(gw.admin_port, "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"{name} not in /metrics")
