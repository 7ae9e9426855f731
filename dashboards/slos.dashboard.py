"""SLOs: each objective's SLI, burn rates over every alerting window, and the error budget left."""

from jatra.observability import slo
from jatra.observability.panels import dashboard, q, stat, timeseries
from jatra.observability.promql import ENV

dashboard = dashboard(
    "jatra-slos",
    "Jatra / SLOs",
    "Availability and latency of search, holds and bookings, and the time from 202 to a final state: "
    "their SLIs, burn rates (page at 14.4x over 1 h and 5 m or 6x over 6 h and 30 m, ticket at 1x over 3 d) "
    "and error budgets.",
    [
        (
            "Budget",
            [
                stat(
                    "Error budget left (30 days)",
                    "Share of the 30-day error budget still unspent, per SLO.",
                    "percentunit",
                    q(slo.budget_left(ENV), "{{slo}}"),
                    decimals=1,
                ),
                stat(
                    "Objectives",
                    "The objective of each SLO (share of good events over 30 days).",
                    "percentunit",
                    q(f"1 - {slo.BUDGET}", "{{slo}}"),
                    decimals=2,
                ),
            ],
        ),
        (
            "SLIs and burn rates",
            [
                timeseries(
                    "SLI over 5 minutes",
                    "Share of good events (answered without a 5xx, fast enough, settled in time) per SLO.",
                    "percentunit",
                    q(f"1 - {slo.sel_error('5m', ENV)}", "{{slo}}"),
                    min_value=None,
                ),
                timeseries(
                    "SLI over 1 hour",
                    "Share of good events over the last hour, per SLO.",
                    "percentunit",
                    q(f"1 - {slo.sel_error('1h', ENV)}", "{{slo}}"),
                    min_value=None,
                ),
                timeseries(
                    "Burn rate, page windows",
                    "Budget burn over 5 m and 1 h (the fast page fires when both exceed 14.4) and 30 m and "
                    "6 h (the slow page: both above 6).",
                    "short",
                    *(q(slo.burn(w, ENV), "{{slo}} " + w) for w in ("5m", "1h", "30m", "6h")),
                ),
                timeseries(
                    "Burn rate, ticket windows",
                    "Budget burn over 6 h and 3 d: the ticket fires when both exceed 1 (the budget would be "
                    "gone before 30 days).",
                    "short",
                    *(q(slo.burn(w, ENV), "{{slo}} " + w) for w in ("6h", "3d")),
                ),
            ],
        ),
    ],
)
