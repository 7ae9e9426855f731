"""An access token is verified once per process: later requests with the same text reuse the result, until
the token expires. Anything else (another text, another secret, an expired token) is verified afresh."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import pytest
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token

from jatra.auth.tokens import access_token
from jatra.infra.auth import VerifiedToken

SECRET = "s" * 32
CLAIMS = {"algorithm": "HS256", "issuer": ["jatra"], "require_claims": ["exp", "sub", "iss"]}


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The tokens PyJWT was asked to verify, in order."""
    seen: list[str] = []
    real = Token.decode_payload.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Token], encoded_token: str, *args: object, **kwargs: object) -> object:
        seen.append(encoded_token)
        return real(cls, encoded_token, *args, **kwargs)

    monkeypatch.setattr(Token, "decode_payload", classmethod(counting))
    monkeypatch.setattr(VerifiedToken, "_verified", {})
    yield seen


def _token(ttl_s: int = 900, secret: str = SECRET) -> str:
    return access_token(secret, uuid.uuid4(), "passenger", uuid.uuid4(), ttl_s)


def test_the_same_token_is_verified_once(verifications: list[str]) -> None:
    token = _token()
    first = VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    again = VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert again.sub == first.sub and again.extras == first.extras
    assert verifications == [token]


def test_a_changed_signature_or_another_secret_is_verified_and_refused(verifications: list[str]) -> None:
    token = _token()
    VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    with pytest.raises(NotAuthorizedException):
        VerifiedToken.decode(forged, SECRET, **CLAIMS)  # type: ignore[arg-type]
    with pytest.raises(NotAuthorizedException):
        VerifiedToken.decode(token, "t" * 32, **CLAIMS)  # type: ignore[arg-type]
    assert verifications == [token, forged, token]


def test_an_expired_token_is_refused_even_after_it_was_verified(verifications: list[str]) -> None:
    token = _token(ttl_s=1)
    verified = VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    time.sleep(max(0.0, (verified.exp - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    with pytest.raises(NotAuthorizedException):
        VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert verifications == [token, token]


def test_at_most_keep_tokens_are_held_the_oldest_going_first(
    verifications: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(VerifiedToken, "KEEP", 3)
    tokens = [_token() for _ in range(5)]
    for token in tokens:
        VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert len(VerifiedToken._verified) == 3
    VerifiedToken.decode(tokens[-1], SECRET, **CLAIMS)  # type: ignore[arg-type]
    VerifiedToken.decode(tokens[0], SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert verifications == [*tokens, tokens[0]]
