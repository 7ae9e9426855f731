"""Litestar dependencies shared by every service: a db session per request (for the services that always use
one), the hot path's one-exchange statements (jatra.infra.pg), the redis client, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.infra.pg import Statements
from jatra.infra.resources import Resources
from jatra.settings import Settings


def resources_of(state: State) -> Resources:
    res: Resources = state.resources
    return res


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    async with resources_of(state).db()() as session:
        yield session


def provide_statements(state: State) -> Statements:
    return resources_of(state).statements()


def provide_redis(state: State) -> Redis:
    return resources_of(state).cache()


def provide_settings(state: State) -> Settings:
    return resources_of(state).settings


def shared_dependencies() -> dict[str, Provide]:
    """What every service router provides: a db session per request (auth's), the one-exchange statements,
    the redis client, the settings. The catalog, seats and bookings services are built from the process's
    resources directly, and open an ORM session only where they use the ORM."""
    return {
        "db_session": Provide(provide_session),
        "pg": Provide(provide_statements, sync_to_thread=False),
        "redis": Provide(provide_redis, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
    }
