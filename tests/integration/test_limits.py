"""Client-controlled sizes: 413 body, 414 request line, 431 head size and field count."""

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
