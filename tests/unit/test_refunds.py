from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jatra.domain.refunds import TooLateToCancel, refund

DEPARTS = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("hours_before", "expected"),
    [(72, 900), (48, 900), (47.9, 750), (24, 750), (23, 500), (6, 500), (5, 0), (0, 0)],
)
def test_fee_by_time_left(hours_before: float, expected: int) -> None:
    assert refund(1000, DEPARTS, DEPARTS - dt.timedelta(hours=hours_before)) == expected


def test_no_cancellation_after_departure() -> None:
    with pytest.raises(TooLateToCancel):
        refund(1000, DEPARTS, DEPARTS + dt.timedelta(minutes=1))


@given(st.integers(0, 100_000), st.floats(0, 200), st.floats(0, 200))
def test_earlier_never_refunds_less(amount: int, a: float, b: float) -> None:
    early, late = max(a, b), min(a, b)
    got_early = refund(amount, DEPARTS, DEPARTS - dt.timedelta(hours=early))
    got_late = refund(amount, DEPARTS, DEPARTS - dt.timedelta(hours=late))
    assert 0 <= got_late <= got_early <= amount
