"""SLO recording rules and the two burn-rate alerts that cover every SLO (see jatra.observability.slo)."""

from jatra.observability import slo
from jatra.observability.rules import Alert, Group

groups = [
    Group("jatra-slo-recording", tuple(slo.recording_rules()), interval="30s"),
    # a day to 30 days of two series per SLO: every 2 minutes is fresh enough for a ticket and a budget
    Group("jatra-slo-long-windows", tuple(slo.long_window_rules()), interval="2m"),
    Group(
        "jatra-slo-alerts",
        (
            Alert(
                "SLOBurnRateFast",
                slo.burn_alert_expr("page"),
                "2m",
                "page",
                "{{ $labels.slo }} is burning its error budget fast",
                "The {{ $labels.slo }} SLO in {{ $labels.environment }} spends its 30-day error budget "
                '{{ $value | printf "%.1f" }} times faster than its objective allows: at this pace 2 % of '
                "the budget goes in an hour (or 5 % in six). Passengers are being failed now.",
                "jatra-slos",
            ),
            Alert(
                "SLOBurnRateSlow",
                slo.burn_alert_expr("ticket"),
                "15m",
                "ticket",
                "{{ $labels.slo }} will miss its objective at this pace",
                "The {{ $labels.slo }} SLO in {{ $labels.environment }} has burned its budget "
                '{{ $value | printf "%.2f" }} times faster than allowed over three days (and still does '
                "over six hours): the 30-day budget runs out before the month does.",
                "jatra-slos",
            ),
        ),
    ),
]
