"""Service-level objectives as data, and the rules that follow from them (as sloth or pyrra do, natively).

Each SLO is an objective and an SLI: good events over all events, in PromQL over any window. From them
come recording rules of the error ratio over every window the burn-rate alerts need, the error budget as a
constant series per SLO, and the budget left over 30 days. Two alerts cover every SLO (Google's SRE
workbook, multiwindow multi-burn-rate): a page when 2 % of the 30-day budget burns in an hour (14.4x over
1 h and 5 m) or 5 % in six hours (6x over 6 h and 30 m), and a ticket when the budget would be gone in
30 days (1x over 3 d and 6 h).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jatra.observability.promql import rate, sum_by
from jatra.telemetry import catalogue as c

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
#: (severity, [(long window, short window)], burn rate): an alert fires when both windows burn that fast
BURN_ALERTS = (
    ("page", (("1h", "5m"), ("6h", "30m")), (14.4, 6.0)),
    ("ticket", (("3d", "6h"),), (1.0,)),
)
ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
BUDGET = "slo:error_budget:ratio"
BUDGET_LEFT = "slo:error_budget_remaining:ratio"

Window = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class SLO:
    name: str  # the `slo` label: <what>-<availability|latency|...>
    objective: float  # e.g. 0.999
    description: str
    good: Window  # PromQL rate of good events over a window
    total: Window  # PromQL rate of all events over a window
    dashboard: str = "jatra-slos"

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)

    def error_ratio(self, window: str) -> str:
        """Bad over all events in the window; 0 (not NaN, not 1) when nothing happened."""
        total = self.total(window)
        return f"({total} - {self.good(window)}) / clamp_min({total}, 1e-9)"


SERVER_ERROR = 'status_code=~"5.."'


def sum_by_env(expr: str) -> str:
    """SLIs are kept per environment, so one Prometheus can watch several."""
    return sum_by(expr, "environment")


def _route(method: str, path: str) -> str:
    return f'method="{method}",path="{path}"'


def _available(method: str, path: str) -> tuple[Window, Window]:
    def total(w: str) -> str:
        return sum_by_env(rate(c.HTTP_REQUESTS, _route(method, path), window=w))

    def good(w: str) -> str:
        failed = sum_by_env(rate(c.HTTP_REQUESTS, _route(method, path), SERVER_ERROR, window=w))
        # `or total * 0`: an environment without failures keeps its series (vector(0) has no labels)
        return f"({total(w)} - ({failed} or {total(w)} * 0))"

    return good, total


def _fast(method: str, path: str, seconds: str) -> tuple[Window, Window]:
    def good(w: str) -> str:
        within = f'le="{seconds}"'
        return sum_by_env(rate(c.HTTP_DURATION, _route(method, path), within, window=w, suffix="_bucket"))

    def total(w: str) -> str:
        return sum_by_env(rate(c.HTTP_DURATION, _route(method, path), window=w, suffix="_count"))

    return good, total


def _settled(seconds: str) -> tuple[Window, Window]:
    def good(w: str) -> str:
        return sum_by_env(rate(c.BOOKING_SETTLED, f'le="{seconds}"', window=w, suffix="_bucket"))

    def total(w: str) -> str:
        return sum_by_env(rate(c.BOOKING_SETTLED, window=w, suffix="_count"))

    return good, total


def _slo(name: str, objective: float, description: str, sli: tuple[Window, Window]) -> SLO:
    return SLO(name, objective, description, good=sli[0], total=sli[1])


SEARCH, HOLD, BOOK = ("GET", "/api/v1/journeys"), ("POST", "/api/v1/holds"), ("POST", "/api/v1/bookings")
SLOS: tuple[SLO, ...] = (
    _slo("search-availability", 0.999, "Journey searches answered without a 5xx", _available(*SEARCH)),
    _slo("search-latency", 0.99, "Journey searches answered within 250 ms", _fast(*SEARCH, "0.25")),
    _slo("hold-availability", 0.999, "Seat holds answered without a 5xx", _available(*HOLD)),
    _slo("hold-latency", 0.99, "Seat holds answered within 250 ms", _fast(*HOLD, "0.25")),
    _slo("booking-availability", 0.999, "Bookings answered without a 5xx", _available(*BOOK)),
    _slo("booking-latency", 0.99, "Bookings answered (202) within 250 ms", _fast(*BOOK, "0.25")),
    _slo("booking-settle-time", 0.99, "Accepted bookings final within 30 s of their 202", _settled("30.0")),
)


def recording_rules() -> list[dict[str, object]]:
    """Per SLO: its error ratio over every window, its error budget, and the budget left over 30 days."""
    rules: list[dict[str, object]] = []
    for slo in SLOS:
        labels = {"slo": slo.name}
        rules += [
            {"record": ERROR_RATIO.format(window=w), "expr": slo.error_ratio(w), "labels": labels}
            for w in WINDOWS
        ]
        rules.append({"record": BUDGET, "expr": f"vector({slo.budget})", "labels": labels})
    rules.append(
        {
            "record": BUDGET_LEFT,
            "expr": f"1 - {sel_error('30d')} / on (slo) group_left () {BUDGET}",
        }
    )
    return rules


def sel_error(window: str, *matchers: str) -> str:
    """The recorded error ratio over a window, of the SLOs (and environments) the matchers pick."""
    name = ERROR_RATIO.format(window=window)
    return f"{name}{{{','.join(matchers)}}}" if matchers else name


def burn(window: str, *matchers: str) -> str:
    """How many times faster than its objective allows each SLO burns its budget over ``window``."""
    return f"{sel_error(window, *matchers)} / on (slo) group_left () {BUDGET}"


def budget_left(*matchers: str) -> str:
    return f"{BUDGET_LEFT}{{{','.join(matchers)}}}" if matchers else BUDGET_LEFT


def burn_alert_expr(severity: str) -> str:
    """Every SLO's burn-rate condition for one severity, joined on the slo label."""
    for level, pairs, rates in BURN_ALERTS:
        if level == severity:
            clauses = [
                f"({burn(long)} > {r} and {burn(short)} > {r})"
                for (long, short), r in zip(pairs, rates, strict=True)
            ]
            return "\n  or\n".join(clauses)
    raise ValueError(severity)
