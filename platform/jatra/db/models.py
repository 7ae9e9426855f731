"""Every model module, imported in one place for Alembic and the tests."""

from __future__ import annotations

import importlib

MODULES = ("jatra.db.accounts", "jatra.db.bookings", "jatra.db.catalog", "jatra.db.inventory")


def import_all() -> None:
    for module in MODULES:
        importlib.import_module(module)
