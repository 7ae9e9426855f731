"""Settling a paid booking in one statement per step (issue 13): starting the charge and confirming write
what the step-by-step ORM path wrote (the sale, the booking, the hold, the event in the outbox), make the
same transitions, and leave a booking that is final alone. Against the real Postgres (through PgBouncer,
as the payment worker runs) and Redis.

The booking's payment request goes where no worker consumes it (payflow.unpaid_booking), so a payment
worker running in the same test session never pays it first."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from psycopg import pq
from redis.asyncio import Redis
from sqlalchemy import event, func, select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from jatra.db.bookings import Booking, OutboxMessage
from jatra.db.inventory import Hold, SeatSale
from jatra.infra.db import create_engine, session_factory
from jatra.infra.pg import Statements
from jatra.inventory.holds import HoldStore
from jatra.payments import settle
from jatra.settings import Settings
from tests.fixtures.accounts import Passenger
from tests.integration.payflow import unpaid_booking

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


@pytest.fixture(params=[True, False], ids=["through-pgbouncer", "direct"])
def where(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The payment worker's settings: through PgBouncer (the default), or straight to Postgres."""
    return dataclasses.replace(settings, database_via_pgbouncer=request.param)


@pytest.fixture
async def engine(where: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(where, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg(where: Settings) -> AsyncIterator[Statements]:
    """The payment worker's one-exchange statements, on one connection (so a trace sees them all)."""
    pg = Statements(where, "test-settle", size=1, timeout_s=5)
    await pg.open()
    yield pg
    await pg.close()


@contextlib.asynccontextmanager
async def protocol_of(pg: Statements, path: Path) -> AsyncIterator[list[str]]:
    """The messages the client sent on the pool's connection meanwhile, by type (libpq's own trace)."""
    sent: list[str] = []
    async with pg.pool.connection() as conn:
        out = path.open("w")
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
    try:
        yield sent
    finally:
        async with pg.pool.connection() as conn:
            conn.pgconn.untrace()
        out.close()
        sent.extend(_frontend_messages(path))


def _frontend_messages(path: Path) -> list[str]:
    fields = (line.split("\t") for line in path.read_text().splitlines())
    return [f[2].strip() for f in fields if len(f) > 2 and f[0] == "F"]


def statements_of(engine: AsyncEngine) -> list[str]:
    """Each statement the engine (the ORM's way) runs meanwhile, by its first word."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split(maxsplit=1)[0])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    return seen


def moves(frm: str, to: str) -> float:
    return (
        REGISTRY.get_sample_value("jatra_bookings_transitions_total", {"from_state": frm, "to_state": to})
        or 0.0
    )


@contextlib.contextmanager
def commands_of(redis: Redis) -> Iterator[list[str]]:
    """The commands this client sends to Redis meanwhile, by name (a Lua script's EVALSHA included)."""
    sent: list[str] = []
    real = redis.execute_command

    async def recording(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await real(*args, **options)

    redis.execute_command = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del redis.execute_command


async def booking_of(engine: AsyncEngine, hold: Hold) -> Booking:
    async with session_factory(engine)() as session:
        booking = await session.scalar(select(Booking).where(Booking.hold_id == hold.id))
    assert booking is not None
    return booking


async def test_a_paid_booking_settles_in_one_statement_per_step(
    client: Client, passenger: Passenger, engine: AsyncEngine, pg: Statements, redis: Redis, tmp_path: Path
) -> None:
    hold, booking_id = await unpaid_booking(client, passenger, engine, seats=2)
    before = (moves("PAYMENT_PENDING", "PAYMENT_PROCESSING"), moves("PAYMENT_PROCESSING", "CONFIRMED"))
    orm = statements_of(engine)
    sessions = session_factory(engine)

    async with protocol_of(pg, tmp_path / "libpq.trace") as sent:
        charging = await settle.start_processing(pg, booking_id)
        assert charging is not None
        assert (charging.id, charging.amount, charging.payment_method, charging.was) == (
            booking_id, hold.total_fare, "bkash", "PAYMENT_PENDING"
        )  # fmt: skip
        opened: list[AsyncSession] = []

        def counted() -> AsyncSession:  # the sessions the confirmation opens: none on this path
            opened.append(session := sessions())
            return session

        with commands_of(redis) as commands:
            assert await settle.confirm(counted, pg, HoldStore(redis), booking_id)  # type: ignore[arg-type]
        assert opened == []
    # in Redis, the hold's seats sold by one script and the long polls woken: the owner of the hold, which
    # names the account's key, comes with the confirmation's row, not from a read of the hold first
    assert [c for c in commands if c != "EVAL"] == ["EVALSHA", "PUBLISH"]  # EVAL: the script not loaded yet
    live = await redis.zrange(HoldStore(redis).account_key(hold.journey_id, hold.user_id), 0, -1)
    assert not [e for e in live if (e.decode() if isinstance(e, bytes) else e).startswith(hold.id.hex)]
    # each one exchange, in autocommit: Parse, Bind, Describe, Execute and one Sync; no BEGIN or COMMIT
    # (a simple Query), nothing else through the ORM; the same through PgBouncer and straight to Postgres
    assert sent == ["Parse", "Bind", "Describe", "Execute", "Sync"] * 2
    assert orm == []
    assert (moves("PAYMENT_PENDING", "PAYMENT_PROCESSING"), moves("PAYMENT_PROCESSING", "CONFIRMED")) == (
        before[0] + 1, before[1] + 1
    )  # fmt: skip

    booking = await booking_of(engine, hold)
    assert booking.status == "CONFIRMED" and booking.ticket_number == settle.ticket_number(booking_id)
    async with sessions() as session:
        sold = await session.scalars(select(SeatSale.seat_id).where(SeatSale.booking_id == booking_id))
        assert sorted(sold) == sorted(hold.seat_ids)
        assert await session.scalar(select(Hold.status).where(Hold.id == hold.id)) == "CONVERTED"
        [message] = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.routing_key == "booking.confirmed",
                OutboxMessage.payload["booking_id"].astext == str(booking_id),
            )
        )
    assert message.exchange == "jatra.events"
    assert message.payload == {  # what the ORM path's event held
        "booking_id": str(booking_id), "status": "CONFIRMED", "ticket_number": booking.ticket_number,
        "reason": None, "user_id": str(booking.user_id),
    }  # fmt: skip

    # a redelivery: nothing more is written, and the answer stays "confirmed"
    assert await settle.start_processing(pg, booking_id) is None
    assert await settle.confirm(sessions, pg, HoldStore(redis), booking_id)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(SeatSale.booking_id == booking_id)) == 2
        events = select(func.count()).where(OutboxMessage.payload["booking_id"].astext == str(booking_id))
        assert await session.scalar(events) == 2  # the test's payment request and one confirmation


async def refund_requests(engine: AsyncEngine, booking_id: uuid.UUID) -> int:
    async with session_factory(engine)() as session:
        found = await session.scalar(
            select(func.count()).where(
                OutboxMessage.routing_key == "refund.requested",
                OutboxMessage.payload["booking_id"].astext == str(booking_id),
            )
        )
    return int(found or 0)


async def test_a_capture_after_the_booking_ended_is_refused_sells_nothing_and_requests_its_refund(
    client: Client, passenger: Passenger, engine: AsyncEngine, pg: Statements, redis: Redis
) -> None:
    hold, booking_id = await unpaid_booking(client, passenger, engine)
    store = HoldStore(redis)
    async with session_factory(engine)() as session:
        with commands_of(redis) as commands:
            await settle.fail(store, session=session, booking_id=booking_id, reason="payment declined")
    # the hold released by one script, its owner from the booking (no read of the hold first), polls woken
    assert [c for c in commands if c != "EVAL"] == ["EVALSHA", "PUBLISH"]
    ended = await redis.hget(store.hold_key(hold.journey_id, hold.id), "ended")  # its tombstone
    assert (ended.decode() if isinstance(ended, bytes) else ended) == "release"
    live = await redis.zrange(store.account_key(hold.journey_id, hold.user_id), 0, -1)
    assert not [e for e in live if (e.decode() if isinstance(e, bytes) else e).startswith(hold.id.hex)]
    assert await refund_requests(engine, booking_id) == 0
    assert not await settle.confirm(session_factory(engine), pg, store, booking_id)
    booking = await booking_of(engine, hold)
    assert booking.status == "PAYMENT_FAILED" and booking.ticket_number is None
    async with session_factory(engine)() as session:
        assert await session.scalar(select(func.count()).where(SeatSale.booking_id == booking_id)) == 0
    # the money goes back through the outbox (durable), not through a call a crash could lose
    assert await refund_requests(engine, booking_id) == 1


async def test_a_seat_sold_meanwhile_fails_the_booking_through_the_careful_path(
    client: Client, passenger: Passenger, engine: AsyncEngine, pg: Statements, redis: Redis
) -> None:
    hold, _ = await unpaid_booking(client, passenger, engine)
    booking = await booking_of(engine, hold)
    async with session_factory(engine)() as session, session.begin():
        session.add(SeatSale(journey_id=hold.journey_id, seat_id=hold.seat_ids[0],
                             legs=_legs(booking), booking_id=None))  # fmt: skip
    assert not await settle.confirm(session_factory(engine), pg, HoldStore(redis), booking.id)
    after = await booking_of(engine, hold)
    assert after.status == "PAYMENT_FAILED" and "sold to someone else" in (after.reason or "")
    assert await refund_requests(engine, booking.id) == 1  # written with the failure, in one transaction
    assert after.ticket_number is None


def _legs(booking: Booking) -> Range[int]:
    return Range(booking.from_seq, booking.to_seq, bounds="[)")
