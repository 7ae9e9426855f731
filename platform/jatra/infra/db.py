"""The SQLAlchemy async engine and session factory (asyncpg, through PgBouncer by default)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext import asyncio as sa_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jatra.db.models import import_all
from jatra.settings import Settings


def create_engine(
    settings: Settings, *, admin: bool = False, pool_size: int | None = None, name: str | None = None
) -> AsyncEngine:
    """The engine of one process. ``admin`` goes straight to Postgres (migrations, seeding).

    An HTTP process gets ``JATRA_DATABASE_POOL_SIZE`` connections and as many again in overflow, and waits
    at most 5 s for one (then answers 503). A worker passes ``pool_size``: exactly that many, and it waits
    up to 30 s, since a worker queueing for a connection is how its concurrency stays bounded.

    Every model is imported first: a process that only touches bookings still needs the tables its
    foreign keys point at in the mapper registry.

    ``name`` is the process's ``application_name``, the same as its psycopg pool's (``jatra.infra.pg``).
    The client encoding is given in the server's own spelling: asyncpg announces ``'utf-8'``, which
    PgBouncer compares with the server's ``UTF8`` and finds different every time, so it sent a
    ``SET client_encoding`` before every transaction; and two names in one process made it send a
    ``SET application_name`` whenever a server connection passed from one client to the other.
    """
    import_all()
    server_settings = {"client_encoding": "UTF8"}
    if name is not None:
        server_settings["application_name"] = f"jatra-{name}"
    connect_args: dict[str, Any] = {"timeout": 5, "command_timeout": 30, "server_settings": server_settings}
    url = settings.db_admin_url if admin else settings.db_url
    if settings.database_via_pgbouncer and not admin:
        # PgBouncer in transaction mode cannot keep server-side prepared statements across transactions.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    # looked up at call time: tracing patches sqlalchemy.ext.asyncio.create_async_engine when a process
    # starts, after this module was imported, and a name bound at import would miss the statement spans
    return sa_asyncio.create_async_engine(
        url,
        pool_size=pool_size or settings.database_pool_size,
        max_overflow=0 if pool_size else settings.database_pool_size,
        pool_timeout=30 if pool_size else 5,
        pool_pre_ping=False,
        # SQL parameters hold passengers' names, phones and e-mails: never in an error message (or a log)
        hide_parameters=True,
        connect_args=connect_args,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
