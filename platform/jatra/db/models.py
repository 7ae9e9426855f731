"""Every model module, imported in one place for Alembic and the tests."""

from __future__ import annotations


def import_all() -> None:
    import jatra.db.catalog  # noqa: F401, PLC0415
