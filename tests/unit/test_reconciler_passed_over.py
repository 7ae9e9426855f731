"""The reconciler passes over a booking whose settling failed, for longer after each failure."""

from __future__ import annotations

import uuid

from jatra.payments import reconciler


def test_a_booking_passed_over_waits_longer_after_each_failure() -> None:
    passed_over = reconciler.PassedOver()
    booking, other = uuid.uuid4(), uuid.uuid4()
    waits = [passed_over.failed(booking, pass_s=10) for _ in range(8)]
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert passed_over.waiting() == [booking]
    passed_over.failed(other, pass_s=1)
    passed_over.keep_only({other})  # booking settled elsewhere
    assert passed_over.tracked() == [other]
    passed_over.settled(other)
    assert passed_over.waiting() == [] and passed_over.tracked() == []


def test_a_booking_that_fails_for_months_still_waits_an_hour() -> None:
    passed_over = reconciler.PassedOver()
    booking = uuid.uuid4()
    assert {passed_over.failed(booking, pass_s=10) for _ in range(5_000)} >= {3600}
    assert passed_over.failed(booking, pass_s=10) == 3600
