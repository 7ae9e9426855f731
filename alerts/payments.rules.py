"""Payments: an open breaker, failing payments, bookings stuck between 202 and a final state."""

from jatra.observability.promql import rate, sel, sum_by
from jatra.observability.rules import Alert, Group
from jatra.telemetry import catalogue as c

FAILED = sum_by(rate(c.PAYMENT_ATTEMPTS, 'outcome=~"declined|error|timeout"', window="10m"), "environment")
ALL = sum_by(rate(c.PAYMENT_ATTEMPTS, 'outcome!="short_circuited"', window="10m"), "environment")

groups = [
    Group(
        "jatra-payments",
        (
            Alert(
                "CircuitBreakerOpen",
                f"max by (environment, target) ({sel(c.BREAKER_STATE)}) == 2",
                "5m",
                "page",
                "The circuit breaker to {{ $labels.target }} is open",
                "Calls to {{ $labels.target }} ({{ $labels.environment }}) have failed so often that the "
                "breaker refuses them at once, for 5 minutes now. Payments wait within their retry budget, "
                "then fail with nothing charged.",
                "jatra-breakers",
            ),
            Alert(
                "PaymentFailureRateHigh",
                f"{FAILED} / clamp_min({ALL}, 1e-9) > 0.2 and {ALL} > 0.05",
                "10m",
                "page",
                "{{ $value | humanizePercentage }} of payment attempts fail",
                "Over 10 minutes, {{ $value | humanizePercentage }} of calls to the payment provider in "
                "{{ $labels.environment }} were declined, failed or timed out.",
                "jatra-bookings",
            ),
            Alert(
                "BookingsStuckInPayment",
                f"max by (environment) ({sel(c.BOOKINGS_STUCK)}) > 0",
                "10m",
                "page",
                "{{ $value }} bookings have waited more than 2 minutes for payment",
                "{{ $value }} accepted bookings in {{ $labels.environment }} are still PAYMENT_PENDING or "
                "PAYMENT_PROCESSING two minutes after their 202, for 10 minutes: the payment path is broken "
                "somewhere between the outbox and the provider. The reconciler settles them after the hold "
                "time; passengers are waiting now.",
                "jatra-bookings",
            ),
        ),
    ),
]
