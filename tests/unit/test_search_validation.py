from __future__ import annotations

import datetime as dt

import pytest

from jatra.catalog.errors import InvalidSearch
from jatra.catalog.service import parse_search

TODAY = dt.date(2026, 11, 21)


def test_codes_are_normalised() -> None:
    assert parse_search(" da", "cgp ", "2026-11-22", TODAY) == ("DA", "CGP", dt.date(2026, 11, 22))


@pytest.mark.parametrize(
    ("origin", "destination", "date", "field"),
    [
        ("DA", "CGP", "22-11-2026", "date"),
        ("DA", "CGP", "2026-02-30", "date"),
        ("DA", "CGP", "2026-11-20", "date"),
        ("DA", "da", "2026-11-22", "to"),
    ],
)
def test_bad_searches_name_the_field(origin: str, destination: str, date: str, field: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        parse_search(origin, destination, date, TODAY)
    assert caught.value.extensions["invalid_params"][0]["name"] == field
    assert caught.value.status == 422
