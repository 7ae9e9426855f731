"""Run Alembic migrations from code (`jatra migrate`, `jatra up`, the test fixtures)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Upgrade the database. The Alembic env runs its own event loop, so inside a running loop (an async
    caller) it runs in a worker thread instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(), revision)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(command.upgrade, alembic_config(), revision).result()


def revision(message: str) -> None:
    command.revision(alembic_config(), message=message, autogenerate=True)
