from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from jatra.domain.booking_states import BookingStatus, IllegalTransition, transition

S = BookingStatus
#: the design's state machine, written down here independently of the code's table: a transition the code
#: allows and this list does not (or the other way round) fails one of the tests below
ALLOWED = {
    (S.PAYMENT_PENDING, S.PAYMENT_PROCESSING),
    (S.PAYMENT_PROCESSING, S.CONFIRMED),
    (S.PAYMENT_PROCESSING, S.PAYMENT_FAILED),
    (S.PAYMENT_PROCESSING, S.EXPIRED),
    (S.CONFIRMED, S.CANCELLED),
    (S.CANCELLED, S.REFUNDED),
}


@dataclass
class FakeBooking:
    id: str
    status: str
    reason: str | None = None


def test_the_happy_and_unhappy_paths_are_allowed() -> None:
    for path in [
        [S.PAYMENT_PROCESSING, S.CONFIRMED, S.CANCELLED, S.REFUNDED],
        [S.PAYMENT_PROCESSING, S.PAYMENT_FAILED],
        [S.PAYMENT_PROCESSING, S.EXPIRED],
    ]:
        booking = FakeBooking("b", S.PAYMENT_PENDING.value)
        for step in path:
            transition(booking, step)
        assert booking.status == path[-1].value


@pytest.mark.parametrize(("current", "wanted"), sorted(ALLOWED))
def test_each_allowed_transition_is_made(current: BookingStatus, wanted: BookingStatus) -> None:
    booking = FakeBooking("b", current.value)
    transition(booking, wanted)
    assert booking.status == wanted.value


@pytest.mark.parametrize(("current", "wanted"), [
    (a, b) for a, b in itertools.product(BookingStatus, BookingStatus) if (a, b) not in ALLOWED
])  # fmt: skip
def test_every_other_transition_is_refused(current: BookingStatus, wanted: BookingStatus) -> None:
    booking = FakeBooking("b", current.value)
    with pytest.raises(IllegalTransition):
        transition(booking, wanted)
    assert booking.status == current.value


def test_reasons_are_kept() -> None:
    booking = FakeBooking("b", S.PAYMENT_PROCESSING.value)
    transition(booking, S.PAYMENT_FAILED, "card declined")
    assert booking.reason == "card declined"
