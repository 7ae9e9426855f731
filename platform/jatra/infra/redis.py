"""The Redis client of one process, with short timeouts so a dead Redis fails fast (503, not a hang)."""

from __future__ import annotations

from redis.asyncio import Redis

from jatra.settings import Settings


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis,
        socket_timeout=settings.dependency_timeout_s,
        socket_connect_timeout=settings.dependency_timeout_s,
        health_check_interval=30,
        max_connections=512,
        decode_responses=False,
    )
