"""Account and refresh-token queries."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.db.accounts import RefreshFamily, RefreshToken, User


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
    """A token of ``family``: the family made at a login, its expiry moved to this token's at a rotation."""
    family_row = insert(RefreshFamily).values(id=family, user_id=user_id, expires_at=expires_at)
    await session.execute(
        family_row.on_conflict_do_update(
            index_elements=[RefreshFamily.id],
            set_={"expires_at": func.greatest(RefreshFamily.expires_at, family_row.excluded.expires_at)},
        )
    )
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
        .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
