"""Access-token verification shared by every service that needs a logged-in passenger.

The auth service issues tokens (HS256 JWTs carrying the user id, role and refresh family); the others only
verify them here, through Litestar's JWT middleware, so no service imports the auth service. A token whose
family was logged out is refused even before it expires.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from jatra.settings import Settings

ROLES = ("passenger", "admin")
REVOKED_PREFIX = "jatra:auth:revoked:"


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
    redis = connection.app.state.resources.cache()
    return bool(await redis.exists(REVOKED_PREFIX + str(family)))


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


def jwt_auth(settings: Settings, secret: str) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
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
