from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jatra.inventory.fares import FareRule

SHOVAN_CHAIR = FareRule("S_CHAIR", Decimal("1.27"), 45, 0)
AC_SEAT = FareRule("AC_S", Decimal("2.53"), 90, 15)


def test_known_fares() -> None:
    assert SHOVAN_CHAIR.fare(321) == 408  # 1.27 * 321 = 407.67, rounded up
    assert SHOVAN_CHAIR.fare(10) == 45  # the minimum fare
    assert AC_SEAT.fare(321) == 934  # 812.13 + 15 % VAT = 933.95, rounded up


def test_distance_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SHOVAN_CHAIR.fare(0)


@given(st.integers(1, 2000), st.integers(1, 2000))
def test_fare_never_falls_with_distance(a: int, b: int) -> None:
    near, far = sorted((a, b))
    assert AC_SEAT.fare(near) <= AC_SEAT.fare(far)
    assert AC_SEAT.fare(near) >= 90
