"""One-time passwords in Redis: stored as an HMAC, 300 s TTL, 5 attempts, checked by one atomic script."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import Enum

from redis.asyncio import Redis

from jatra.infra.scripts import LuaScript

#: a good code is spent by moving its hash from field ``h`` to ``spent``, not by deleting it: should the
#: login then fail on our side, the same code is given back (GIVE_BACK) only while it is still the phone's
#: code. A newer code replaces the key; one exhausted or expired is gone. Either way the old code cannot
#: come back over it. Moving the hash (rather than adding a mark beside it) keeps a rolling deploy safe:
#: every earlier version's script reads ``h`` alone, so none of them takes a spent code. Field ``s`` is the
#: mark the previous version set (it kept ``h``): still honoured while its pods run.
VERIFY = LuaScript(
    """
    local stored = redis.call('HGET', KEYS[1], 'h')
    if not stored or redis.call('HEXISTS', KEYS[1], 's') == 1 then return -1 end
    if stored == ARGV[1] then
        redis.call('HSET', KEYS[1], 'spent', stored)
        redis.call('HDEL', KEYS[1], 'h')
        return 1
    end
    local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
    if attempts >= tonumber(ARGV[2]) then
        redis.call('DEL', KEYS[1])
        return -2
    end
    return 0
    """,
    "otp_verify",
)
GIVE_BACK = LuaScript(
    """
    if redis.call('HGET', KEYS[1], 'spent') == ARGV[1] then
        redis.call('HSET', KEYS[1], 'h', ARGV[1])
        return redis.call('HDEL', KEYS[1], 'spent')
    end
    if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then return redis.call('HDEL', KEYS[1], 's') end
    return 0
    """,
    "otp_give_back",
)


class Verdict(Enum):
    OK = 1
    WRONG = 0
    EXPIRED = -1
    EXHAUSTED = -2


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

    async def give_back(self, phone: str, code: str) -> None:
        """A code verified (and so spent) for a login that then failed on our side: live again, with the
        life and wrong attempts it has, so the passenger's retry with it works. Only while it is still the
        phone's code: not over a newer one, nor after it expired or a newer one was exhausted."""
        await GIVE_BACK(self.redis, [_key(phone)], [self._digest(phone, code)])

    async def verify(self, phone: str, code: str) -> Verdict:
        return Verdict(
            int(await VERIFY(self.redis, [_key(phone)], [self._digest(phone, code), self.max_attempts]))
        )

    async def count_request(self, phone: str, window_s: int = 3600) -> tuple[int, int]:
        """Count one more code for this phone in the window; returns (count, seconds left in the window)."""
        key = f"jatra:auth:otp-rate:{{{phone}}}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 1)
