"""Seat holds: conflict surges, holds that expire instead of becoming bookings, and holds refused because
Redis does not know a journey's sales (jatra.inventory.resync)."""

from jatra.observability.promql import rate, sum_by
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

W = "10m"
CONFLICTED = sum_by(rate(c.HOLD_OUTCOMES, 'outcome="conflicted"', window=W), "environment")
ATTEMPTS = sum_by(rate(c.HOLD_ATTEMPTS, window=W), "environment")
EXPIRED = sum_by(rate(c.HOLD_ENDED, 'reason="expired"', window="30m"), "environment")
ENDED = sum_by(rate(c.HOLD_ENDED, window="30m"), "environment")
#: 2 minutes: a restart's burst of refusals, over within one reaper pass, leaves the window before 5 minutes
RESYNCING = sum_by(rate(c.HOLD_OUTCOMES, 'outcome="resyncing"', window="2m"), "environment")

groups = [
    Group(
        "jatra-holds",
        (
            Alert(
                "HoldConflictSurge",
                f"{CONFLICTED} / clamp_min({ATTEMPTS}, 1e-9) > 0.5 and {ATTEMPTS} > 1",
                "10m",
                "ticket",
                "Most hold attempts lose their seats to other passengers",
                "{{ $value | humanizePercentage }} of hold attempts in {{ $labels.environment }} conflicted "
                "over 10 minutes: passengers keep choosing seats someone else holds (a stale seat map, "
                "a sold-out rush, or holds not released).",
                "jatra-holds",
                {"engine": "redis"},
            ),
            Alert(
                "HoldsExpiringWithoutBookings",
                f"{EXPIRED} / clamp_min({ENDED}, 1e-9) > 0.5 and {ENDED} > 0.1",
                "30m",
                "ticket",
                "Most holds expire instead of being booked",
                "{{ $value | humanizePercentage }} of the holds that ended in {{ $labels.environment }} "
                "over 30 minutes expired: passengers hold seats and never pay (a broken booking step, a "
                "payment page that fails, or seat hoarding).",
                "jatra-holds",
            ),
            Alert(
                "HoldsRefusedResyncing",
                f"{RESYNCING} > 0",
                "5m",
                "page",
                "Holds are refused: Redis does not know some journeys' sales",
                '{{ printf "%.2f" $value }} hold requests a second in {{ $labels.environment }} have been '
                "refused for 5 minutes because Redis has no synced marker for their journey (it lost its "
                "data), and the reaper, which restores a journey within one pass, has not.",
                "jatra-holds",
                {"engine": "redis"},
            ),
        ),
    ),
]
