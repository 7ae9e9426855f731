"""One-time passwords in Redis: stored as an HMAC, 300 s TTL, 5 attempts, checked by one atomic script."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

from jatra.infra.scripts import LuaScript

VERIFY = LuaScript(
    """
    local stored = redis.call('HGET', KEYS[1], 'h')
    if not stored then return {-1} end
    if stored == ARGV[1] then
        -- what the code had left, should the login fail on our side and the code be given back
        local left = redis.call('PTTL', KEYS[1])
        local attempts = redis.call('HGET', KEYS[1], 'n') or '0'
        redis.call('DEL', KEYS[1])
        return {1, left, attempts}
    end
    local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
    if attempts >= tonumber(ARGV[2]) then
        redis.call('DEL', KEYS[1])
        return {-2}
    end
    return {0}
    """,
    "otp_verify",
)


class Verdict(Enum):
    OK = 1
    WRONG = 0
    EXPIRED = -1
    EXHAUSTED = -2


@dataclass(frozen=True, slots=True)
class Checked:
    verdict: Verdict
    #: a good code's remaining life (ms) and wrong attempts when it was spent: what a give-back restores
    left_ms: int = 0
    attempts: int = 0


def _key(phone: str) -> str:
    return f"jatra:auth:otp:{{{phone}}}"


class OtpStore:
    def __init__(self, redis: Redis, secret: str, ttl_s: int, max_attempts: int) -> None:
        self.redis = redis
        self.secret = secret.encode()
        self.ttl_s = ttl_s
        self.max_attempts = max_attempts

    def _digest(self, phone: str, code: str) -> str:
        return hmac.new(self.secret, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    async def issue(self, phone: str) -> str:
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_key(phone))
            pipe.hset(_key(phone), mapping={"h": self._digest(phone, code), "n": 0})
            pipe.expire(_key(phone), self.ttl_s)
            await pipe.execute()
        return code

    async def give_back(self, phone: str, code: str, spent: Checked) -> None:
        """A code verified (and so spent) for a login that then failed on our side: live again, with the
        life and wrong attempts it had, so the passenger's retry with it works. Not over a newer code the
        passenger asked for meanwhile."""
        if spent.left_ms <= 0:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(_key(phone), "h", self._digest(phone, code))
            pipe.hsetnx(_key(phone), "n", spent.attempts)
            pipe.pexpire(_key(phone), spent.left_ms, nx=True)
            await pipe.execute()

    async def verify(self, phone: str, code: str) -> Checked:
        raw = await VERIFY(self.redis, [_key(phone)], [self._digest(phone, code), self.max_attempts])
        verdict = Verdict(int(raw[0]))
        if verdict is not Verdict.OK:
            return Checked(verdict)
        return Checked(verdict, int(raw[1]), int(raw[2]))

    async def count_request(self, phone: str, window_s: int = 3600) -> tuple[int, int]:
        """Count one more code for this phone in the window; returns (count, seconds left in the window)."""
        key = f"jatra:auth:otp-rate:{{{phone}}}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 1)
