"""Login by one-time password, token issue, refresh rotation with reuse detection, logout."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
import uuid

import structlog
from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.auth import repository, tokens
from jatra.auth.errors import InvalidPhone, LoginFailed, OtpRateLimited
from jatra.auth.otp import OtpStore, Verdict
from jatra.auth.schemas import TokenPair
from jatra.infra.channels import Channel, Notice
from jatra.infra.revocations import Revocations, revoke
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
OTP_REQUESTS = counter(c.OTP_REQUESTS)
LOGINS = counter(c.LOGINS)
REFRESHES = counter(c.REFRESHES)
#: ASCII digits only: ``\d`` also matches Bengali or Arabic-Indic digits, and each spelling of one number
#: would be an account and an OTP allowance of its own (they are made ASCII first, below)
PHONE = re.compile(r"^\+8801[3-9][0-9]{8}\Z")


def normalise_phone(phone: str) -> str:
    """The number as stored: spaces and dashes dropped, any script's digits made ASCII (a phone's keyboard
    may type Bengali digits), a national 01... made +8801..."""
    compact = "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in re.sub(r"[\s-]", "", phone)
    )
    if compact.startswith("01"):
        compact = "+88" + compact
    if not PHONE.match(compact):
        raise InvalidPhone(phone)
    return compact


def masked(phone: str) -> str:
    return phone[:6] + "*****" + phone[-3:]


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        redis: Redis,
        settings: Settings,
        secret: str,
        channel: Channel,
        revoked: Revocations,
    ) -> None:
        self.session = session
        self.revoked = revoked
        self.redis = redis
        self.settings = settings
        self.secret = secret
        self.channel = channel
        self.otps = OtpStore(redis, secret, settings.otp_ttl_s, settings.otp_max_attempts)

    async def request_otp(self, phone: str) -> int:
        phone = normalise_phone(phone)
        count, window_left = await self.otps.count_request(phone)
        if count > self.settings.otp_per_phone_per_hour:
            OTP_REQUESTS.labels("rate_limited").inc()
            log.info("auth.otp.rate_limited", phone=masked(phone))
            raise OtpRateLimited(window_left)
        code = await self.otps.issue(phone)
        await self.channel.deliver(
            Notice(phone, "Jatra login code", f"Your Jatra code is {code}. It expires in 5 minutes.", "otp")
        )
        OTP_REQUESTS.labels("sent").inc()
        log.info("auth.otp.sent", phone=masked(phone))
        return self.settings.otp_ttl_s

    async def login(self, phone: str, code: str) -> TokenPair:
        phone = normalise_phone(phone)
        verdict = await self.otps.verify(phone, code.strip())
        if verdict is not Verdict.OK:
            outcome = verdict.name.lower()
            LOGINS.labels(outcome).inc()
            log.info("auth.login.failed", phone=masked(phone), outcome=outcome)
            reasons = {
                Verdict.WRONG: "wrong code",
                Verdict.EXPIRED: "no live code for this number: request a new one",
                Verdict.EXHAUSTED: "too many wrong codes: request a new one",
            }
            raise LoginFailed(reasons[verdict])
        try:
            user_id, role = await repository.upsert_user(self.session, phone)
            pair = await self._issue(user_id, role, uuid.uuid4())
            await self.session.commit()
        except Exception:
            # The code was good and is spent, but no login came of it (Postgres failed: the answer is a
            # 503 "retry"): the retry with the same code must work, not say "no live code"
            with contextlib.suppress(RedisError, OSError):
                await self.otps.give_back(phone, code.strip())
            raise
        LOGINS.labels("ok").inc()
        log.info("auth.login.succeeded", user_id=str(user_id), role=role)
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = dt.datetime.now(dt.UTC)
        row = await repository.refresh_for_update(self.session, tokens.hash_refresh_token(refresh_token))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            REFRESHES.labels("invalid").inc()
            raise LoginFailed("refresh token is unknown, expired or revoked")
        if row.used_at is not None:
            # Reuse of a rotated token: someone else has a copy. Kill the whole family.
            await self._revoke(row.family_id, now)
            await self.session.commit()
            REFRESHES.labels("reused").inc()
            log.warning("auth.refresh.reused", user_id=str(row.user_id), family=str(row.family_id))
            raise LoginFailed("refresh token was already used; every session of this login is revoked")
        row.used_at = now
        role = await repository.role_of(self.session, row.user_id) or "passenger"
        pair = await self._issue(row.user_id, role, row.family_id)
        await self.session.commit()
        REFRESHES.labels("ok").inc()
        log.info("auth.refresh.rotated", user_id=str(row.user_id))
        return pair

    async def logout(self, refresh_token: str) -> None:
        now = dt.datetime.now(dt.UTC)
        row = await repository.refresh_for_update(self.session, tokens.hash_refresh_token(refresh_token))
        if row is None:
            raise LoginFailed("refresh token is unknown")
        await self._revoke(row.family_id, now)
        await self.session.commit()
        REFRESHES.labels("logout").inc()
        log.info("auth.logout", user_id=str(row.user_id))

    async def _revoke(self, family: uuid.UUID, now: dt.datetime) -> None:
        await repository.revoke_family(self.session, family, now)
        # Access tokens of this family stop working at once, not when they expire, in every process.
        await revoke(self.redis, str(family), self.settings.access_token_ttl_s)
        self.revoked.mark(str(family))  # here before the answer; elsewhere as the publication arrives

    async def _issue(self, user_id: uuid.UUID, role: str, family: uuid.UUID) -> TokenPair:
        refresh, refresh_hash = tokens.new_refresh_token()
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.refresh_token_ttl_s)
        await repository.add_refresh(self.session, user_id, family, refresh_hash, expires)
        access = tokens.access_token(self.secret, user_id, role, family, self.settings.access_token_ttl_s)
        return TokenPair(
            access_token=access, refresh_token=refresh, expires_in=self.settings.access_token_ttl_s
        )
