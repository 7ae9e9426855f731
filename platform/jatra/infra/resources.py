"""The connections one process holds (db, redis, amqp), opened in its lifespan and closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aio_pika.abc import AbstractRobustConnection
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jatra.infra.amqp import connect_amqp
from jatra.infra.db import create_engine, session_factory
from jatra.infra.doorbell import Doorbell
from jatra.infra.pg import Statements
from jatra.infra.pg_listen import Listener
from jatra.infra.redis import create_redis
from jatra.infra.revocations import Revocations
from jatra.settings import Settings

ALL = frozenset({"db", "redis", "amqp"})


@dataclass(slots=True)
class Resources:
    settings: Settings
    name: str
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    #: the hot path's one-exchange statements (jatra.infra.pg), beside the ORM's sessions
    pg: Statements | None = None
    redis: Redis | None = None
    amqp: AbstractRobustConnection | None = None
    wants_amqp: bool = False
    bells: dict[str, Doorbell] = field(default_factory=dict)
    listeners: dict[str, Listener] = field(default_factory=dict)
    revoked: Revocations | None = None

    def db(self) -> async_sessionmaker[AsyncSession]:
        assert self.sessions is not None, f"{self.name} did not ask for the database"
        return self.sessions

    def statements(self) -> Statements:
        assert self.pg is not None, f"{self.name} did not ask for the database"
        return self.pg

    def cache(self) -> Redis:
        assert self.redis is not None, f"{self.name} did not ask for redis"
        return self.redis

    def doorbell(self, channel: str) -> Doorbell:
        """This process's one subscription to ``channel`` (it starts with the first waiter)."""
        if channel not in self.bells:
            self.bells[channel] = Doorbell(self.cache(), channel)
        return self.bells[channel]

    def revocations(self) -> Revocations:
        """This process's list of logged-out logins (its subscription starts with the first check)."""
        if self.revoked is None:
            self.revoked = Revocations(self.cache(), self.settings.access_token_ttl_s)
        return self.revoked

    def listener(self, channel: str, on_state: Callable[[bool], None]) -> Listener | None:
        """This process's LISTEN session on ``channel`` (started on first use), or None when the settings
        give no direct Postgres URL (then the caller polls)."""
        if channel not in self.listeners:
            if not self.settings.db_listen_url:
                return None
            self.listeners[channel] = Listener(self.settings.db_listen_url, channel, self.name, on_state)
            self.listeners[channel].start()
        return self.listeners[channel]

    async def ensure_amqp(self) -> AbstractRobustConnection | None:
        """The broker connection, retried if the broker was down at start-up."""
        if self.wants_amqp and (self.amqp is None or self.amqp.is_closed):
            self.amqp = await connect_amqp(self.settings, self.name)
        return self.amqp

    async def close(self) -> None:
        for bell in self.bells.values():
            await bell.close()
        for listener in self.listeners.values():
            await listener.close()
        if self.revoked is not None:
            await self.revoked.close()
        if self.amqp is not None:
            await self.amqp.close()
        if self.redis is not None:
            await self.redis.aclose()
        if self.pg is not None:
            await self.pg.close()
        if self.engine is not None:
            await self.engine.dispose()


@asynccontextmanager
async def open_resources(
    settings: Settings, name: str, needs: Collection[str] = ALL, db_pool: int | None = None
) -> AsyncIterator[Resources]:
    """The connections ``needs`` names; ``db_pool`` bounds a worker's database connections."""
    res = Resources(settings=settings, name=name, wants_amqp="amqp" in needs)
    if "db" in needs:
        res.engine = create_engine(settings, pool_size=db_pool, name=name)
        res.sessions = session_factory(res.engine)
        # the engine's bounds: a worker's pool is its concurrency; an HTTP process has its pool and as
        # many again in overflow, and waits 5 s for one
        size = db_pool or 2 * settings.database_pool_size
        res.pg = Statements(settings, name, size, timeout_s=30 if db_pool else 5)
        await res.pg.open()
    if "redis" in needs:
        res.redis = create_redis(settings)
    try:
        await res.ensure_amqp()
        yield res
    finally:
        await res.close()
