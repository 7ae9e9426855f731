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
from litestar.security.jwt import JWTAuth, Token

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


def jwt_auth(settings: Settings, secret: str) -> JWTAuth[Principal, Token]:
    return JWTAuth[Principal, Token](
        retrieve_user_handler=_principal,
        revoked_token_handler=_revoked,
        token_secret=secret,
        algorithm="HS256",
        accepted_issuers=["jatra"],
        require_claims=["exp", "sub", "iss"],
        default_token_expiration=dt.timedelta(seconds=settings.access_token_ttl_s),
    )


def admin_only(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
    if not isinstance(connection.user, Principal):
        raise NotAuthorizedException("a valid access token is required")
    if connection.user.role != "admin":
        raise PermissionDeniedException("admin role required")
