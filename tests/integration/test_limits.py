"""Client-controlled sizes: 413 body, 414 request line, 431 head size and field count."""

import time

import pytest

from client import Closed, Conn, assert_problem, build_request, chunked


@pytest.fixture
def limited(gateway, echo):
    return gateway(routes=[("/api/users/", echo)],
                   args=["--max-body-size", "1k", "--max-request-line", "1k",
                         "--max-header-bytes", "4k", "--max-header-count", "20"])


def test_within_limits_ok(limited, echo):
    with Conn(limited.port) as c:
        r = c.request("POST", "/api/users/" + "a" * 900, [(f"X-H{i}", "v" * 100) for i in range(15)],
                      b"b" * 1024)
        assert r.status == 200, r
        assert r.json()["body_len"] == 1024


def test_body_over_limit_413_content_length(limited, echo):
    with Conn(limited.port) as c:
        r = c.request("POST", "/api/users/big", body=b"x" * 2000)
        assert_problem(r, 413)
    assert b"/big" not in echo.received_bytes()


def test_body_over_limit_413_chunked(limited, echo):
    with Conn(limited.port) as c:
        c.send(build_request("POST", "/api/users/bigc", [("Transfer-Encoding", "chunked")])
               + chunked(b"x" * 3000, 500))
        try:
            r = c.read_response()
        except Closed as e:
            raise AssertionError(f"closed without a 413: {e.partial!r}")
        assert_problem(r, 413)


def test_request_line_too_long_414(limited, echo):
    with Conn(limited.port) as c:
        assert_problem(c.request("GET", "/api/users/" + "a" * 2000), 414)
    assert echo.received_bytes() == b""


def test_head_too_large_431(limited, echo):
    with Conn(limited.port) as c:
        assert_problem(c.request("GET", "/api/users/x", [("X-Big", "v" * 5000)]), 431)
    assert echo.received_bytes() == b""


def test_too_many_fields_431(limited, echo):
    with Conn(limited.port) as c:
        assert_problem(c.request("GET", "/api/users/x", [(f"X-H{i}", "v") for i in range(30)]), 431)
    assert echo.received_bytes() == b""


def test_default_limits_accept_normal_large_head(gw, echo):
    # 10 KiB of headers are under the default 16k
    with Conn(gw.port) as c:
        assert c.request("GET", "/api/users/x", [(f"X-H{i}", "v" * 1000) for i in range(10)]).status == 200


def test_head_split_then_large_body_is_not_too_large(gw, echo):
    # A 12 KiB head (under the default 16k) arrives in two parts, the second followed at once by a
    # 60 KiB body. The second receive must not count the body against the head limit: the
    # gateway once took the whole receive (16 or 64 KiB) on top of the 10 KiB it held and
    # answered 431 to a head that fits.
    body = b"z" * 60_000
    raw = build_request("POST", "/api/users/split", [(f"X-H{i}", "v" * 1000) for i in range(12)],
                        body)
    head_end = raw.index(b"\r\n\r\n") + 4
    with Conn(gw.port) as c:
        c.send(raw[:10_000])
        time.sleep(0.3)  # the gateway receives and holds the first part
        c.send(raw[10_000:])
        r = c.read_response()
        assert r.status == 200, r
        assert r.json()["body_len"] == len(body)
        assert head_end > 10_000
