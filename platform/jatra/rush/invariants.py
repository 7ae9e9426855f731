"""What must be zero after a rush, checked directly in Postgres, the provider's ledger and Redis."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.infra.db import create_engine, session_factory
from jatra.infra.redis import create_redis
from jatra.rush import redis_invariants
from jatra.settings import Settings

CHECKS = {
    # two sales of one seat on overlapping legs (the exclusion constraint should make this impossible)
    "seats_sold_twice": """
        SELECT count(*) FROM seat_sales a JOIN seat_sales b
          ON a.journey_id = b.journey_id AND a.seat_id = b.seat_id AND a.id < b.id AND a.legs && b.legs""",
    # one hold paid for twice (two bookings of one hold, both captured)
    "payments_captured_twice": """
        SELECT count(*) FROM (
          SELECT b.hold_id FROM bookings b JOIN provider_charges c ON c.idempotency_key = b.id::text
          WHERE c.status = 'CAPTURED' AND b.created_at >= :since GROUP BY b.hold_id HAVING count(*) > 1) x""",
    # a 202 that never reached CONFIRMED, PAYMENT_FAILED or EXPIRED
    "accepted_not_final": """
        SELECT count(*) FROM bookings
        WHERE created_at >= :since AND status IN ('PAYMENT_PENDING', 'PAYMENT_PROCESSING')""",
    # holds still ACTIVE a minute after they expired (the reaper should have ended them)
    "holds_leaked": """
        SELECT count(*) FROM holds
        WHERE created_at >= :since AND status = 'ACTIVE'
          AND expires_at < coalesce(CAST(:at AS timestamptz), now()) - interval '60 seconds'""",
    # money taken without a ticket to show for it
    "captured_without_confirmed": """
        SELECT count(*) FROM provider_charges c JOIN bookings b ON c.idempotency_key = b.id::text
        WHERE b.created_at >= :since AND c.status = 'CAPTURED'
          AND b.status NOT IN ('CONFIRMED', 'CANCELLED', 'REFUNDED')""",
}


async def sql_checks(
    session: AsyncSession, since: dt.datetime, at: dt.datetime | None = None
) -> dict[str, int]:
    """The Postgres and ledger invariants, counted in ``session``: a test can plant faults and roll back.
    ``at`` is the moment the time-bound checks (leaked holds) are judged at, the database's now() if None:
    a restored copy has no reaper, so it is judged at the moment the live database was."""
    return {
        name: int((await session.execute(text(sql), {"since": since, "at": at})).scalar_one())
        for name, sql in CHECKS.items()
    }


async def check(settings: Settings, since: dt.datetime) -> dict[str, int]:
    engine = create_engine(settings, admin=True)
    redis = create_redis(settings)
    try:
        async with session_factory(engine)() as session:
            found = await sql_checks(session, since)
            found["sold_but_free_in_redis"] = await redis_invariants.sold_but_free(session, redis, since)
        found["holds_without_expiry"] = await redis_invariants.holds_without_expiry(redis)
        return found
    finally:
        await redis.aclose()
        await engine.dispose()
