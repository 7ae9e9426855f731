"""Entry points of the auth service used by the CLI."""

from __future__ import annotations

from jatra.auth import repository
from jatra.auth.service import normalise_phone
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings


async def set_role(settings: Settings, phone: str, role: str) -> bool:
    engine = create_engine(settings, admin=True)
    try:
        async with session_factory(engine)() as session:
            changed = await repository.set_role(session, normalise_phone(phone), role)
            await session.commit()
            return changed
    finally:
        await engine.dispose()
