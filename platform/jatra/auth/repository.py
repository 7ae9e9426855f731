"""Account and refresh-token queries."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.accounts import RefreshToken, User


async def upsert_user(session: AsyncSession, phone: str) -> tuple[uuid.UUID, str]:
    stmt = (
        insert(User)
        .values(id=uuid.uuid4(), phone=phone)
        .on_conflict_do_update(index_elements=[User.phone], set_={"phone": phone})
        .returning(User.id, User.role)
    )
    row = (await session.execute(stmt)).one()
    return row.id, row.role


async def set_role(session: AsyncSession, phone: str, role: str) -> bool:
    result = await session.execute(
        update(User).where(User.phone == phone).values(role=role).returning(User.id)
    )
    return result.first() is not None


async def add_refresh(
    session: AsyncSession, user_id: uuid.UUID, family: uuid.UUID, token_hash: str, expires_at: dt.datetime
) -> None:
    session.add(RefreshToken(user_id=user_id, family_id=family, token_hash=token_hash, expires_at=expires_at))


async def refresh_for_update(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    return (await session.scalars(stmt)).first()


async def role_of(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    role: str | None = await session.scalar(select(User.role).where(User.id == user_id))
    return role


async def revoke_family(session: AsyncSession, family: uuid.UUID, now: dt.datetime) -> None:
    await session.execute(
        update(RefreshToken)
        # the live ones: an expired token refreshes nothing, and the retention's deletes (of tokens long
        # expired) never wait on this statement's row locks, nor it on theirs
        .where(
            RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now
        )
        .values(revoked_at=now)
    )
