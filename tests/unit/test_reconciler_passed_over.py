"""The reconciler passes over a booking whose settling failed, for longer after each failure."""

from __future__ import annotations

import uuid

import pytest

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


def test_a_booking_is_waiting_only_until_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(reconciler.time, "monotonic", lambda: clock[0])
    passed_over = reconciler.PassedOver()
    booking = uuid.uuid4()
    passed_over.failed(booking, pass_s=10)
    clock[0] += 59.9
    assert passed_over.waiting() == [booking]
    clock[0] += 0.2
    assert passed_over.waiting() == []
    assert passed_over.tracked() == [booking]  # its failures still counted: the next wait is longer
    assert passed_over.failed(booking, pass_s=10) == 120


def test_the_oldest_failure_is_forgotten_first_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconciler, "MAX_TRACKED", 3)
    passed_over = reconciler.PassedOver()
    first, second, third, fourth = (uuid.uuid4() for _ in range(4))
    for booking in (first, second, third):
        passed_over.failed(booking, pass_s=10)
    passed_over.failed(first, pass_s=10)  # failed again: now the latest
    passed_over.failed(fourth, pass_s=10)
    assert passed_over.tracked() == [third, first, fourth]
