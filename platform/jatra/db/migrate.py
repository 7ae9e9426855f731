"""Run Alembic migrations from code (`jatra migrate`, `jatra up`, the test fixtures)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Upgrade the database; safe to call from inside or outside a running event loop's thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(), revision)
        return
    raise RuntimeError("call upgrade() via asyncio.to_thread from async code")


def revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
