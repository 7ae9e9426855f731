"""Test settings are fixed before any Jatra import; the real servers come from the same code as `jatra up`."""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis

ROOT = Path(__file__).resolve().parents[1]
# Two runs on one machine (two worktrees, or helpers working side by side) each set these two, so their
# stacks never share a port or a state directory.
TEST_PORT_BASE = int(os.environ.get("JATRA_TEST_PORT_BASE", "27000"))
TEST_STATE_DIR = os.environ.get("JATRA_TEST_STATE_DIR", str(ROOT / "var" / "test"))
os.environ.update(
    {
        "JATRA_ENVIRONMENT": "test",
        "JATRA_STATE_DIR": TEST_STATE_DIR,
        "JATRA_PORT_BASE": str(TEST_PORT_BASE),
        "JATRA_LOG_LEVEL": "INFO",
        "JATRA_TIMETABLE_HORIZON_DAYS": "7",
        # the running timetable worker rolls the horizon within a minute of midnight in Dhaka (18:00 UTC)
        "JATRA_TIMETABLE_INTERVAL_S": "60",
        # every test request comes from one address; the per-IP limit has a test of its own
        "JATRA_OTP_PER_IP_PER_MINUTE": "100000",
        # short payment budgets so outage tests finish in seconds
        "JATRA_PAYMENT_RETRY_TIMEOUT_S": "4",
        "JATRA_BREAKER_THRESHOLD": "3",
        "JATRA_BREAKER_RESET_S": "1",
        "JATRA_PROVIDER_TIMEOUT_S": "1",
        # the reconciler worker looks for stuck bookings every second, so tests can wait for it
        "JATRA_RECONCILE_INTERVAL_S": "1",
        # slow-client deadlines short enough for their tests to wait them out
        "JATRA_HTTP_HEADER_TIMEOUT_S": "2",
        "JATRA_HTTP_BODY_TIMEOUT_S": "2",
        # the outbox relay's safety-net poll out of every test's reach: a booking is paid only because its
        # commit's NOTIFY woke the relay (or, while its LISTEN session is down, because the relay polls)
        "JATRA_OUTBOX_IDLE_POLL_S": "60",
    }
)

# CI is one run that has to pass: property tests draw the same examples every run and have no deadline per
# example (the whole stack runs beside them, so one example can wait out a scheduler's slice). A run with
# HYPOTHESIS_PROFILE=explore draws new examples, 1,000 a test (but for tests that set their own number).
hypothesis.settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.register_profile("explore", deadline=None, max_examples=1000)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytest_plugins = [
    "tests.fixtures.stack",
    "tests.fixtures.app",
    "tests.fixtures.accounts",
    "tests.fixtures.provider",
]
