"""Access tokens (JWT, 15 min) and refresh tokens (opaque, 7 days, stored hashed, rotated per use)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from litestar.security.jwt import Token


def access_token(secret: str, user_id: uuid.UUID, role: str, family: uuid.UUID, ttl_s: int) -> str:
    now = dt.datetime.now(dt.UTC)
    token = Token(
        sub=str(user_id),
        exp=now + dt.timedelta(seconds=ttl_s),
        iat=now,
        iss="jatra",
        jti=uuid.uuid4().hex,
        extras={"role": role, "fam": str(family)},
    )
    return token.encode(secret, "HS256")


def new_refresh_token() -> tuple[str, str]:
    """(the token handed to the client, the hash stored in Postgres)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
