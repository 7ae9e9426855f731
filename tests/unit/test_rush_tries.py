"""A rush passenger whose train is full looks at another, as a real one does, within ``tries`` seat maps.

The API here is a scripted stand-in for the generator's own HTTP client (what the passenger decides is
the generator's logic; the real API's answers are covered by tests/integration/test_rush.py)."""

from __future__ import annotations

import random
from typing import Any, cast

import msgspec
import pytest

from jatra.errors import PROBLEM_BASE
from jatra.rush.http import Answer, Client
from jatra.rush.options import Options
from jatra.rush.passenger import Account, find_hold, zipf_pick
from jatra.rush.record import Recorder
from jatra.seats.errors import HoldLimitReached, SeatsTaken

ROUTE = ("DA", "CGP")


#: the problem types of the API's two 409s for a hold, as the seats service names them
SEATS_TAKEN = PROBLEM_BASE + SeatsTaken.slug
HOLD_LIMIT = PROBLEM_BASE + HoldLimitReached.slug


class ScriptedApi:
    """Seat maps from ``free`` (journey -> free seat ids; a number instead of a list: that status code);
    holds answered from ``holds`` in turn (201 when it runs out; a 409 is "seats taken" unless given with
    its problem type); every call recorded as (step, journey), every hold's seats in ``held``."""

    def __init__(
        self, free: dict[int, list[int] | int], holds: list[int | tuple[int, str]] | None = None
    ) -> None:
        self.free = free
        self.holds = list(holds or [])
        self.calls: list[tuple[str, int]] = []
        self.held: list[list[int]] = []

    async def get(self, path: str, **_: Any) -> Answer:
        journey = int(path.split("/")[2])
        self.calls.append(("seat_map", journey))
        free = self.free[journey]
        if isinstance(free, int):
            return Answer(free, b"{}")
        return Answer(200, msgspec.json.encode({"seats": [{"seat_id": s, "status": "free"} for s in free]}))

    async def post(self, path: str, json: dict[str, Any], **_: Any) -> Answer:
        assert path == "/holds"
        self.calls.append(("hold", json["journey_id"]))
        self.held.append(json["seats"])
        answer = self.holds.pop(0) if self.holds else 201
        status, kind = answer if isinstance(answer, tuple) else (answer, SEATS_TAKEN)
        if status == 201:
            return Answer(201, msgspec.json.encode({"hold_id": "h-1"}))
        return Answer(status, msgspec.json.encode({"type": kind, "status": status}))


async def _find(
    api: ScriptedApi, journeys: list[int], tries: int = 3, seed: int = 1
) -> tuple[object, Recorder]:
    who = Account(phone="+8801700000000", token="t", http=cast(Client, api))
    opts = Options(base_url="", provider_url="", tries=tries)
    rec = Recorder()
    held = await find_hold(who, opts, rec, random.Random(seed), journeys, ROUTE)
    return held, rec


async def test_a_full_train_is_crossed_off_and_the_next_one_looked_at() -> None:
    most_looked_at = 0
    for seed in range(10):  # which full train comes first, if any, is the Zipf pick's
        api = ScriptedApi({1: [], 2: [], 3: [30, 31, 32, 33]})
        held, rec = await _find(api, [1, 2, 3], seed=seed)

        assert held is not None and held[0] == "h-1"
        assert held[1] == len(api.held[-1])  # as many seats as the hold asked for: a name each
        maps = [journey for step, journey in api.calls if step == "seat_map"]
        assert maps[-1] == 3 and len(set(maps)) == len(maps)  # a full train is never looked at twice
        assert api.calls[-1] == ("hold", 3)
        assert rec.looked_again == len(maps) - 1 and rec.left_without_seat == 0
        most_looked_at = max(most_looked_at, len(maps))
    assert most_looked_at == 3  # some passenger met both full trains first


async def test_with_every_train_full_the_passenger_leaves_after_the_list_runs_out() -> None:
    api = ScriptedApi({1: [], 2: []})
    held, rec = await _find(api, [1, 2], tries=5)

    assert held is None
    assert sorted(api.calls) == [("seat_map", 1), ("seat_map", 2)]  # never a hold, never a train twice
    assert rec.left_without_seat == 1 and rec.looked_again == 1


async def test_seats_lost_to_another_passenger_mean_a_fresh_look_within_the_tries() -> None:
    api = ScriptedApi({1: [10, 11, 12]}, holds=[409, 409, 409])
    held, rec = await _find(api, [1], tries=3)

    assert held is None
    assert api.calls == [("seat_map", 1), ("hold", 1)] * 3  # the same train, looked at afresh each time
    assert rec.looked_again == 2 and rec.left_without_seat == 1
    assert dict(rec.outcomes["hold"]) == {"conflict": 3}


async def test_one_try_leaves_at_the_first_full_train_as_rushes_did_before() -> None:
    left = 0
    for seed in range(20):  # the first pick is the full train for some seeds, the free one for others
        api = ScriptedApi({1: [], 2: [20]})
        held, rec = await _find(api, [1, 2], tries=1, seed=seed)
        if held is None:
            left += 1
            assert api.calls == [("seat_map", 1)] and rec.left_without_seat == 1
        else:
            assert api.calls == [("seat_map", 2), ("hold", 2)]
        assert rec.looked_again == 0
    assert 0 < left < 20


async def test_an_error_answer_ends_the_trip_and_is_not_counted_as_no_seat() -> None:
    api = ScriptedApi({1: [10, 11]}, holds=[503])
    held, rec = await _find(api, [1], tries=3)

    assert held is None
    assert api.calls == [("seat_map", 1), ("hold", 1)]
    assert rec.left_without_seat == 0 and dict(rec.outcomes["hold"]) == {"unavailable": 1}


async def test_a_train_where_the_account_holds_all_it_may_is_crossed_off() -> None:
    for seed in range(10):  # a seed whose first pick is train 1
        api = ScriptedApi({1: [10, 11], 2: [20, 21]}, holds=[(409, HOLD_LIMIT)])
        held, rec = await _find(api, [1, 2], seed=seed)
        if api.calls[0] == ("seat_map", 1):
            break
    assert api.calls == [("seat_map", 1), ("hold", 1), ("seat_map", 2), ("hold", 2)]
    assert held is not None and rec.looked_again == 1


async def test_an_error_seat_map_on_a_second_look_ends_the_trip_without_counting_no_seat() -> None:
    for seed in range(10):  # a seed whose first pick is the full train
        api = ScriptedApi({1: [], 2: 503})
        held, rec = await _find(api, [1, 2], tries=3, seed=seed)
        if api.calls[0] == ("seat_map", 1):
            break
    assert held is None and api.calls == [("seat_map", 1), ("seat_map", 2)]
    assert rec.left_without_seat == 0 and rec.looked_again == 1


async def test_one_try_draws_what_a_trip_drew_before_tries() -> None:
    """The same random draws as the code before ``tries`` (a890a90^): the pick, the count, the seats."""
    for seed in range(5):
        api = ScriptedApi({1: [10, 11, 12, 13, 14], 2: [20, 21, 22]})
        rng = random.Random(seed)
        who = Account(phone="+8801700000000", token="t", http=cast(Client, api))
        held = await find_hold(who, Options("", "", tries=1), Recorder(), rng, [1, 2], ROUTE)

        before = random.Random(seed)
        journey = zipf_pick(before, [1, 2], Options("", "").skew)
        free = [10, 11, 12, 13, 14] if journey == 1 else [20, 21, 22]
        wanted = min(before.choices([1, 2, 3, 4], weights=[40, 35, 15, 10])[0], len(free))
        seats = before.sample(free[: max(wanted * 6, 12)], wanted)
        assert api.held == [seats] and held == ("h-1", wanted)
        assert rng.getstate() == before.getstate()


def test_no_seat_map_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Options("", "", tries=0)
