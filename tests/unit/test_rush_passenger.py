"""The generator reads only what a passenger looks at from the API's answers."""

from __future__ import annotations

import msgspec
import pytest

from jatra.rush.passenger import free_seats, journey_ids


def test_free_seats_are_the_free_ones_in_the_maps_order() -> None:
    seat_map = msgspec.json.encode(
        {
            "journey_id": 7,
            "from": "DA",
            "to": "CGP",
            "seats": [
                {"seat_id": 3, "coach": "KA", "number": 1, "class": "AC_B", "fare": 1407, "status": "free"},
                {"seat_id": 1, "coach": "KA", "number": 2, "class": "AC_B", "fare": 1407, "status": "held"},
                {"seat_id": 2, "coach": "KA", "number": 3, "class": "AC_B", "fare": 1407, "status": "sold"},
                {
                    "seat_id": 9,
                    "coach": "KHA",
                    "number": 1,
                    "class": "S_CHAIR",
                    "fare": 405,
                    "status": "free",
                },
            ],
        }
    )
    assert free_seats(seat_map) == [3, 9]


def test_journey_ids_keep_the_searchs_order() -> None:
    search = msgspec.json.encode(
        {
            "from": "DA",
            "to": "CGP",
            "journeys": [{"journey_id": 12, "train": {"number": 815}}, {"journey_id": 4}],
        }
    )
    assert journey_ids(search) == [12, 4]
    assert journey_ids(b'{"journeys": []}') == []


def test_an_answer_of_another_shape_is_an_error_not_an_empty_trip() -> None:
    with pytest.raises(msgspec.ValidationError):
        free_seats(b'{"seats": [{"seat_id": "A1", "status": "free"}]}')
