"""Lua scripts called by EVALSHA, loaded again on NOSCRIPT (after a Redis restart or SCRIPT FLUSH).

Works with a single Redis and with a Redis Cluster: every script declares all its keys, and callers put
one hash tag in them so that a script touches a single slot.
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

AnyRedis = Redis | RedisCluster


class LuaScript:
    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: AnyRedis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Load on the node that owns the keys (EVAL caches it there), then carry on.
            return await redis.eval(self.source, len(keys), *keys, *args)
