"""Seat maps and holds through the HTTP API, against real Postgres and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
import uuid

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from jatra.app import create_app
from jatra.auth.tokens import access_token
from jatra.db.catalog import Journey, TrainStop
from jatra.db.inventory import Hold
from jatra.infra.db import create_engine, session_factory
from jatra.infra.pg import Statements
from jatra.infra.secrets import jwt_secret
from jatra.seats import repository
from jatra.settings import Settings
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.integration.helpers import a_journey, eventually, free_seats, orm_statements
from tests.integration.payflow import unpaid_booking

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


def forge(secret: str, user_id: uuid.UUID, role: str, expires_in: int) -> str:
    """A token in exactly the auth service's format (claims under `extras`), with any expiry."""
    now = int(time.time())
    claims = {
        "sub": str(user_id), "iss": "jatra", "iat": now, "exp": now + expires_in, "jti": uuid.uuid4().hex,
        "extras": {"role": role, "fam": str(uuid.uuid4())},
    }  # fmt: skip
    return jwt.encode(claims, secret, algorithm="HS256")


def hold_body(
    journey: int, seats: list[int], origin: str = "DA", destination: str = "SYT"
) -> dict[str, object]:
    return {"journey_id": journey, "from": origin, "to": destination, "seats": seats}


async def test_hold_all_or_none_and_the_seat_map_follows(
    client: Client, make_passengers: MakePassengers
) -> None:
    alice, bob = await make_passengers(2)
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 3)

    created = await client.post("/api/v1/holds", json=hold_body(journey, seats[:2]), headers=alice.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [s["seat_id"] for s in body["seats"]] == seats[:2] and body["status"] == "ACTIVE"
    assert body["total_fare"] == sum(s["fare"] for s in body["seats"]) > 0

    # Bob asks for one taken seat and one free one: he gets neither, and is told which was taken.
    clash = await client.post(
        "/api/v1/holds", json=hold_body(journey, [seats[1], seats[2]]), headers=bob.headers
    )
    assert clash.status_code == 409
    assert clash.headers["content-type"].startswith("application/problem+json")
    assert clash.json()["seats"] == [seats[1]]
    seat_map = (
        await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
    ).json()
    status = {s["seat_id"]: s["status"] for s in seat_map["seats"]}
    assert status[seats[0]] == status[seats[1]] == "held" and status[seats[2]] == "free"


async def test_one_seat_is_sold_per_segment(client: Client, make_passengers: MakePassengers) -> None:
    alice, bob, carol = await make_passengers(3)
    journey = await a_journey(client, calls_at=("NRS", "BHB", "AKH"))
    [seat] = await free_seats(client, journey, "DA", "SYT", 1)
    first = await client.post(
        "/api/v1/holds", json=hold_body(journey, [seat], "DA", "BHB"), headers=alice.headers
    )
    second = await client.post(
        "/api/v1/holds", json=hold_body(journey, [seat], "BHB", "SYT"), headers=bob.headers
    )
    third = await client.post(
        "/api/v1/holds", json=hold_body(journey, [seat], "NRS", "AKH"), headers=carol.headers
    )
    assert (first.status_code, second.status_code, third.status_code) == (201, 201, 409)
    for segment, expected in [(("DA", "ABR"), "held"), (("BHB", "BBA"), "held"), (("DA", "SYT"), "held")]:
        params = {"from": segment[0], "to": segment[1]}
        seat_map = (await client.get(f"/api/v1/journeys/{journey}/seats", params=params)).json()
        assert next(s for s in seat_map["seats"] if s["seat_id"] == seat)["status"] == expected


async def test_release_frees_the_seats_and_is_idempotent(client: Client, passenger: Passenger) -> None:
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 2)
    hold = (
        await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=passenger.headers)
    ).json()
    assert (
        await client.delete(f"/api/v1/holds/{hold['hold_id']}", headers=passenger.headers)
    ).status_code == 204
    assert (
        await client.delete(f"/api/v1/holds/{hold['hold_id']}", headers=passenger.headers)
    ).status_code == 204
    again = await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=passenger.headers)
    assert again.status_code == 201
    read = await client.get(f"/api/v1/holds/{hold['hold_id']}", headers=passenger.headers)
    assert read.json()["status"] == "RELEASED"


async def test_a_hold_being_paid_for_is_not_released(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    """A booking of the hold waits for its payment: a release would free the seats for another passenger
    while this one's payment is taken (one of them then charged and refunded). Refused with 409, the seats
    still held; the payment decides."""
    engine = create_engine(settings, admin=True)
    try:
        hold, _ = await unpaid_booking(client, passenger, engine)  # PAYMENT_PENDING, no worker takes it
    finally:
        await engine.dispose()
    url = f"/api/v1/holds/{hold.id}"
    refused = await client.delete(url, headers=passenger.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/hold-booked")
    assert (await client.get(url, headers=passenger.headers)).json()["status"] == "ACTIVE"
    taken = await client.post(
        "/api/v1/holds",
        json=hold_body(hold.journey_id, list(hold.seat_ids), "DA", "CGP"),  # as unpaid_booking held them
        headers=passenger.headers,
    )
    assert taken.status_code == 409 and taken.json()["type"].endswith("/seats-taken"), taken.text


async def test_another_passengers_hold_is_not_found(client: Client, make_passengers: MakePassengers) -> None:
    owner, intruder = await make_passengers(2)
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    hold = (await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=owner.headers)).json()
    url = f"/api/v1/holds/{hold['hold_id']}"
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, url, headers=intruder.headers)
        assert response.status_code == 404, method
        assert response.json()["type"].endswith("hold-not-found")
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "ACTIVE"
    unknown = await client.get(f"/api/v1/holds/{uuid.uuid4()}", headers=owner.headers)
    assert unknown.status_code == 404


async def test_account_limits_are_enforced_atomically(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 6)
    first = await client.post("/api/v1/holds", json=hold_body(journey, seats[:3]), headers=passenger.headers)
    assert first.status_code == 201
    too_many = await client.post(
        "/api/v1/holds", json=hold_body(journey, seats[3:5]), headers=passenger.headers
    )
    assert too_many.status_code == 409 and too_many.json()["type"].endswith("hold-limit")
    assert "4 seats" in too_many.json()["detail"]
    second = await client.post(
        "/api/v1/holds", json=hold_body(journey, seats[3:4]), headers=passenger.headers
    )
    assert second.status_code == 201
    # Many concurrent attempts by one account still leave it within its limits.
    other = await a_journey(client, "DA", "CGP")
    more = await free_seats(client, other, "DA", "CGP", 8)
    results = await asyncio.gather(
        *(client.post("/api/v1/holds", json=hold_body(other, [s], "DA", "CGP"), headers=passenger.headers)
          for s in more)
    )  # fmt: skip
    assert sum(r.status_code == 201 for r in results) == settings.hold_max_live


async def test_holds_are_recorded_in_postgres(
    client: Client, passenger: Passenger, settings: Settings
) -> None:
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "BHB", "SYT", 2)
    hold = (
        await client.post(
            "/api/v1/holds", json=hold_body(journey, seats, "BHB", "SYT"), headers=passenger.headers
        )
    ).json()
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        row = (await session.scalars(select(Hold).where(Hold.id == uuid.UUID(hold["hold_id"])))).one()
        stops = (
            await session.scalars(
                select(TrainStop.station_code)
                .join(Journey, Journey.train_number == TrainStop.train_number)
                .where(Journey.id == journey)
                .order_by(TrainStop.seq)
            )
        ).all()
    await engine.dispose()
    assert row.user_id == passenger.user_id and row.seat_ids == seats and row.status == "ACTIVE"
    assert (stops[row.from_seq], stops[row.to_seq]) == ("BHB", "SYT")


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"journey_id": 999_999_999}, 422, "journey_id"),
        ({"seats": [1]}, 422, "seats"),
        ({"from": "SYT", "to": "DA"}, 422, "from"),
        ({"from": "BHB", "to": "BHB"}, 422, "from"),
        ({"from": "CGP"}, 422, "from"),
        ({"to": "RJS"}, 422, "to"),
        ({"seats": "dup"}, 422, "seats"),
        ({"seats": "five"}, 422, "seats"),
        ({"seats": []}, 422, "seats"),
        ({"seats": "not-a-list"}, 400, "seats"),
    ],
)
async def test_bad_hold_requests_name_the_problem(
    client: Client, passenger: Passenger, change: dict[str, object], status: int, field: str
) -> None:
    journey = await a_journey(client, calls_at=("BHB", "SYT"))
    seats = await free_seats(client, journey, "DA", "SYT", 5)
    body = hold_body(journey, seats[:1])
    body.update(change)
    body["seats"] = {"dup": [seats[0], seats[0]], "five": seats, "not-a-list": "12"}.get(
        str(change.get("seats")), body["seats"]
    )
    response = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["detail"]


async def test_tokens_are_required_and_checked(client: Client, passenger: Passenger) -> None:
    body = hold_body(1, [1])
    assert (await client.post("/api/v1/holds", json=body)).status_code == 401
    tampered = passenger.token[:-4] + ("AAAA" if not passenger.token.endswith("AAAA") else "BBBB")
    response = await client.post("/api/v1/holds", json=body, headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_expired_token_is_refused(client: Client, passenger: Passenger, settings: Settings) -> None:
    secret = jwt_secret(settings)
    fresh = forge(secret, passenger.user_id, "passenger", expires_in=60)
    expired = forge(secret, passenger.user_id, "passenger", expires_in=-10)
    ok = await client.post(
        "/api/v1/holds", json=hold_body(1, []), headers={"Authorization": f"Bearer {fresh}"}
    )
    assert ok.status_code == 422  # the same token, but live, is accepted: only the expiry differs
    response = await client.post(
        "/api/v1/holds", json=hold_body(1, [1]), headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401


async def test_extend_is_bounded_and_expiry_frees_seats(
    settings: Settings, make_passengers: MakePassengers
) -> None:
    # An extension moves expiry to min(now + TTL, created + bound). With a bound just past the TTL and a
    # pause longer than the difference, the first extension lands exactly on the bound, however fast or
    # slow the requests are (as long as the hold lives: 3 s, margin enough on a loaded machine)
    short = dataclasses.replace(settings, hold_ttl_s=3, hold_max_total_s=3.3)
    async with AsyncTestClient(app=create_app(["all"], short)) as client:
        alice, bob = await make_passengers(2)
        journey = await a_journey(client)
        seats = await free_seats(client, journey, "DA", "SYT", 1)
        hold = (
            await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=alice.headers)
        ).json()
        url = f"/api/v1/holds/{hold['hold_id']}"
        await asyncio.sleep(0.5)
        extended = await client.patch(url, headers=alice.headers)  # to created + 3.3 s, the bound
        assert extended.status_code == 200
        # as times: an expiry on a whole second is written without a fraction ("...:26Z" sorts after
        # "...:26.100000Z" as text, which failed this once in CI)
        assert dt.datetime.fromisoformat(extended.json()["expires_at"]) > dt.datetime.fromisoformat(
            hold["expires_at"]
        )
        at_limit = await client.patch(url, headers=alice.headers)
        assert at_limit.status_code == 409 and at_limit.json()["type"].endswith("hold-at-limit")
        taken_back: list[int] = []

        async def bob_holds_it() -> bool:  # once past the bounded total, the TTL frees the seat: no job
            answer = await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=bob.headers)
            taken_back.append(answer.status_code)
            return answer.status_code == 201

        await eventually(bob_holds_it, 15, "the seat freed by the hold's TTL")
        assert set(taken_back[:-1]) <= {409}  # until then it was held
        expired = await client.patch(url, headers=alice.headers)
        assert expired.status_code == 409 and expired.json()["type"].endswith("hold-expired")
        assert (await client.get(url, headers=alice.headers)).json()["status"] == "EXPIRED"


async def test_only_admins_see_live_holds(
    client: Client, make_passengers: MakePassengers, settings: Settings
) -> None:
    passenger, staff = await make_passengers(2)
    admin_token = access_token(jwt_secret(settings), staff.user_id, "admin", uuid.uuid4(), 300)
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    hold = (
        await client.post("/api/v1/holds", json=hold_body(journey, seats), headers=passenger.headers)
    ).json()
    url = f"/api/v1/admin/journeys/{journey}/holds"
    assert (await client.get(url, headers=passenger.headers)).status_code == 403
    assert (await client.get(url)).status_code == 401
    listed = await client.get(url, headers={"Authorization": f"Bearer {admin_token}"})
    assert listed.status_code == 200, listed.text
    assert hold["hold_id"] in {h["hold_id"] for h in listed.json()}


async def test_a_hold_whose_record_fails_is_undone_in_redis_and_answered_503(
    settings: Settings, passenger: Passenger
) -> None:
    """Nothing half-done: the hold is taken in Redis first, then recorded in Postgres (one statement
    through jatra.infra.pg); when the record cannot be written, the seats go back and the answer is 503."""
    async with AsyncTestClient(app=create_app(["all"], settings)) as client:
        journey = await a_journey(client)
        seats = await free_seats(client, journey, "DA", "SYT", 2)
        # the record's statements through a pool that is not open: every statement fails at once
        resources = client.app.state.resources
        working, resources.pg = resources.pg, Statements(settings, "test-broken", size=1, timeout_s=1)
        try:
            refused = await client.post(
                "/api/v1/holds", json=hold_body(journey, seats), headers=passenger.headers
            )
        finally:
            resources.pg = working  # closed with the app
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == str(settings.retry_after_s)
        assert refused.json()["dependency"] == "postgres"
        seat_map = await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
        assert {s["status"] for s in seat_map.json()["seats"] if s["seat_id"] in seats} == {"free"}


async def test_a_trains_seats_are_read_once_for_all_its_journeys(client: Client, settings: Settings) -> None:
    """The layout of seats never changes once seeded: the seat maps of one train's journeys on several days
    read its seats from Postgres once in a process, not once per journey."""
    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        first = await session.get(Journey, await a_journey(client, days_ahead=4))
        assert first is not None
        others = (
            await session.scalars(
                select(Journey.id).where(Journey.train_number == first.train_number, Journey.id != first.id)
            )
        ).all()
    await engine.dispose()
    assert len(others) >= 2, "the seeded window runs each train on several days"
    repository._layouts.clear()  # a process that has seen none of them yet
    repository._trains.clear()
    with orm_statements() as statements:
        for journey in (first.id, *others[:2]):
            answer = await client.get(f"/api/v1/journeys/{journey}/seats", params={"from": "DA", "to": "SYT"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["seats"]
    seat_reads = [s for s in statements if "FROM seats" in s]
    assert len(seat_reads) == 1, seat_reads
