"""HTTP routes of the auth service: OTP, token, refresh, logout."""

from __future__ import annotations

from litestar import Controller, Router, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.auth.schemas import OtpRequest, OtpSent, RefreshRequest, TokenPair, TokenRequest
from jatra.auth.service import AuthService
from jatra.infra.admission import NEW
from jatra.infra.channels import sms_channel
from jatra.infra.deps import resources_of, shared_dependencies
from jatra.infra.openapi import BODY, problems
from jatra.infra.secrets import jwt_secret
from jatra.settings import Settings


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]  # noqa: RUF012

    @post(
        "/otp",
        operation_id="requestOtp",
        opt=NEW,
        status_code=HTTP_202_ACCEPTED,
        responses=problems(*BODY, 429, s422="Not a Bangladeshi mobile number"),
    )
    async def otp(self, data: JSONBody[OtpRequest], auth: NamedDependency[AuthService]) -> OtpSent:
        """Send a 6-digit login code by SMS. Rate-limited per phone number and per client address."""
        return OtpSent(sent=True, expires_in=await auth.request_otp(data.phone))

    @post(
        "/token",
        operation_id="login",
        opt=NEW,
        status_code=HTTP_200_OK,
        responses=problems(
            *BODY, s401="Wrong, expired or burnt code", s422="Not a Bangladeshi mobile number"
        ),
    )
    async def token(self, data: JSONBody[TokenRequest], auth: NamedDependency[AuthService]) -> TokenPair:
        """Exchange phone + code for an access token (15 min) and a refresh token (7 days)."""
        return await auth.login(data.phone, data.otp)

    @post(
        "/refresh",
        operation_id="refreshToken",
        status_code=HTTP_200_OK,
        responses=problems(*BODY, s401="Unknown, expired, revoked or reused refresh token"),
    )
    async def refresh(self, data: JSONBody[RefreshRequest], auth: NamedDependency[AuthService]) -> TokenPair:
        """Rotate a refresh token. A token used twice revokes every token of its login."""
        return await auth.refresh(data.refresh_token)

    @post(
        "/logout",
        operation_id="logout",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(*BODY, s401="Unknown refresh token"),
    )
    async def logout(self, data: JSONBody[RefreshRequest], auth: NamedDependency[AuthService]) -> None:
        """Revoke this login: its refresh tokens and, at once, its access tokens."""
        await auth.logout(data.refresh_token)


def create_router(settings: Settings) -> Router:
    secret = jwt_secret(settings)
    channel = sms_channel(settings)

    def provide_auth(
        db_session: NamedDependency[AsyncSession],
        redis: NamedDependency[Redis],
        settings: NamedDependency[Settings],
        state: State,
    ) -> AuthService:
        revoked = resources_of(state).revocations()
        return AuthService(db_session, redis, settings, secret, channel, revoked)

    per_ip = RateLimitConfig(
        rate_limit=("minute", settings.otp_per_ip_per_minute),
        exclude=["/token", "/refresh", "/logout"],
        store="rate_limit",
    )
    return Router(
        path="/api/v1",
        route_handlers=[AuthController],
        middleware=[per_ip.middleware],
        dependencies={
            **shared_dependencies(),
            "auth": Provide(provide_auth, sync_to_thread=False),
        },
        opt={"service": "auth"},
    )
