"""Access-token verification shared by every service that needs a logged-in passenger.

The auth service issues tokens (HS256 JWTs carrying the user id, role and refresh family); the others only
verify them here, through Litestar's JWT middleware, so no service imports the auth service. A token whose
family was logged out is refused even before it expires (jatra.infra.revocations).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from jatra.settings import Settings

ROLES = ("passenger", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: str
    family: str


async def _principal(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    extras = token.extras
    role = extras.get("role")
    if role not in ROLES:
        return None
    try:
        return Principal(uuid.UUID(token.sub), str(role), str(extras.get("fam", "")))
    except ValueError:
        return None


async def _revoked(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    family = token.extras.get("fam")
    if not family:
        return True
    revoked: bool = await connection.app.state.resources.revocations().revoked(str(family))
    return revoked


class VerifiedToken(Token):
    """A token verified once per process, not on every request.

    A passenger sends the same access token on each of a booking's ~7 requests, and verifying it (PyJWT's
    base64 checks in pure Python, the HMAC, the claims) was ~6 % of an API replica's CPU. Only a token that
    passed verification is remembered, by its exact text together with what it was checked against, and
    only until its ``exp``; past that it is decoded again and refused. Revocation is not part of it: it
    is checked on every request (jatra.infra.revocations). At most ``KEEP`` tokens are held (about 2 KB
    each), the oldest going first. The same token object answers every request with that text: nothing
    may change it."""

    KEEP: ClassVar[int] = 10_000
    _verified: ClassVar[OrderedDict[tuple[object, ...], Self]] = OrderedDict()

    @classmethod
    def decode(
        cls,
        encoded_token: str,
        secret: str,
        algorithm: str,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        require_claims: Sequence[str] | None = None,
        verify_exp: bool = True,
        verify_nbf: bool = True,
        strict_audience: bool = False,
    ) -> Self:
        key = (encoded_token, secret, algorithm, _frozen(audience), _frozen(issuer), _frozen(require_claims),
               verify_exp, verify_nbf, strict_audience)  # fmt: skip
        known = cls._verified.get(key)
        if known is not None and known.exp > dt.datetime.now(dt.UTC):
            return known
        cls._verified.pop(key, None)
        token = super().decode(encoded_token, secret, algorithm, audience, issuer, require_claims,
                               verify_exp, verify_nbf, strict_audience)  # fmt: skip
        if len(cls._verified) >= cls.KEEP:
            cls._verified.popitem(last=False)
        cls._verified[key] = token
        return token


def _frozen(value: str | Sequence[str] | None) -> object:
    return value if value is None or isinstance(value, str) else tuple(value)


#: RFC 6750: what a 401 tells the client to send
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="jatra"'}


class BearerAuthenticationMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, taking the token only from an ``Authorization: Bearer`` header.

    Litestar's own takes whatever follows the first space, so ``Basic <jwt>`` passed as a bearer token.
    The scheme is compared case-insensitively (RFC 9110 section 11.1)."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get(self.auth_header, "").partition(" ")
        if not scheme:
            raise NotAuthorizedException("an access token is required: Authorization: Bearer <token>",
                                         headers=CHALLENGE)  # fmt: skip
        if scheme.lower() != "bearer":
            raise NotAuthorizedException(
                f"the Authorization scheme must be Bearer, not {scheme[:20]!r}", headers=CHALLENGE
            )
        if not token.strip():
            raise NotAuthorizedException("the Bearer token is missing", headers=CHALLENGE)
        return await self.authenticate_token(encoded_token=token.strip(), connection=connection)


def jwt_auth(settings: Settings, secret: str) -> JWTAuth[Principal, VerifiedToken]:
    return JWTAuth[Principal, VerifiedToken](
        token_cls=VerifiedToken,
        retrieve_user_handler=_principal,
        revoked_token_handler=_revoked,
        token_secret=secret,
        algorithm="HS256",
        accepted_issuers=["jatra"],
        require_claims=["exp", "sub", "iss"],
        default_token_expiration=dt.timedelta(seconds=settings.access_token_ttl_s),
        authentication_middleware_class=BearerAuthenticationMiddleware,
    )


def admin_only(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
    if connection.scope.get("method") == "OPTIONS":
        return  # not authenticated (the JWT middleware skips OPTIONS); it reveals only the Allow header
    if not isinstance(connection.scope.get("user"), Principal):
        raise NotAuthorizedException("a valid access token is required")
    if connection.user.role != "admin":
        raise PermissionDeniedException("admin role required")
