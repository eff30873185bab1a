"""DNS re-resolution of upstream host names (issue 14): a route to http://svc.test:PORT with
dns_refresh follows the name's A record, served by a tiny UDP DNS server in this process (TTL 1,
a mutable table), to two upstreams on 127.0.0.2 and 127.0.0.3 (same port) without a restart and
without client errors; when the DNS server stops, the last good address keeps serving."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time

import pytest

from client import Conn
from conftest import BINARY, free_port, http_get
from upstreams import Upstream


class DnsServer:
    """Answers A queries for names in `table` (name -> dotted IPv4) with TTL 1; every other
    question gets an empty NOERROR answer for known names (AAAA) or NXDOMAIN."""

    def __init__(self, table: dict[str, str]):
        self.table = table
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            qid, _flags, qdcount = struct.unpack("!HHH", data[:6])
            at, labels = 12, []
            while at < len(data) and data[at] != 0:
                n = data[at]
                labels.append(data[at + 1:at + 1 + n].decode("ascii", "replace").lower())
                at += 1 + n
            question = data[12:at + 5]
            qtype = struct.unpack("!H", data[at + 1:at + 3])[0]
            name = ".".join(labels)
            self.queries += 1
            addr = self.table.get(name)
            answers = b""
            rcode = 0 if addr is not None else 3
            if addr is not None and qtype == 1:
                answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 1, 4) + socket.inet_aton(addr)
            header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
            self.sock.sendto(header + question + answers, peer)

    def stop(self):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


def start(gateway, tmp_path, routes, args=()):
    path = tmp_path / "dns.json"
    path.write_text(json.dumps({"routes": routes}))
    return gateway(routes=None, args=["--config", str(path), *args], threads=2)


def served_by(port, n=20):
    """Who answered n sequential GETs (gateway-made answers are counted as errors)."""
    names, errors = [], 0
    c = Conn(port)
    for i in range(n):
        r = c.request("GET", f"/svc/{i}")
        try:
            name = r.json().get("upstream")
        except (ValueError, AttributeError):
            name = None
        if r.status != 200 or name is None:
            errors += 1
        else:
            names.append(name)
    c.close()
    return names, errors


@pytest.mark.parametrize("slots", [4, 1])  # 1: B replaces A in place (pooled connections to A close)
def test_name_change_followed_without_restart(gateway, tmp_path, slots):
    a = Upstream("A", host="127.0.0.2")
    b = Upstream("B", port=a.port, host="127.0.0.3")
    dns = DnsServer({"svc.test": "127.0.0.2"})
    try:
        gw = start(gateway, tmp_path,
                   [{"prefix": "/svc/", "upstreams": [f"http://svc.test:{a.port}"], "dns_refresh": "200ms",
                     "dns_max_addresses": slots}],
                   args=["--dns-server", f"127.0.0.1:{dns.port}"])
        names, errors = served_by(gw.port)
        assert errors == 0 and set(names) == {"A"}, names

        dns.table["svc.test"] = "127.0.0.3"
        total_errors, deadline = 0, time.monotonic() + 10
        while time.monotonic() < deadline:
            names, errors = served_by(gw.port, 10)
            total_errors += errors
            if names and set(names) == {"B"}:
                break
            time.sleep(0.1)
        assert set(names) == {"B"}, names
        assert total_errors == 0

        body = json.loads(http_get(gw.admin_port, "/upstreams")[2])
        resolved = [i.get("resolved") for r in body["clusters"] for i in r["instances"] if i.get("present")]
        assert resolved == [f"127.0.0.3:{a.port}"], body
        metrics = http_get(gw.admin_port, "/metrics")[2].decode()
        lookups = [l for l in metrics.splitlines() if l.startswith("ringway_dns_lookups_total ")]
        assert lookups and int(lookups[0].split()[1]) >= 2, lookups

        # No resolver: lookups fail, the last good address keeps serving.
        dns.stop()
        time.sleep(1.0)
        names, errors = served_by(gw.port)
        assert errors == 0 and set(names) == {"B"}, names
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = http_get(gw.admin_port, "/metrics")[2].decode()
            failures = [l for l in metrics.splitlines() if l.startswith("ringway_dns_failures_total ")]
            if failures and int(failures[0].split()[1]) >= 1:
                break
            time.sleep(0.2)
        assert failures and int(failures[0].split()[1]) >= 1, failures
        assert "keeping the last good addresses" in gw.stderr()
    finally:
        dns.stop() if not dns.stopping.is_set() else None
        a.stop()
        b.stop()


def check_config(tmp_path, doc, *flags):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(doc))
    return subprocess.run([str(BINARY), "-t", "--listen", f"127.0.0.1:{free_port()}", "--config",
                           str(path), *flags], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=20, text=True)


def test_bad_dns_settings_refused(tmp_path):
    name_route = {"prefix": "/a/", "upstreams": ["http://svc.invalid:80"]}
    # A name that does not resolve is an error unless it is re-resolved.
    p = check_config(tmp_path, {"routes": [name_route]})
    assert p.returncode != 0 and "svc.invalid" in p.stderr, p.stderr
    p = check_config(tmp_path, {"routes": [name_route | {"dns_refresh": "1s"}]})
    assert p.returncode == 0, p.stderr
    for change, word in [({"dns_refresh": "0s"}, "dns_refresh"), ({"dns_refresh": "fast"}, "dns_refresh"),
                         ({"dns_max_addresses": 17}, "dns_max_addresses")]:
        p = check_config(tmp_path, {"routes": [name_route | change]})
        assert p.returncode != 0 and word in p.stderr, (change, p.stderr)
    for server in ["nowhere", "127.0.0.1", "dns.example:53"]:
        p = check_config(tmp_path, {"routes": [name_route | {"dns_refresh": "1s"}]}, "--dns-server", server)
        assert p.returncode != 0 and "dns-server" in p.stderr, (server, p.stderr)
    p = check_config(tmp_path, {"routes": [name_route]}, "--dns-refresh", "0s")
    assert p.returncode != 0 and "dns-refresh" in p.stderr, p.stderr
    p = check_config(tmp_path, {"routes": [name_route]}, "--dns-refresh", "2s", "--dns-server", "127.0.0.1:53")
    assert p.returncode == 0, p.stderr
