"""Authentication at the gate (issue 6), end to end: the real binary, the echo upstream, API keys
and JWTs minted at test time with tools/mint_token.py (Python hmac and the openssl CLI).

Every rejected request is also checked at the upstream: it must not have received a single byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from client import Conn, assert_problem
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import mint_token  # noqa: E402

ALGS = ["HS256", "RS256", "PS256", "ES256", "EdDSA"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Key material for every algorithm under test: kid -> (alg, signing key path, --jwt-key arg)."""
    d = tmp_path_factory.mktemp("jwtkeys")
    out = {}
    secret = d / "hs.secret"
    secret.write_bytes(b"0123456789abcdef0123456789abcdef-ringway-test\n")
    out["hs"] = ("HS256", str(secret), f"hs=secret:{secret}")
    for alg, kid in (("RS256", "rs"), ("PS256", "ps"), ("ES256", "es"), ("EdDSA", "ed")):
        priv = str(d / f"{kid}.pem")
        pub = mint_token.genkey(alg, priv)
        # An RSA PEM key defaults to RS256; pem/PS256 pins the key to RSASSA-PSS instead.
        kind = "pem/PS256" if alg == "PS256" else "pem"
        out[kid] = (alg, priv, f"{kid}={kind}:{pub}")
    # A second RSA key whose signatures must not verify under kid "rs".
    other = str(d / "other.pem")
    mint_token.genkey("RS256", other)
    out["other-rsa"] = ("RS256", other, None)
    return out


KID_OF = {"HS256": "hs", "RS256": "rs", "PS256": "ps", "ES256": "es", "EdDSA": "ed"}


def token(keys, kid="hs", sign_with=None, alg=None, header=None, **claims) -> str:
    """A token with exp = now + 300 unless claims say otherwise (exp=None drops it)."""
    import time
    now = int(time.time())
    body = {"iat": now, "exp": now + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    key_alg, key_path, _ = keys[sign_with or kid]
    return mint_token.mint(alg or key_alg, key_path, body, kid=kid, extra_header=header)


def jwt_args(keys, *extra: str) -> list[str]:
    args = []
    for kid in KID_OF.values():
        args += ["--jwt-key", keys[kid][2]]
    return args + ["--jwt-claim-header", "sub=X-User-Id", *extra]


def echoed_headers(resp) -> list[tuple[str, str]]:
    assert resp.status == 200, resp
    return [(k, v) for k, v in resp.json()["headers"]]


def values(headers, name) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


class Untouched:
    """Asserts that the upstream received no byte between enter and exit."""

    def __init__(self, up):
        self.up = up

    def __enter__(self):
        self.before = len(self.up.received_bytes())
        self.requests = self.up.request_count()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            assert len(self.up.received_bytes()) == self.before, "a rejected request reached the upstream"
            assert self.up.request_count() == self.requests


def get(port, path, headers=None):
    with Conn(port) as c:
        return c.request("GET", path, headers or [])


def assert_401(resp, challenge_part: str = "Bearer"):
    assert_problem(resp, 401)
    challenges = resp.header_all("WWW-Authenticate")
    assert challenges, resp
    assert any(challenge_part in ch for ch in challenges), challenges


# ---- API keys ----------------------------------------------------------------------------------

def test_api_key_right_wrong_missing(gateway, echo):
    gw = gateway(routes=[("/api/", echo)],
                 args=["--api-key", "alice=k-alice-0001", "--api-key", "bob=k-bob-0002", "--auth", "api-key"])
    # Right key: the consumer is named, a client-supplied X-Consumer is dropped, the key itself
    # is not forwarded.
    r = get(gw.port, "/api/x", [("X-API-Key", "k-bob-0002"), ("X-Consumer", "mallory")])
    h = echoed_headers(r)
    assert values(h, "X-Consumer") == ["bob"]
    assert values(h, "X-API-Key") == []
    r = get(gw.port, "/api/x", [("x-api-key", "k-alice-0001")])
    assert values(echoed_headers(r), "X-Consumer") == ["alice"]

    for bad in ([("X-API-Key", "k-alice-0002")], [("X-API-Key", "")], [],
                [("X-API-Key", "k-alice-0001"), ("X-API-Key", "k-bob-0002")],
                [("X-Consumer", "alice")]):
        with Untouched(echo):
            assert_401(get(gw.port, "/api/x", bad), "ApiKey")


def test_api_key_from_query_and_custom_header(gateway, echo, tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# consumers\ncarol=k-carol-0003\n\ndave=k-dave-0004\n")
    gw = gateway(routes=[("/api/", echo)],
                 args=["--api-keys-file", str(keys_file), "--api-key-header", "X-Key",
                       "--api-key-query", "key", "--auth", "api-key"])
    assert values(echoed_headers(get(gw.port, "/api/a?key=k-carol-0003")), "X-Consumer") == ["carol"]
    # the key is a credential for the gateway: it is not forwarded in the query either
    assert get(gw.port, "/api/a?z=%20&key=k-carol-0003&y").json()["target"] == "/a?z=%20&y"
    h = echoed_headers(get(gw.port, "/api/a", [("X-Key", "k-dave-0004")]))
    assert values(h, "X-Consumer") == ["dave"] and values(h, "X-Key") == []
    with Untouched(echo):
        assert_401(get(gw.port, "/api/a", [("X-API-Key", "k-dave-0004")]), "ApiKey")  # not the header in use
        assert_401(get(gw.port, "/api/a?key=k-dave-0005"), "ApiKey")


def test_identity_headers_stripped_on_open_route(gateway, echo):
    gw = gateway(routes=[("/api/", echo)], args=["--api-key", "alice=k-alice-0001"])  # --auth none
    h = echoed_headers(get(gw.port, "/api/x", [("X-Consumer", "alice")]))
    assert values(h, "X-Consumer") == []


# ---- JWT ---------------------------------------------------------------------------------------

@pytest.fixture
def jwt_gw(gateway, echo, keys):
    return gateway(routes=[("/api/", echo)],
                   args=jwt_args(keys, "--auth", "jwt", "--jwt-audience", "api", "--jwt-issuer", "issuer.test"))


@pytest.mark.parametrize("alg", ALGS)
def test_jwt_valid_token_accepted_and_claim_forwarded(jwt_gw, keys, alg):
    t = token(keys, KID_OF[alg], sub=f"user-{alg}", aud="api", iss="issuer.test")
    h = echoed_headers(get(jwt_gw.port, "/api/me", [("Authorization", f"Bearer {t}"),
                                                   ("X-User-Id", "someone-else")]))
    assert values(h, "X-User-Id") == [f"user-{alg}"]
    assert values(h, "Authorization") == [f"Bearer {t}"]  # the upstream may verify it again


def test_jwt_audience_array_accepted(jwt_gw, keys):
    t = token(keys, "es", sub="arr", aud=["other", "api"], iss="issuer.test")
    assert values(echoed_headers(get(jwt_gw.port, "/api/me", [("Authorization", f"Bearer {t}")])),
                  "X-User-Id") == ["arr"]


def _bad_tokens(keys):
    import time
    now = int(time.time())
    ok = {"aud": "api", "iss": "issuer.test", "sub": "eve"}
    good_hs = token(keys, "hs", **ok)
    h, p, s = good_hs.split(".")
    flipped = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    none_header = mint_token.b64url(json.dumps({"alg": "none", "kid": "hs"}).encode())
    return {
        "expired": token(keys, "rs", exp=now - 3600, iat=now - 7200, **ok),
        "forged signature (other RSA key)": token(keys, "rs", sign_with="other-rsa", **ok),
        "tampered signature": f"{h}.{p}.{flipped}",
        "tampered payload": f"{h}.{mint_token.b64url(json.dumps({'sub': 'admin', 'exp': now + 300, 'aud': 'api', 'iss': 'issuer.test'}).encode())}.{s}",
        "alg none": f"{none_header}.{p}.",
        "alg NoNe": mint_token.b64url(json.dumps({"alg": "NoNe", "kid": "hs"}).encode()) + f".{p}.",
        "wrong kid": token(keys, "hs", header={"kid": "nope"}, **ok),
        "alg mismatch (HS256 under an RSA kid)": token(keys, "rs", sign_with="hs", alg="HS256", **ok),
        "wrong audience": token(keys, "ed", aud="other", iss="issuer.test", sub="eve"),
        "wrong issuer": token(keys, "ed", aud="api", iss="evil.test", sub="eve"),
        "no exp": token(keys, "hs", exp=None, **ok),
        "not yet valid": token(keys, "es", nbf=now + 3600, **ok),
        "two segments": f"{h}.{p}",
        "garbage": "not-a-token",
    }


def test_jwt_rejections_never_reach_upstream(jwt_gw, echo, keys):
    for name, t in _bad_tokens(keys).items():
        with Untouched(echo):
            r = get(jwt_gw.port, "/api/me", [("Authorization", f"Bearer {t}")])
            assert r.status == 401, (name, r)
            assert_401(r, 'error="invalid_token"')
    with Untouched(echo):
        assert_401(get(jwt_gw.port, "/api/me"), "Bearer")  # no credentials at all
        assert_401(get(jwt_gw.port, "/api/me", [("Authorization", "Basic dXNlcjpwdw==")]), "Bearer")
    # And the same gateway still admits a good token.
    good = token(keys, "hs", aud="api", iss="issuer.test", sub="ok")
    assert values(echoed_headers(get(jwt_gw.port, "/api/me", [("Authorization", f"Bearer {good}")])),
                  "X-User-Id") == ["ok"]


def _route_config(tmp_path, echo, routes) -> str:
    for r in routes:
        r.setdefault("upstreams", [echo.url])
    p = tmp_path / "routes.json"
    p.write_text(json.dumps({"routes": routes}))
    return str(p)


def test_route_scopes_and_claims(gateway, echo, keys, tmp_path):
    cfg = _route_config(tmp_path, echo, [
        {"prefix": "/orders/", "auth": "jwt", "scopes": ["orders:read"]},
        {"prefix": "/admin/", "auth": "jwt", "claims": {"role": "admin"}},
        {"prefix": "/open/"},
    ])
    gw = gateway(args=["--config", cfg, *jwt_args(keys)])
    reader = token(keys, "rs", sub="r", scope="profile orders:read")
    writer = token(keys, "rs", sub="w", scope="orders:write")
    admin = token(keys, "ed", sub="a", role="admin")
    assert values(echoed_headers(get(gw.port, "/orders/1", [("Authorization", f"Bearer {reader}")])),
                  "X-User-Id") == ["r"]
    assert values(echoed_headers(get(gw.port, "/admin/x", [("Authorization", f"Bearer {admin}")])),
                  "X-User-Id") == ["a"]
    echoed_headers(get(gw.port, "/open/x"))  # auth none on this route
    for path, t in (("/orders/1", writer), ("/admin/x", reader)):
        with Untouched(echo):
            r = get(gw.port, path, [("Authorization", f"Bearer {t}")])
            assert_problem(r, 403)
            assert any("insufficient_scope" in c for c in r.header_all("WWW-Authenticate")), r
    with Untouched(echo):
        assert_401(get(gw.port, "/orders/1"))


def test_auth_any_accepts_either_credential(gateway, echo, keys):
    gw = gateway(routes=[("/api/", echo)],
                 args=jwt_args(keys, "--api-key", "alice=k-alice-0001", "--auth", "any"))
    h = echoed_headers(get(gw.port, "/api/x", [("X-API-Key", "k-alice-0001")]))
    assert values(h, "X-Consumer") == ["alice"] and values(h, "X-User-Id") == []
    t = token(keys, "es", sub="sam")
    h = echoed_headers(get(gw.port, "/api/x", [("Authorization", f"Bearer {t}")]))
    assert values(h, "X-User-Id") == ["sam"] and values(h, "X-Consumer") == []
    expired = token(keys, "es", sub="sam", exp=1)
    with Untouched(echo):
        assert_401(get(gw.port, "/api/x"))
        assert_401(get(gw.port, "/api/x", [("X-API-Key", "wrong")]), "ApiKey")
        # A bad token does not fall back to a good key.
        assert_401(get(gw.port, "/api/x", [("Authorization", f"Bearer {expired}"),
                                           ("X-API-Key", "k-alice-0001")]), 'error="invalid_token"')


def test_bad_auth_configuration_exits_2(ringway_bin, tmp_path, keys):
    import subprocess
    cases = [
        (["--auth", "jwt"], "--jwt-jwks or --jwt-key"),
        (["--auth", "api-key"], "--api-key"),
        (["--auth", "sometimes"], "--auth"),
        (["--jwt-key", f"k=pem:{tmp_path}/missing.pem"], "missing.pem"),
        (["--api-keys-file", f"{tmp_path}/missing.txt"], "--api-keys-file"),
        (["--api-key", "no-equals-sign"], "--api-key"),
        (["--jwt-key", "k=rsa:/x"], "--jwt-key"),
    ]
    for args, needle in cases:
        r = subprocess.run([str(ringway_bin), "--listen", "127.0.0.1:1", "--threads", "1",
                            "--route", "/a/=http://127.0.0.1:9", *args],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL, cwd=tmp_path)
        assert r.returncode == 2, (args, r)
        assert needle in r.stderr.decode(), (args, r.stderr)
