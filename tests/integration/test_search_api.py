"""Journey search and stations against real Postgres and Redis."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text

from jatra.catalog import repository as catalog_repository
from jatra.catalog.cache import SearchCache
from jatra.catalog.repository import forget_static
from jatra.infra.db import create_engine, session_factory
from jatra.infra.resources import open_resources
from jatra.inventory.holds import HoldStore
from jatra.inventory.sales import record_sale
from jatra.inventory.segments import Segment
from jatra.seats.reaper import sync_sold_legs
from jatra.settings import Settings
from tests.fixtures.accounts import Passenger
from tests.integration.helpers import a_journey, free_seats, orm_statements, sample, travel_day

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]


async def test_stations_are_listed(client: Client) -> None:
    response = await client.get("/api/v1/stations")
    assert response.status_code == 200
    codes = {s["code"] for s in response.json()}
    assert {"DA", "CGP", "SYT"} <= codes and len(codes) >= 50


async def test_search_returns_journeys_with_times_and_classes(client: Client) -> None:
    day = travel_day(2)
    response = await client.get(
        "/api/v1/journeys", params={"from": "DA", "to": "CGP", "date": day.isoformat()}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == "DA" and body["to"] == "CGP" and body["date"] == day.isoformat()
    names = {j["train"]["name"] for j in body["journeys"]}
    assert "Mahanagar Provati" in names  # runs every day
    for journey in body["journeys"]:
        departs = dt.datetime.fromisoformat(journey["departs_at"])
        arrives = dt.datetime.fromisoformat(journey["arrives_at"])
        assert departs.date() == day and arrives > departs
        assert journey["distance_km"] == 321
        assert journey["classes"] and all(
            c["fare"] > 0 and c["seats_available"] > 0 for c in journey["classes"]
        )
    departures = [j["departs_at"] for j in body["journeys"]]
    assert departures == sorted(departures)


async def test_an_intermediate_segment_is_found_with_its_own_fare(client: Client) -> None:
    day = travel_day(3).isoformat()
    whole = (await client.get("/api/v1/journeys", params={"from": "DA", "to": "SYT", "date": day})).json()
    part = (await client.get("/api/v1/journeys", params={"from": "BHB", "to": "SYT", "date": day})).json()
    assert part["journeys"], "Dhaka-Sylhet trains call at Bhairab Bazar"
    for segment in part["journeys"]:
        full = next(j for j in whole["journeys"] if j["journey_id"] == segment["journey_id"])
        assert segment["distance_km"] < full["distance_km"]
        assert segment["departs_at"] > full["departs_at"] and segment["arrives_at"] == full["arrives_at"]
        fare = {c["class"]: c["fare"] for c in full["classes"]}
        assert all(c["fare"] < fare[c["class"]] for c in segment["classes"])


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "DA", "to": "XYZ"}, 422, "to"),
        ({"from": "QQ", "to": "CGP"}, 422, "from"),
        ({"from": "DA", "to": "DA"}, 422, "to"),
        ({"from": "DA", "to": "CGP", "date": "2020-01-01"}, 422, "date"),
        ({"from": "DA", "to": "CGP", "date": "next friday"}, 422, "date"),
        ({"from": "DA", "date": "2030-01-01"}, 400, "to"),
    ],
)
async def test_bad_input_gets_problem_json_naming_the_field(
    client: Client, params: dict[str, str], status: int, field: str
) -> None:
    params = {"date": travel_day(1).isoformat(), **params}
    response = await client.get("/api/v1/journeys", params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["type"].startswith("https://") and problem["title"]
    assert field in problem["detail"]


async def test_unknown_route_is_problem_json(client: Client) -> None:
    response = await client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_second_search_is_a_cache_hit_until_invalidated(
    client: Client, settings: Settings, redis: Redis
) -> None:
    day = travel_day(4)
    params = {"from": "DA", "to": "RJS", "date": day.isoformat()}
    await SearchCache(redis, 60).invalidate([day], "test")

    async def lookups(result: str) -> float:
        text = (await client.get("/metrics")).text
        return sample(text, "jatra_catalog_search_cache_lookups_total", result=result)

    hits, misses = await lookups("hit"), await lookups("miss")
    first = await client.get("/api/v1/journeys", params=params)
    second = await client.get("/api/v1/journeys", params=params)
    assert first.content == second.content
    assert await lookups("miss") == misses + 1
    assert await lookups("hit") == hits + 1
    await SearchCache(redis, settings.search_cache_ttl_s).invalidate([day], "test")
    await client.get("/api/v1/journeys", params=params)
    assert await lookups("miss") == misses + 2


async def test_a_search_not_cached_reads_the_stations_and_fares_once_a_while(
    client: Client, redis: Redis
) -> None:
    """A search not in the cache asks its one statement; the stations and the fare rules, which change only
    when the catalogue is seeded again, come from the process's copy (the first read fills it)."""
    day = travel_day(5)
    params = {"from": "DA", "to": "CGP", "date": day.isoformat()}
    forget_static()
    asked = []
    for _ in range(2):
        await SearchCache(redis, 60).invalidate([day], "test")
        with orm_statements() as seen:
            response = await client.get("/api/v1/journeys", params=params)
        assert response.status_code == 200 and response.json()["journeys"]
        # not the pool's or the health check's liveness probe
        asked.append([" ".join(sql.split())[:40] for sql in seen if sql.strip() != "SELECT 1"])
    assert len(asked[0]) == 3 and any("seat_classes" in sql for sql in asked[0])  # the first fills it
    assert len(asked[1]) == 1 and asked[1][0].startswith("WITH legs AS")
    unknown = await client.get("/api/v1/journeys", params={**params, "to": "ZZZ"})
    assert unknown.status_code == 422 and unknown.json()["invalid_params"][0]["name"] == "to"
    # a seeding may add a class (it changes none): a copy without one a search finds is read again
    catalog_repository._rules = (time.monotonic(), {})
    await SearchCache(redis, 60).invalidate([day], "test")
    with orm_statements() as seen:
        response = await client.get("/api/v1/journeys", params=params)
    assert response.status_code == 200 and response.json()["journeys"]
    assert any("seat_classes" in sql for sql in seen)


async def test_seats_sold_on_overlapping_legs_are_not_available(
    client: Client, redis: Redis, settings: Settings
) -> None:
    day = travel_day(3)
    params = {"date": day.isoformat()}

    async def available(origin: str, destination: str, journey_id: int) -> dict[str, int]:
        await SearchCache(redis, 60).invalidate([day], "test")
        body = (
            await client.get("/api/v1/journeys", params={**params, "from": origin, "to": destination})
        ).json()
        journey = next(j for j in body["journeys"] if j["journey_id"] == journey_id)
        return {c["class"]: c["seats_available"] for c in journey["classes"]}

    journey_id = await a_journey(client, "DA", "SYT", days_ahead=3, calls_at=("BHB", "SYT"))
    [seat] = await free_seats(client, journey_id, "DA", "BHB", 1)
    seat_map = (
        await client.get(f"/api/v1/journeys/{journey_id}/seats", params={"from": "DA", "to": "SYT"})
    ).json()
    seat_class = next(s["class"] for s in seat_map["seats"] if s["seat_id"] == seat)
    before_da_bhb, before_bhb_syt = (
        await available("DA", "BHB", journey_id),
        await available("BHB", "SYT", journey_id),
    )

    engine = create_engine(settings, admin=True)
    async with session_factory(engine)() as session:
        stops = (await session.execute(text(
            "SELECT s.station_code FROM train_stops s JOIN journeys j ON j.train_number = s.train_number "
            "WHERE j.id = :j ORDER BY s.seq"), {"j": journey_id})).scalars().all()  # fmt: skip
        await record_sale(session, journey_id, [seat], Segment(0, stops.index("BHB")), None)
        await session.commit()
    await engine.dispose()
    async with open_resources(settings, "test", {"db", "redis"}) as res:
        await sync_sold_legs(res, HoldStore(res.cache()))  # as the reaper would: Redis learns of the sale

    assert (await available("DA", "BHB", journey_id))[seat_class] == before_da_bhb[seat_class] - 1
    assert (await available("BHB", "SYT", journey_id))[seat_class] == before_bhb_syt[seat_class]


async def test_held_seats_still_count_as_available_in_search(
    client: Client, redis: Redis, passenger: Passenger
) -> None:
    """As the README says: a hold may yet be released, so search counts held seats as available; the
    seat map shows them held."""
    day = travel_day(3)
    journey_id = await a_journey(client, "DA", "SYT", days_ahead=3)
    [seat] = await free_seats(client, journey_id, "DA", "SYT", 1)

    async def available() -> dict[str, int]:
        await SearchCache(redis, 60).invalidate([day], "test")
        params = {"from": "DA", "to": "SYT", "date": day.isoformat()}
        body = (await client.get("/api/v1/journeys", params=params)).json()
        journey = next(j for j in body["journeys"] if j["journey_id"] == journey_id)
        return {c["class"]: c["seats_available"] for c in journey["classes"]}

    before = await available()
    body = {"journey_id": journey_id, "from": "DA", "to": "SYT", "seats": [seat]}
    held = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
    assert held.status_code == 201
    assert await available() == before
    seat_map = (
        await client.get(f"/api/v1/journeys/{journey_id}/seats", params={"from": "DA", "to": "SYT"})
    ).json()
    assert next(s["status"] for s in seat_map["seats"] if s["seat_id"] == seat) == "held"
