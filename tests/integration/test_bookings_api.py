"""Bookings through the HTTP API: idempotency, validation, ownership, the outbox row."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jatra.app import create_app
from jatra.bookings.schemas import BookingRequest
from jatra.catalog.cache import SearchCache
from jatra.db.bookings import Booking, OutboxMessage
from jatra.infra import idempotency
from jatra.infra.db import create_engine, session_factory
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.integration.helpers import a_journey, eventually, free_seats, orm_statements, travel_day

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]
RIDER = {"name": "Rahim Uddin", "age": 34, "gender": "male"}


async def a_hold(client: Client, who: Passenger, seats: int = 1) -> dict[str, object]:
    journey = await a_journey(client, "DA", "CGP", days_ahead=4)
    chosen = await free_seats(client, journey, "DA", "CGP", seats)
    body = {"journey_id": journey, "from": "DA", "to": "CGP", "seats": chosen}
    response = await client.post("/api/v1/holds", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    hold: dict[str, object] = response.json()
    return hold


def booking_body(hold: dict[str, object], passengers: int = 1, method: str = "bkash") -> dict[str, object]:
    return {"hold_id": hold["hold_id"], "passengers": [RIDER] * passengers, "payment_method": method}


def digest_of(body: dict[str, object]) -> str:
    """The request hash the service keeps with a key, for a body as the API decodes it."""
    return idempotency.request_hash(msgspec.to_builtins(msgspec.convert(body, BookingRequest)))


async def a_stored_key(
    settings: Settings,
    who: Passenger,
    hold: dict[str, object],
    status: str,
    age: dt.timedelta,
    lasts: dt.timedelta,
    answer: dict[str, object] | None = None,
) -> str:
    """An Idempotency-Key for this hold's booking body, written straight into Postgres as an older version
    or an earlier day left it: ``status``, made ``age`` ago, expiring ``lasts`` from now (negative: past),
    with ``answer`` (a 202's body) if any. Returns the key."""
    key = str(uuid.uuid4())
    row = text(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, created_at, expires_at,"
        " response_status, response_body) VALUES (:u, :k, :d, :status, now() - CAST(:age AS interval),"
        " now() + CAST(:lasts AS interval), :code, CAST(:body AS jsonb))"
    )
    values = {
        "u": who.user_id, "k": key, "d": digest_of(booking_body(hold)), "status": status, "age": age,
        "lasts": lasts, "code": None if answer is None else 202,
        "body": None if answer is None else json.dumps(answer),
    }  # fmt: skip
    engine = create_engine(settings, admin=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(row, values)
    finally:
        await engine.dispose()
    return key


async def test_twenty_identical_requests_make_one_booking(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    hold = await a_hold(client, passenger)
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    responses = await asyncio.gather(
        *(client.post("/api/v1/bookings", json=booking_body(hold), headers=headers) for _ in range(20))
    )
    statuses = Counter(r.status_code for r in responses)
    # those sent while the first ran waited for its transaction (the key's unique index), then replayed
    assert statuses == {202: 20}, statuses
    ids = {r.json()["booking_id"] for r in responses}
    assert len(ids) == 1
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 19
    # After the first finished, the same key replays the same answer.
    again = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    assert again.status_code == 202 and again.json()["booking_id"] in ids
    assert again.headers["idempotent-replayed"] == "true" and again.headers["location"].endswith(ids.pop())
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        count = await session.scalar(
            select(func.count()).where(Booking.hold_id == uuid.UUID(str(hold["hold_id"])))
        )
        booking = await session.scalar(
            select(Booking).where(Booking.hold_id == uuid.UUID(str(hold["hold_id"])))
        )
        assert booking is not None
        messages = await session.scalar(
            select(func.count()).where(
                OutboxMessage.payload["booking_id"].astext == str(booking.id),
                OutboxMessage.routing_key == "payment.requested",
            )
        )
    await engine.dispose()
    assert count == 1 and messages == 1  # one booking, one payment request in the outbox


async def test_same_key_other_body_is_422(client: Client, passenger: Passenger) -> None:
    hold = await a_hold(client, passenger)
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    assert (
        await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    ).status_code == 202
    other = await client.post("/api/v1/bookings", json=booking_body(hold, method="nagad"), headers=headers)
    assert other.status_code == 422 and other.json()["invalid_params"][0]["name"] == "Idempotency-Key"


async def test_a_hold_is_booked_once_even_with_two_keys(client: Client, passenger: Passenger) -> None:
    hold = await a_hold(client, passenger)
    first = await client.post(
        "/api/v1/bookings",
        json=booking_body(hold),
        headers={**passenger.headers, "Idempotency-Key": "a" + uuid.uuid4().hex},
    )
    second = await client.post(
        "/api/v1/bookings",
        json=booking_body(hold),
        headers={**passenger.headers, "Idempotency-Key": "b" + uuid.uuid4().hex},
    )
    assert (first.status_code, second.status_code) == (202, 409)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"passengers": []}, 422, "passengers"),
        ({"passengers": [RIDER, RIDER]}, 422, "passengers"),
        ({"payment_method": "cowrie shells"}, 422, "payment_method"),
        ({"hold_id": str(uuid.uuid4())}, 422, "hold_id"),
        ({"passengers": [{**RIDER, "age": 300}]}, 400, "age"),
        ({"passengers": [{**RIDER, "gender": "?"}]}, 400, "gender"),
    ],
)
async def test_bad_bookings_name_the_field(
    client: Client, passenger: Passenger, change: dict[str, object], status: int, field: str
) -> None:
    hold = await a_hold(client, passenger)
    body = {**booking_body(hold), **change}
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    response = await client.post("/api/v1/bookings", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["detail"]
    # The failed request wrote no key: the corrected request with the same key goes through.
    if status == 422 and field != "hold_id":
        fixed = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        assert fixed.status_code == 202


async def test_missing_idempotency_key_is_refused(client: Client, passenger: Passenger) -> None:
    hold = await a_hold(client, passenger)
    response = await client.post("/api/v1/bookings", json=booking_body(hold), headers=passenger.headers)
    assert response.status_code == 422 and "Idempotency-Key" in response.json()["detail"]


async def test_someone_elses_hold_and_booking_are_not_found(
    client: Client, make_passengers: MakePassengers
) -> None:
    owner, intruder = await make_passengers(2)
    hold = await a_hold(client, owner)
    stolen = await client.post(
        "/api/v1/bookings",
        json=booking_body(hold),
        headers={**intruder.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert stolen.status_code == 422 and "no such hold" in stolen.json()["detail"]
    booked = await client.post(
        "/api/v1/bookings",
        json=booking_body(hold),
        headers={**owner.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    url = f"/api/v1/bookings/{booked.json()['booking_id']}"
    assert (await client.get(url, headers=intruder.headers)).status_code == 404
    mine = await client.get(url, headers=owner.headers)
    assert mine.status_code == 200 and mine.json()["status"] in {
        "PAYMENT_PENDING",
        "PAYMENT_PROCESSING",
        "CONFIRMED",
    }


async def test_list_is_mine_and_paginated(client: Client, passenger: Passenger) -> None:
    made = []
    for _ in range(2):
        hold = await a_hold(client, passenger)
        response = await client.post(
            "/api/v1/bookings",
            json=booking_body(hold),
            headers={**passenger.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        made.append(response.json()["booking_id"])
    first = (await client.get("/api/v1/bookings", params={"limit": 1}, headers=passenger.headers)).json()
    second = (
        await client.get(
            "/api/v1/bookings", params={"limit": 1, "cursor": first["next_cursor"]}, headers=passenger.headers
        )
    ).json()
    listed = [b["booking_id"] for b in first["bookings"] + second["bookings"]]
    assert sorted(listed) == sorted(made) and second["next_cursor"] is None
    # a cursor the API never wrote, whose time has no UTC (it got a 422 naming no field, from the database)
    forged = base64.urlsafe_b64encode(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}".encode()).decode()
    refused = await client.get("/api/v1/bookings", params={"cursor": forged}, headers=passenger.headers)
    assert refused.status_code == 422, refused.text
    assert [p["name"] for p in refused.json()["invalid_params"]] == ["cursor"], refused.text


async def test_an_expired_hold_cannot_be_booked(passenger: Passenger, settings: Settings) -> None:
    short = dataclasses.replace(settings, hold_ttl_s=0.4)
    async with AsyncTestClient(app=create_app(["all"], short)) as client:
        hold = await a_hold(client, passenger)

        async def expired() -> bool:
            url = f"/api/v1/holds/{hold['hold_id']}"
            return bool((await client.get(url, headers=passenger.headers)).json()["status"] == "EXPIRED")

        await eventually(expired, 10, "the hold's TTL")
        response = await client.post(
            "/api/v1/bookings",
            json=booking_body(hold),
            headers={**passenger.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code == 409 and response.json()["type"].endswith("hold-not-bookable")
    assert "expired" in response.json()["detail"]


async def test_the_same_key_while_the_first_request_runs_waits_and_replays(
    jatra_processes_running: Stack, client: Client, passenger: Passenger, settings: Settings
) -> None:
    """Hold the first request inside its transaction (another transaction has an uncommitted booking of
    the same hold, so the unique constraint makes it wait); the retry with the same key waits for the
    first's claim of the key, and once the first has committed it replays the first's answer.

    Both requests go to the stack's API processes over HTTP: the in-process test client runs the app on
    this test's own event loop, which a request waiting in Postgres would hold up, polls and all."""
    hold = await a_hold(client, passenger)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.ports.api}", timeout=60)
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    engine = create_engine(settings, admin=True)
    blocker = await engine.connect()
    held = await blocker.begin()
    await blocker.execute(
        text(
            "INSERT INTO bookings (id, user_id, hold_id, journey_id, seat_ids, from_seq, to_seq, seat_class,"
            " passengers, payment_method, amount, status)"
            " SELECT :id, user_id, id, journey_id, seat_ids, from_seq, to_seq, seat_class, '[]', 'bkash', 0,"
            " 'PAYMENT_PENDING' FROM holds WHERE id = :hold"
        ),
        {"id": uuid.uuid4(), "hold": hold["hold_id"]},
    )

    async def waiting() -> int:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'jatra'"
            " AND pid <> pg_backend_pid()"
            # a booking's statement (the function that claims the key and writes the booking): not a
            # worker's lock wait
            " AND query LIKE '%jatra_accept_booking(%'"
        )
        # asked on a connection of its own, outside the blocker's transaction (pg_stat_activity is read
        # once per transaction)
        async with engine.connect() as watcher:
            return int((await watcher.execute(text(query))).scalar_one())

    post = api.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    first = asyncio.create_task(post)
    second: asyncio.Task[httpx.Response] | None = None
    try:
        # the first waits on the blocker's booking of the hold, its key claimed (uncommitted)
        await eventually(lambda: _at_least(waiting, 1), 30, "the first request waiting on the blocker")
        second = asyncio.create_task(api.post("/api/v1/bookings", json=booking_body(hold), headers=headers))
        # the second waits on the first's claim of the key
        await eventually(lambda: _at_least(waiting, 2), 30, "the retry waiting on the first's key")
        assert not second.done()
    finally:
        await held.rollback()  # the blocker gives way: the first request goes on
        await blocker.close()
        await engine.dispose()
    try:
        done = await first
        assert done.status_code == 202, done.text
        assert "idempotent-replayed" not in done.headers
        again = await second
        assert again.status_code == 202, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == done.json() and again.headers["location"] == done.headers["location"]
    finally:
        await api.aclose()


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def test_a_key_an_older_version_holds_in_flight(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    """An older version committed its claim first (IN_FLIGHT) and the answer later: during a rolling
    deploy such a key is a 409 while fresh, and taken over once abandoned (60 s), as that version did."""
    hold = await a_hold(client, passenger)
    key = await a_stored_key(settings, passenger, hold, "IN_FLIGHT", dt.timedelta(0), dt.timedelta(days=1))
    headers = {**passenger.headers, "Idempotency-Key": key}
    engine = create_engine(settings, admin=True)
    try:
        fresh = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        assert fresh.status_code == 409 and fresh.json()["type"].endswith("request-in-flight"), fresh.text
        older = (
            "UPDATE idempotency_keys SET created_at = now() - interval '61 s' WHERE user_id = :u AND key = :k"
        )
        async with engine.begin() as conn:
            await conn.execute(text(older), {"u": passenger.user_id, "k": key})
        taken = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        assert taken.status_code == 202, taken.text
        assert "idempotent-replayed" not in taken.headers
        replayed = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == taken.json()
    finally:
        await engine.dispose()


async def test_an_expired_key_is_claimed_anew_once_by_concurrent_requests(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    """A key past its 24 h is claimed anew: its old answer is not replayed. Sent five times at once, one
    request deletes the stale key in the transaction that claims it again; the others wait for it and
    replay its answer (none is told the hold is expired or booked)."""
    hold = await a_hold(client, passenger)
    old = {"booking_id": str(uuid.uuid4()), "status": "CONFIRMED", "amount": 1}
    key = await a_stored_key(
        settings, passenger, hold, "DONE", dt.timedelta(hours=25), -dt.timedelta(hours=1), old
    )
    headers = {**passenger.headers, "Idempotency-Key": key}
    answers = await asyncio.gather(
        *(client.post("/api/v1/bookings", json=booking_body(hold), headers=headers) for _ in range(5))
    )
    assert [a.status_code for a in answers] == [202] * 5, [a.text for a in answers]
    assert len({a.json()["booking_id"] for a in answers}) == 1
    assert answers[0].json()["booking_id"] != old["booking_id"]
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 4


async def test_an_expired_key_with_a_hold_that_cannot_be_booked_says_why(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    """Claimed anew, an expired key's booking is refused for its hold's own reason (the stale key stays, as
    its deletion went with the refused transaction), not as a request in flight."""
    hold = await a_hold(client, passenger)
    key = await a_stored_key(
        settings, passenger, hold, "DONE", dt.timedelta(hours=25), -dt.timedelta(hours=1)
    )
    headers = {**passenger.headers, "Idempotency-Key": key}
    assert (
        await client.delete(f"/api/v1/holds/{hold['hold_id']}", headers=passenger.headers)
    ).status_code == 204
    refused = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    assert refused.status_code == 409 and refused.json()["type"].endswith("hold-not-bookable"), refused.text
    assert "released" in refused.json()["detail"]


async def test_an_expired_key_deleted_by_the_retention_meanwhile_is_claimed_anew(
    client: Client, passenger: Passenger, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay's retention deletes expired keys. One it deletes between the booking's claim, which the key
    refused, and the read of the key finds no key and a bookable hold: the booking is claimed anew, not
    refused with "the hold is expired" (as it was before the retention's ninth-stop change). The test
    stack's relay may delete the key before the claim (then the claim takes it, and the path is not
    taken): tried again with a new hold and key, up to three times."""
    read = idempotency.seen
    deleted: list[int] = []

    async def pruned_first(*args: Any) -> Any:
        user_id, key = args[1], args[2]
        engine = create_engine(settings, admin=True)
        forget = "DELETE FROM idempotency_keys WHERE user_id = :u AND key = :k AND expires_at <= now()"
        try:
            async with engine.begin() as conn:
                deleted.append((await conn.execute(text(forget), {"u": user_id, "k": key})).rowcount)
        finally:
            await engine.dispose()
        return await read(*args)

    for _ in range(3):
        hold = await a_hold(client, passenger)
        key = await a_stored_key(
            settings, passenger, hold, "DONE", dt.timedelta(hours=25), -dt.timedelta(hours=1)
        )
        headers = {**passenger.headers, "Idempotency-Key": key}
        monkeypatch.setattr(idempotency, "seen", pruned_first)
        booked = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        monkeypatch.setattr(idempotency, "seen", read)
        assert booked.status_code == 202, booked.text
        if deleted:
            break
    assert deleted == [1]  # the key refused the claim, then went: the path under test was taken
    again = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.json() == booked.json()


async def test_an_idempotency_key_is_kept_24_hours(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    hold = await a_hold(client, passenger)
    key = str(uuid.uuid4())
    headers = {**passenger.headers, "Idempotency-Key": key}
    assert (
        await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    ).status_code == 202
    engine = create_engine(settings, admin=True)
    async with engine.connect() as conn:
        query = "SELECT expires_at - created_at FROM idempotency_keys WHERE user_id = :u AND key = :k"
        kept = (await conn.execute(text(query), {"u": passenger.user_id, "k": key})).scalar_one()
    await engine.dispose()
    assert kept == dt.timedelta(hours=24)


async def test_a_booking_is_accepted_in_one_statement(
    client: Client, passenger: Passenger, spans: InMemorySpanExporter
) -> None:
    """One statement claims the key with its answer and writes the booking and its payment request in the
    outbox (issue 13: it was a claim committed on its own, and before that four statements and an ORM
    object each), through jatra.infra.pg (psycopg), none through the ORM: a call of the function that
    does it."""
    hold = await a_hold(client, passenger)
    spans.clear()
    headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
    response = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
    assert response.status_code == 202, response.text
    finished = spans.get_finished_spans()
    [root] = [s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /api/v1/bookings"]
    statements = [
        s
        for s in finished
        if s.context.trace_id == root.context.trace_id
        and s.attributes
        and s.attributes.get("db.system") == "postgresql"
        and "db.statement" in s.attributes
    ]
    # the statement's span is jatra.infra.pg's own (from its sending to its answer: in pipeline mode the
    # instrumentation's would end before the answer), BEGIN and COMMIT have none, and nothing is the ORM's
    assert {s.instrumentation_scope.name for s in statements} == {"jatra.infra.pg"}
    assert [s.name for s in statements] == ["SELECT jatra_accept_booking"]  # not "SELECT" like any read
    texts = [str((s.attributes or {})["db.statement"]).strip() for s in statements]
    assert len(texts) == 1, texts
    # the function that claims the key and writes the booking and its message (migration 0008), whose plan
    # Postgres keeps per server connection: no statement of its own parsed and planned for each booking
    assert texts[0].split()[:6] == [
        "SELECT",
        "journey_id,",
        "seat_class,",
        "body",
        "FROM",
        "jatra_accept_booking(",
    ]


async def test_the_outcome_is_read_in_one_statement_without_the_orm(
    client: Client, make_passengers: MakePassengers, spans: InMemorySpanExporter
) -> None:
    """The commonest read of the flow (the passenger's one ask for the outcome) is one statement asked in
    one exchange (jatra.infra.pg), not a session and an ORM object; the answer is the same."""
    owner, stranger = await make_passengers(2)
    hold = await a_hold(client, owner, seats=2)
    headers = {**owner.headers, "Idempotency-Key": str(uuid.uuid4())}
    booked = await client.post("/api/v1/bookings", json=booking_body(hold, passengers=2), headers=headers)
    assert booked.status_code == 202, booked.text
    url = f"/api/v1/bookings/{booked.json()['booking_id']}"
    spans.clear()
    with orm_statements() as orm:
        answer = await client.get(url, headers=owner.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["booking_id"] == booked.json()["booking_id"]
    assert body["seats"] == [s["seat_id"] for s in hold["seats"]]  # type: ignore[attr-defined, index]
    assert body["passengers"] == [RIDER, RIDER] and body["payment_method"] == "bkash"
    assert body["amount"] == booked.json()["amount"] and body["status"] in {
        "PAYMENT_PENDING", "PAYMENT_PROCESSING", "CONFIRMED"
    }  # fmt: skip
    assert orm == []
    finished = spans.get_finished_spans()
    [root] = [
        s for s in finished if s.kind == SpanKind.SERVER and s.name == "GET /api/v1/bookings/{booking_id}"
    ]
    statements = [
        s for s in finished if s.context.trace_id == root.context.trace_id and s.kind == SpanKind.CLIENT
        and (s.attributes or {}).get("db.system") == "postgresql"
    ]  # fmt: skip
    assert [s.instrumentation_scope.name for s in statements] == ["opentelemetry.instrumentation.psycopg"]
    assert str((statements[0].attributes or {}).get("db.statement", "")).split()[:4] == [
        "SELECT", "id", "AS", "booking_id,"
    ]  # fmt: skip
    assert (await client.get(url, headers=stranger.headers)).status_code == 404


async def test_the_booking_path_opens_no_orm_session_once_warm(
    client: Client, app: Litestar, passenger: Passenger, redis: Redis, settings: Settings
) -> None:
    """Search, seat map, hold, booking and outcome ask their statements through ``pg``: none opens an ORM
    session (a session per request was 3.5-5 % of an API replica's busy samples). The first request for a
    journey reads its layout through one, once per process; a search not in the cache, through one too."""
    # a fresh cache entry for the day (its TTL runs from the first search that fills it), then the search
    await SearchCache(redis, settings.search_cache_ttl_s).invalidate([travel_day(4)], "test")
    journey = await a_journey(client, "DA", "CGP", days_ahead=4)  # read once, then cached

    async def a_hold_on_it() -> dict[str, object]:
        chosen = await free_seats(client, journey, "DA", "CGP", 1)  # the seat map
        body = {"journey_id": journey, "from": "DA", "to": "CGP", "seats": chosen}
        response = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
        assert response.status_code == 201, response.text
        hold: dict[str, object] = response.json()
        return hold

    await a_hold_on_it()  # warm: the journey's layout, read once per process
    resources = app.state.resources
    real = resources.sessions
    opened: list[str] = []

    class Counting(async_sessionmaker[AsyncSession]):  # Litestar checks a dependency's type
        def __call__(self, **local_kw: Any) -> AsyncSession:
            opened.append(sys._getframe(1).f_globals["__name__"])  # who opens it
            return super().__call__(**local_kw)

    resources.sessions = Counting(**real.kw)
    try:
        assert await a_journey(client, "DA", "CGP", days_ahead=4)
        hold = await a_hold_on_it()
        headers = {**passenger.headers, "Idempotency-Key": str(uuid.uuid4())}
        booked = await client.post("/api/v1/bookings", json=booking_body(hold), headers=headers)
        assert booked.status_code == 202, booked.text
        url = f"/api/v1/bookings/{booked.json()['booking_id']}"
        assert (await client.get(url, headers=passenger.headers)).status_code == 200
        mine = await client.get("/api/v1/bookings", headers=passenger.headers)  # the ORM's: counted
        assert mine.status_code == 200, mine.text
    finally:
        resources.sessions = real
    # the list of bookings only (the dependency health check may run meanwhile: it is not a request)
    assert [m for m in opened if m != "jatra.infra.health"] == ["jatra.bookings.service"]
