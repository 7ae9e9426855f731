"""The migrations create exactly what the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from jatra.db.base import Base
from jatra.db.models import import_all
from jatra.infra.db import create_engine
from jatra.settings import Settings
from jatra.stack.manager import Stack

pytestmark = pytest.mark.integration


async def test_models_and_migrations_agree(stack: Stack, settings: Settings) -> None:
    import_all()

    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    engine = create_engine(settings, admin=True)
    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    await engine.dispose()
