"""Overview: the RED signals of every service and route, and where each SLO stands."""

from jatra.observability import slo
from jatra.observability.panels import dashboard, q, service_variable, stat, timeseries
from jatra.observability.promql import ENV, quantile, rate, sel, sum_by
from jatra.telemetry import catalogue as c

SVC = 'service=~"$service"'
ERRORS = 'status_code=~"5.."'
#: 0 per service that answered anything: a counter of errors that never happened has no series yet
NONE = f"0 * {sum_by(rate(c.HTTP_REQUESTS, ENV, SVC), 'service')}"

dashboard = dashboard(
    "jatra-overview",
    "Jatra / Overview",
    "Requests, errors and latency of every service (RED), and the state of every SLO.",
    [
        (
            "Traffic, errors, latency",
            [
                timeseries(
                    "Requests per second by service",
                    "HTTP requests answered by each service (all statuses).",
                    "reqps",
                    q(sum_by(rate(c.HTTP_REQUESTS, ENV, SVC), "service"), "{{service}}"),
                ),
                timeseries(
                    "Server errors per second by service",
                    "Requests answered 5xx: each one burns error budget. 4xx are the client's and do not "
                    "count.",
                    "reqps",
                    q(
                        f"{sum_by(rate(c.HTTP_REQUESTS, ENV, SVC, ERRORS), 'service')} or {NONE}",
                        "{{service}}",
                    ),
                ),
                timeseries(
                    "Latency p99 by service",
                    "99th percentile of request latency; the dots are exemplars: click one to open its "
                    "trace.",
                    "s",
                    q(quantile(0.99, c.HTTP_DURATION, ENV, SVC, by=("service",)), "p99 {{service}}"),
                    q(quantile(0.5, c.HTTP_DURATION, ENV, SVC, by=("service",)), "p50 {{service}}"),
                    exemplars=True,
                ),
                timeseries(
                    "Requests per second by route",
                    "Traffic per route template (bounded: never a raw path), all statuses.",
                    "reqps",
                    q(sum_by(rate(c.HTTP_REQUESTS, ENV, SVC), "method", "path"), "{{method}} {{path}}"),
                ),
                timeseries(
                    "Latency p99 by route",
                    "99th percentile per route template, with exemplars linking to traces.",
                    "s",
                    q(
                        quantile(0.99, c.HTTP_DURATION, ENV, SVC, by=("method", "path")),
                        "{{method}} {{path}}",
                    ),
                    exemplars=True,
                ),
                timeseries(
                    "Unhandled errors per second by service",
                    "Requests that ended in an exception no handler mapped to a problem (a bug, or a "
                    "dependency failure surfacing as a 5xx): should stay at 0.",
                    "reqps",
                    q(f"{sum_by(rate(c.HTTP_ERRORS, ENV, SVC), 'service')} or {NONE}", "{{service}}"),
                ),
                timeseries(
                    "Requests in progress",
                    "Requests being handled right now, per service: a queue building up shows here first.",
                    "short",
                    q(
                        sum_by(c.HTTP_IN_PROGRESS.name + "{" + ENV + "," + SVC + "}", "service"),
                        "{{service}}",
                    ),
                ),
                timeseries(
                    "Requests refused by admission control, per second by phase",
                    "503 + Retry-After from an API process at its limit of requests in flight: new trips "
                    "(log in, search) first, then seat maps and holds, bookings last. Non-zero for long: "
                    "more load than capacity (runbook AdmissionShedding).",
                    "reqps",
                    q(sum_by(rate(c.ADMISSION_SHED, ENV), "phase", "reason"), "{{phase}} ({{reason}})"),
                    stacked=True,
                ),
                timeseries(
                    "In flight against the admission limits, per API process",
                    "Requests each API process is working on (long polls not counted), and the counts "
                    "past which it refuses new trips, seat maps and holds, and everything.",
                    "short",
                    q(f"max by (process) ({sel(c.ADMISSION_IN_FLIGHT, ENV)})", "{{process}}"),
                    q(f"max by (phase) ({sel(c.ADMISSION_LIMIT, ENV)})", "limit {{phase}}"),
                ),
                timeseries(
                    "Oldest booking waiting for the payment worker, as the API reads it",
                    "Seconds the oldest PAYMENT_PENDING booking has waited, read once a second by each API "
                    "process that watches it (JATRA_ADMISSION_PAYMENT_DELAY_S set): past that setting, new "
                    "trips are refused (reason payment_backlog) until the payment worker catches up.",
                    "s",
                    q(f"max by (process) ({sel(c.ADMISSION_PAYMENT_DELAY, ENV)})", "{{process}}"),
                ),
            ],
        ),
        (
            "SLOs",
            [
                stat(
                    "Error budget left (30 days)",
                    "Share of each SLO's 30-day error budget not yet spent; below 0 the objective is missed.",
                    "percentunit",
                    q(slo.budget_left(ENV), "{{slo}}"),
                    decimals=1,
                ),
                stat(
                    "Burn rate, last hour",
                    "How many times faster than the objective allows each SLO spends its budget (1 = on "
                    "track).",
                    "short",
                    q(slo.burn("1h", ENV), "{{slo}}"),
                    decimals=2,
                ),
            ],
        ),
    ],
    service_variable(),
)
