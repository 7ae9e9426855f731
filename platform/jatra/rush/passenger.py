"""One passenger's trip through the API: search, seat map (another train's if theirs is full), hold, book,
the outcome, the ticket."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from jatra.rush.http import Answer, Client, TransportError
from jatra.rush.options import ROUTES, Options
from jatra.rush.record import Recorder

FINAL = {"CONFIRMED", "PAYMENT_FAILED", "EXPIRED"}
NAMES = (
    "Rahim Uddin", "Abdul Karim", "Fatema Begum", "Ayesha Siddiqua", "Sadia Islam", "Tanvir Ahmed",
    "Nusrat Jahan", "Rafiqul Islam", "Shirin Akter", "Jamal Hossain",
)  # fmt: skip
#: share of bookings that give a contact e-mail (the e-ticket is mailed to it)
EMAIL_SHARE = 0.5


#: refresh an access token this long before it expires (a trip, polls included, lasts up to ~70 s)
REFRESH_AHEAD_S = 120.0
#: the longest one long poll for a booking's outcome waits (the API's limit)
WAIT_S = 20


@dataclass(slots=True)
class Account:
    phone: str
    token: str
    http: Client  # bound to this passenger's source address
    refresh_token: str = ""
    expires_at: float = float("inf")  # time.monotonic() when the access token expires
    rotating: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def fresh(self) -> None:
        """Rotate the tokens before the access token runs out, as the app does (a run outlasts 15 minutes).
        One rotation at a time per account: presenting a rotated refresh token revokes the login."""
        if time.monotonic() < self.expires_at - REFRESH_AHEAD_S:
            return
        async with self.rotating:
            if time.monotonic() < self.expires_at - REFRESH_AHEAD_S:
                return
            try:
                response = await self.http.post("/auth/refresh", json={"refresh_token": self.refresh_token})
            except TransportError:
                return  # the next trip tries again
            if response.status_code == 200:
                pair = response.json()
                self.token, self.refresh_token = pair["access_token"], pair["refresh_token"]
                self.expires_at = time.monotonic() + pair["expires_in"]


class _Journey(msgspec.Struct):
    journey_id: int


class _Search(msgspec.Struct):
    journeys: list[_Journey]


class _Seat(msgspec.Struct):
    seat_id: int
    status: str


class _SeatMap(msgspec.Struct):
    seats: list[_Seat]


class _Problem(msgspec.Struct):
    type: str = ""


# Typed decoders read only the fields a passenger looks at and skip the rest unbuilt: a seat map is ~80 KB
# of ~900 seats, and decoding it into dicts was the generator's largest single cost (~0.65 ms against ~0.3).
_search = msgspec.json.Decoder(_Search).decode
_seat_map = msgspec.json.Decoder(_SeatMap).decode
_problem = msgspec.json.Decoder(_Problem).decode
#: the 409 of a hold refused because this passenger's account holds all it may on that train
#: (jatra.seats.errors.HoldLimitReached), not because another passenger was first
HOLD_LIMIT = "/hold-limit"


def at_hold_limit(content: bytes) -> bool:
    """Whether a 409's problem document says the account holds all it may on that train."""
    try:
        return _problem(content).type.endswith(HOLD_LIMIT)
    except msgspec.DecodeError:  # not a problem document: taken as seats lost to another passenger
        return False


def journey_ids(content: bytes) -> list[int]:
    """The journeys a search answered, in its order."""
    return [j.journey_id for j in _search(content).journeys]


def free_seats(content: bytes) -> list[int]:
    """The seats a seat map shows free, in its order."""
    return [s.seat_id for s in _seat_map(content).seats if s.status == "free"]


def zipf_pick(rng: random.Random, items: list[Any] | tuple[Any, ...], skew: float) -> Any:
    weights = [1 / (rank + 1) ** skew for rank in range(len(items))]
    return rng.choices(items, weights=weights)[0]


async def timed(rec: Recorder, step: str, call: Any) -> Answer | None:
    t0 = time.perf_counter()
    try:
        response: Answer = await call
    except TransportError as exc:
        rec.failure(step, exc.reason)
        return None
    rec.step(step, response.status_code, time.perf_counter() - t0)
    return response


def travel_day(opts: Options, rng: random.Random, today: dt.date) -> dt.date:
    """A date in the run's window, the nearest most wanted (Zipf, like the routes and trains)."""
    days = list(range(opts.first_day, opts.first_day + opts.days))
    return today + dt.timedelta(days=zipf_pick(rng, days, opts.skew))


async def outcome(who: Account, opts: Options, rec: Recorder, booking_id: str) -> str:
    """The booking's final state, or the last one seen when the drain time ran out. One long poll
    ("outcome" step) per up to 20 s, or ("poll" step) a read every 0.25 s with ``opts.outcome == "poll"``."""
    deadline = time.monotonic() + opts.drain_s
    status = "PAYMENT_PENDING"
    long_poll = opts.outcome == "wait"
    while status not in FINAL and time.monotonic() < deadline:
        if not long_poll:
            await asyncio.sleep(0.25)
        wait = min(WAIT_S, max(1, int(deadline - time.monotonic()))) if long_poll else 0
        answer = await timed(
            rec,
            "outcome" if long_poll else "poll",
            who.http.get(f"/bookings/{booking_id}", params={"wait": wait}, headers=who.auth),
        )
        if answer is not None and answer.status_code == 200:
            status = answer.json()["status"]
        elif long_poll:
            await asyncio.sleep(0.25)  # an error answer: do not ask again at once
    return str(status)


async def find_hold(
    who: Account,
    opts: Options,
    rec: Recorder,
    rng: random.Random,
    journeys: list[int],
    route: tuple[str, str],
) -> tuple[str, int] | None:
    """A hold on one of the trains the search offered, and how many seats it holds; None if the passenger
    leaves without one.

    The most wanted train first (Zipf over the search's order). A train whose seat map shows no free seat
    on the passenger's segment is crossed off and the next most wanted one looked at, and so is one where
    the account already holds all it may (a 409 of type hold-limit: its earlier holds, walked away from,
    have not expired); seats another passenger held first (any other 409) mean a fresh seat map, of that
    train or another. At most ``opts.tries`` seat maps: with 1, a full train or a lost seat ends the trip,
    with the same random draws as every rush before ``tries``."""
    origin, destination = route
    left = list(journeys)
    for attempt in range(opts.tries):
        if not left:
            break
        if attempt:
            rec.looked_again += 1
        journey_id = zipf_pick(rng, left, opts.skew)
        seat_map = await timed(
            rec,
            "seat_map",
            who.http.get(f"/journeys/{journey_id}/seats", params={"from": origin, "to": destination}),
        )
        if seat_map is None or seat_map.status_code != 200:
            return None
        free = free_seats(seat_map.content)
        wanted = min(rng.choices([1, 2, 3, 4], weights=[40, 35, 15, 10])[0], len(free))
        if not wanted:
            left.remove(journey_id)
            continue
        # Everyone wants the first free seats of a popular train: that is where contention comes from.
        seats = rng.sample(free[: max(wanted * 6, 12)], wanted)
        body = {"journey_id": journey_id, "from": origin, "to": destination, "seats": seats}
        hold = await timed(rec, "hold", who.http.post("/holds", json=body, headers=who.auth))
        if hold is None or hold.status_code not in (201, 409):
            return None
        if hold.status_code == 201:
            return str(hold.json()["hold_id"]), wanted
        if at_hold_limit(hold.content):
            left.remove(journey_id)
    rec.left_without_seat += 1
    return None


async def trip(who: Account, opts: Options, rec: Recorder, rng: random.Random, today: dt.date) -> None:
    await who.fresh()
    http = who.http
    origin, destination = zipf_pick(rng, ROUTES, opts.skew)
    day = travel_day(opts, rng, today)
    search = await timed(
        rec,
        "search",
        http.get("/journeys", params={"from": origin, "to": destination, "date": day.isoformat()}),
    )
    if search is None or search.status_code != 200 or not (journeys := journey_ids(search.content)):
        return
    held = await find_hold(who, opts, rec, rng, journeys, (origin, destination))
    if held is None:
        return
    hold_id, count = held
    if rng.random() < opts.abandon:
        rec.abandoned += 1
        return
    names = [rng.choice(NAMES) for _ in range(count)]
    booking_body: dict[str, Any] = {
        "hold_id": hold_id,
        "payment_method": rng.choice(["bkash", "nagad", "card"]),
        "passengers": [
            {"name": name, "age": rng.randint(5, 80), "gender": rng.choice(["male", "female"])}
            for name in names
        ],
    }
    if rng.random() < EMAIL_SHARE:
        booking_body["email"] = f"{names[0].split()[0].lower()}.{rng.randrange(10**6):06d}@example.com"
    headers = {**who.auth, "Idempotency-Key": str(uuid.uuid4())}
    booked = await timed(rec, "book", http.post("/bookings", json=booking_body, headers=headers))
    if booked is None or booked.status_code != 202:
        return
    if rng.random() < opts.retry_same_key:  # a nervous passenger taps "pay" again
        await timed(rec, "book_retry", http.post("/bookings", json=booking_body, headers=headers))
    booking_id = booked.json()["booking_id"]
    rec.accepted.append((rec.now(), booking_id))
    status = await outcome(who, opts, rec, booking_id)
    rec.finals[booking_id] = (rec.now(), status)
    if status == "CONFIRMED":
        await timed(rec, "ticket", http.get(f"/bookings/{booking_id}/ticket.pdf", headers=who.auth))
