"""Litestar dependencies shared by every service: the ORM's sessions (opened by a service when it needs one),
a db session per request for the services that always do, the hot path's one-exchange statements
(jatra.infra.pg), the redis client, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import Provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.infra.pg import Statements
from jatra.infra.resources import Resources
from jatra.settings import Settings


def resources_of(state: State) -> Resources:
    res: Resources = state.resources
    return res


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    async with resources_of(state).db()() as session:
        yield session


def provide_sessions(state: State) -> async_sessionmaker[AsyncSession]:
    """The session factory: a service opens a session only on the paths that use the ORM. A session per
    request (an async generator Litestar must clean up after the answer, a Session made and closed) was
    3.5-5 % of an API replica's busy samples, on a hot path that asks its statements through ``pg``."""
    return resources_of(state).db()


def provide_statements(state: State) -> Statements:
    return resources_of(state).statements()


def provide_redis(state: State) -> Redis:
    return resources_of(state).cache()


def provide_settings(state: State) -> Settings:
    return resources_of(state).settings


def shared_dependencies() -> dict[str, Provide]:
    """What every service router provides: the ORM's session factory, a db session per request, the
    one-exchange statements, the redis client, the settings."""
    return {
        "db_sessions": Provide(provide_sessions, sync_to_thread=False),
        "db_session": Provide(provide_session),
        "pg": Provide(provide_statements, sync_to_thread=False),
        "redis": Provide(provide_redis, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
    }
