"""An access token is verified once per process: later requests with the same text reuse the result, until
the token expires. Anything else (another text, another secret, an expired token) is verified afresh."""

from __future__ import annotations

import datetime as dt
import inspect
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator

import jwt
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

    def counting(cls: type[Token], /, encoded_token: str, *args: object, **kwargs: object) -> object:
        seen.append(encoded_token)
        return real(cls, encoded_token, *args, **kwargs)

    monkeypatch.setattr(Token, "decode_payload", classmethod(counting))
    monkeypatch.setattr(VerifiedToken, "_verified", OrderedDict())
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


def test_a_token_past_its_exp_is_verified_again(verifications: list[str]) -> None:
    token = _token()
    verified = VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    verified.exp = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # as if its time had passed
    again = VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert verifications == [token, token] and again is not verified


def test_an_expired_token_is_refused_and_not_kept(verifications: list[str]) -> None:
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "iss": "jatra", "iat": now - 905, "exp": now - 5, "role": "passenger"}
    token = jwt.encode(claims, SECRET, "HS256")
    for _ in range(2):
        with pytest.raises(NotAuthorizedException):
            VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    assert verifications == [token, token] and not VerifiedToken._verified


def test_other_checks_verify_the_token_again(verifications: list[str]) -> None:
    token = _token()
    VerifiedToken.decode(token, SECRET, **CLAIMS)  # type: ignore[arg-type]
    with pytest.raises(NotAuthorizedException):  # an issuer it was not checked against
        VerifiedToken.decode(token, SECRET, algorithm="HS256", issuer=["other"])
    assert verifications == [token, token]


def test_it_takes_what_litestar_passes() -> None:
    """The middleware calls ``token_cls.decode`` with Token's parameters: a Litestar that adds one must
    have it here too (and in the cache's key), or every request would fail."""
    assert inspect.signature(VerifiedToken.decode) == inspect.signature(Token.decode)


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
