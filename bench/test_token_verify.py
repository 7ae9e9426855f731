"""The cost of checking one access token (`make bench-tokens`, pytest-benchmark): verified on every
request as Litestar's JWT middleware does (PyJWT: base64 checks in pure Python, the HMAC, the claims),
against `jatra.infra.auth.VerifiedToken`, which verifies a token once per process and then finds it by its
text until it expires. A passenger sends the same token on each of a booking's ~7 requests. Revocation is
asked of Redis either way, and is not part of this. `make test` runs it once, untimed, so it cannot rot."""

from __future__ import annotations

import uuid

from litestar.security.jwt import Token
from pytest_benchmark.fixture import BenchmarkFixture

from jatra.auth.tokens import access_token
from jatra.infra.auth import VerifiedToken

SECRET = "s" * 32
CHECKS = {"algorithm": "HS256", "issuer": ["jatra"], "require_claims": ["exp", "sub", "iss"]}


def _token() -> str:
    """Made as the test runs: `make test` reaches bench/ after every other test, later than a token lives."""
    return access_token(SECRET, uuid.uuid4(), "passenger", uuid.uuid4(), 900)


def test_verified_on_every_request(benchmark: BenchmarkFixture) -> None:
    token = benchmark(Token.decode, _token(), SECRET, **CHECKS)
    assert token.extras["role"] == "passenger"


def test_verified_once_then_found(benchmark: BenchmarkFixture) -> None:
    text = _token()
    first = VerifiedToken.decode(text, SECRET, **CHECKS)  # type: ignore[arg-type]
    token = benchmark(VerifiedToken.decode, text, SECRET, **CHECKS)
    assert token is first
