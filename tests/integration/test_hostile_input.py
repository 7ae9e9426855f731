"""Hostile and malformed input gets a clear 4xx problem, never a 500 (issue 8's findings, one test each)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, RequestFactory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from jatra.errors import PROBLEM_JSON, exception_handlers
from jatra.infra.db import create_engine
from jatra.settings import Settings
from tests.fixtures.accounts import MakePassengers, Passenger
from tests.integration.helpers import a_journey, free_seats, travel_day

pytestmark = pytest.mark.integration
Client = AsyncTestClient[Litestar]
TOO_BIG = 9223372036854775808  # 2**63: no 64-bit column holds it
UNSAFE = 2**53  # the first integer a JavaScript client cannot hold exactly: past the API's bound


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def names(body: dict[str, Any]) -> set[str]:
    return {p["name"] for p in body.get("invalid_params", [])}


async def test_ids_beyond_64_bits_are_400_naming_the_field(client: Client, passenger: Passenger) -> None:
    seat_map = await client.get(f"/api/v1/journeys/{TOO_BIG}/seats", params={"from": "DA", "to": "CGP"})
    assert names(problem(seat_map, 400)) == {"journey_id"}
    unsafe = await client.get(f"/api/v1/journeys/{UNSAFE}/seats", params={"from": "DA", "to": "CGP"})
    assert names(problem(unsafe, 400)) == {"journey_id"}
    body = {"journey_id": TOO_BIG, "from": "DA", "to": "CGP", "seats": [1]}
    hold = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
    assert names(problem(hold, 400)) == {"journey_id"}
    seat = {"journey_id": 1, "from": "DA", "to": "CGP", "seats": [2**64]}
    assert names(problem(await client.post("/api/v1/holds", json=seat, headers=passenger.headers), 400)) == {
        "seats[0]"
    }
    admin = await client.get(f"/api/v1/admin/journeys/{TOO_BIG}/holds", headers=passenger.headers)
    assert admin.status_code in {400, 403}


async def test_options_answers_every_method_of_the_path_and_never_500(client: Client) -> None:
    admin = await client.options("/api/v1/admin/journeys/531/holds")
    assert admin.status_code == 204 and admin.headers["allow"] == "GET, OPTIONS"
    assert (await client.options("/api/v1/bookings")).headers["allow"] == "GET, OPTIONS, POST"
    hold = await client.options("/api/v1/holds/0b7c5f2e-0000-4000-8000-000000000000")
    assert hold.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"


async def test_json_nested_a_thousand_deep_is_400(client: Client, passenger: Passenger) -> None:
    deep = "[" * 5000 + "]" * 5000
    for path, raw in (
        ("/api/v1/tickets/verify", '{"qr":' + deep + "}"),
        ("/api/v1/tickets/verify", '{"other":' + deep + ',"qr":"x"}'),
        ("/api/v1/holds", deep),
        ("/api/v1/auth/otp", '{"phone":' + deep + "}"),
    ):
        response = await client.post(
            path, content=raw, headers={**passenger.headers, "content-type": "application/json"}
        )
        problem(response, 400)


async def test_nul_characters_are_refused_before_postgres_sees_them(
    client: Client, passenger: Passenger
) -> None:
    day = travel_day(1).isoformat()
    search = await client.get("/api/v1/journeys", params={"from": "D\x00A", "to": "CGP", "date": day})
    assert names(problem(search, 400)) == {"from"}
    dated = await client.get("/api/v1/journeys", params={"from": "DA", "to": "CGP", "date": "2026\x00"})
    assert names(problem(dated, 400)) == {"date"}
    otp = await client.post("/api/v1/auth/otp", json={"phone": "+88017\x0011111111"})
    assert names(problem(otp, 400)) == {"phone"}
    assert await booking_refused(client, passenger, name="Ra\x00him") == {"passengers[0].name"}
    assert await booking_refused(client, passenger, email="a\x00b@example.com") == {"email"}


async def test_a_trailing_newline_is_refused_as_any_control_character(
    client: Client, passenger: Passenger
) -> None:
    """Python's ``$`` also matches before a final newline (ECMA's does not): "DA\\n", "Rahim\\n" and
    "a@b.c\\n" passed the patterns, and a newline in an e-mail's To header ends its headers."""
    day = travel_day(1).isoformat()
    search = await client.get("/api/v1/journeys", params={"from": "DA\n", "to": "CGP", "date": day})
    assert names(problem(search, 400)) == {"from"}
    assert await booking_refused(client, passenger, name="Rahim\n") == {"passengers[0].name"}
    assert await booking_refused(client, passenger, email="a@b.c\n") == {"email"}


async def booking_refused(
    client: Client, passenger: Passenger, name: str = "Rahim", email: str | None = None
) -> set[str]:
    """The fields a 400 names for a booking with this passenger name and e-mail (of a hold that does not
    exist: the body is refused before the hold is looked for)."""
    booking: dict[str, object] = {
        "hold_id": "0b7c5f2e-0000-4000-8000-000000000000",
        "passengers": [{"name": name, "age": 30, "gender": "male"}],
        "payment_method": "bkash",
    }
    if email is not None:
        booking["email"] = email
    headers = {**passenger.headers, "Idempotency-Key": f"refused-{uuid.uuid4()}"}
    return names(problem(await client.post("/api/v1/bookings", json=booking, headers=headers), 400))


async def test_a_body_that_is_not_utf8_is_400(client: Client, passenger: Passenger) -> None:
    raw = b'{"journey_id": 1, "from": "DA\xff", "to": "CGP", "seats": [1]}'
    response = await client.post(
        "/api/v1/holds", content=raw, headers={**passenger.headers, "content-type": "application/json"}
    )
    assert problem(response, 400)["invalid_params"] == [{"name": "body", "reason": "not valid UTF-8"}]


async def test_types_are_strict_in_bodies(client: Client, make_passengers: MakePassengers) -> None:
    [passenger] = await make_passengers(1)
    journey = await a_journey(client)
    seats = await free_seats(client, journey, "DA", "SYT", 1)
    as_text = {"journey_id": str(journey), "from": "DA", "to": "SYT", "seats": seats}
    refused = await client.post("/api/v1/holds", json=as_text, headers=passenger.headers)
    assert names(problem(refused, 400)) == {"journey_id"}
    unknown = {"journey_id": journey, "from": "DA", "to": "SYT", "seats": seats, "seat": 1}
    assert names(problem(await client.post("/api/v1/holds", json=unknown, headers=passenger.headers), 400))
    booking = {
        "hold_id": "0b7c5f2e-0000-4000-8000-000000000000",
        "passengers": [{"name": "Rahim", "age": "30", "gender": "male"}],
        "payment_method": "bkash",
    }
    aged = await client.post(
        "/api/v1/bookings", json=booking, headers={**passenger.headers, "Idempotency-Key": "age-as-text"}
    )
    assert names(problem(aged, 400)) == {"passengers[0].age"}
    # the same hold, well typed, is taken: nothing above held a seat
    held = await client.post(
        "/api/v1/holds", json={**as_text, "journey_id": journey}, headers=passenger.headers
    )
    assert held.status_code == 201, held.text


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", b'{"qr": "x"}'),
        ("application/x-www-form-urlencoded", b"qr=x"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="qr"\r\n\r\nx\r\n--b--',
        ),
        ("", b'{"qr": "x"}'),
    ],
)
async def test_json_endpoints_refuse_other_media_types_with_415(
    client: Client, content_type: str, raw: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/api/v1/tickets/verify", content=raw, headers=headers)
    problem(response, 415)


async def test_json_with_a_structured_suffix_is_json(client: Client) -> None:
    response = await client.post(
        "/api/v1/tickets/verify", content=b'{"qr": "x"}', headers={"content-type": "application/vnd.x+json"}
    )
    assert response.status_code == 200 and response.json()["valid"] is False


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT", ""])
async def test_only_the_bearer_scheme_carries_a_token(
    client: Client, passenger: Passenger, scheme: str
) -> None:
    response = await client.get("/api/v1/bookings", headers={"Authorization": f"{scheme} {passenger.token}"})
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    lower = await client.get("/api/v1/bookings", headers={"Authorization": f"bearer {passenger.token}"})
    assert lower.status_code == 200


async def test_bodies_over_the_limit_are_413(client: Client) -> None:
    response = await client.post(
        "/api/v1/tickets/verify",
        content=b'{"qr": "' + b"a" * 70_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert "bytes accepted" in problem(response, 413)["detail"]


async def test_a_value_postgres_refuses_is_a_422_if_validation_ever_misses_it(settings: Settings) -> None:
    """The net under input validation: a data exception from Postgres (SQLSTATE class 22) is the client's."""
    engine = create_engine(settings)
    try:
        with pytest.raises(DBAPIError) as refused:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT CAST(:v AS text)"), {"v": "Ra\x00him"})
    finally:
        await engine.dispose()
    request = RequestFactory(app=Litestar(logging_config=None)).get("/api/v1/x")  # keep our logging
    response = exception_handlers()[Exception](request, refused.value)
    assert response.status_code == 422 and response.media_type == PROBLEM_JSON
    assert "Rahim" not in str(response.content) and "Ra\x00him" not in str(response.content)


async def test_whole_floats_are_integers_as_json_schema_says(client: Client, passenger: Passenger) -> None:
    body = {"journey_id": 2.0**31 - 1, "from": "DA", "to": "CGP", "seats": [1.0]}
    response = await client.post("/api/v1/holds", json=body, headers=passenger.headers)
    assert response.status_code == 422 and response.json()["detail"].startswith("journey_id: unknown journey")
    half = await client.post("/api/v1/holds", json={**body, "seats": [1.5]}, headers=passenger.headers)
    assert names(problem(half, 400)) == {"seats[0]"}
