"""Service-level objectives as data, and the rules that follow from them (as sloth or pyrra do, natively).

Each SLO is an objective and an SLI: good events over all events, in PromQL over any window. From them
come recording rules of the error ratio over every window the burn-rate alerts need, the error budget as a
constant series per SLO, and the budget left over 30 days. The windows up to six hours read the raw
series; a day and longer read the SLI's own recorded 5-minute rates (events and bad events, one series
each per SLO and environment): ``rate(x[30d])`` over raw counters loads every sample of
every series (each replica, status code and bucket) for 30 days, every evaluation. Summing the recorded
rates over the window weights each event alike, so the ratio is traffic-weighted, not an average of
5-minute ratios (sloth's way, which counts a quiet night's ratio as much as the rush's).

Two alerts cover every SLO (Google's SRE workbook, multiwindow multi-burn-rate): a page when 2 % of the
30-day budget burns in an hour (14.4x over 1 h and 5 m) or 5 % in six hours (6x over 6 h and 30 m), and a
ticket when the budget would be gone in 30 days (1x over 3 d and 6 h).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jatra.observability.promql import rate, sum_by
from jatra.telemetry import catalogue as c

#: read from the raw series; LONG_WINDOWS from the recorded 5-minute rates (EVENTS, BAD_EVENTS)
RAW_WINDOWS = ("5m", "30m", "1h", "2h", "6h")
LONG_WINDOWS = ("1d", "3d", "30d")
WINDOWS = RAW_WINDOWS + LONG_WINDOWS
#: (severity, [(long window, short window)], burn rate): an alert fires when both windows burn that fast
BURN_ALERTS = (
    ("page", (("1h", "5m"), ("6h", "30m")), (14.4, 6.0)),
    ("ticket", (("3d", "6h"),), (1.0,)),
)
ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
BUDGET = "slo:error_budget:ratio"
BUDGET_LEFT = "slo:error_budget_remaining:ratio"
#: the window of the recorded rates: EVENTS and BAD_EVENTS
RATE_WINDOW = "5m"
EVENTS = f"slo:sli_events:rate{RATE_WINDOW}"
BAD_EVENTS = f"slo:sli_bad_events:rate{RATE_WINDOW}"

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
    """Per SLO: its events' and bad events' 5-minute rates, its error ratio over the raw windows (the
    5-minute one from those rates, recorded just before in the same evaluation, not read again), its
    error budget. Evaluated every 30 s."""
    rules: list[dict[str, object]] = []
    for slo in SLOS:
        labels = {"slo": slo.name}
        total = slo.total(RATE_WINDOW)
        rules += [
            {"record": EVENTS, "expr": total, "labels": labels},
            {"record": BAD_EVENTS, "expr": f"{total} - {slo.good(RATE_WINDOW)}", "labels": labels},
        ]
        rules += [
            {"record": ERROR_RATIO.format(window=w), "expr": slo.error_ratio(w), "labels": labels}
            for w in RAW_WINDOWS
            if w != RATE_WINDOW
        ]
        rules.append({"record": BUDGET, "expr": f"vector({slo.budget})", "labels": labels})
    rules.append(
        {
            "record": ERROR_RATIO.format(window=RATE_WINDOW),
            "expr": f"{BAD_EVENTS} / clamp_min({EVENTS}, 1e-9)",
        }
    )
    return rules


def long_window_rules() -> list[dict[str, object]]:
    """Every SLO's error ratio over a day and longer, from the recorded rates, and the budget left over
    30 days. Each rule reads two series per SLO and environment, whatever the number of replicas."""
    rules: list[dict[str, object]] = [
        {
            "record": ERROR_RATIO.format(window=w),
            "expr": f"sum_over_time({BAD_EVENTS}[{w}]) / clamp_min(sum_over_time({EVENTS}[{w}]), 1e-9)",
        }
        for w in LONG_WINDOWS
    ]
    rules.append({"record": BUDGET_LEFT, "expr": f"1 - {sel_error('30d')} / on (slo) group_left () {BUDGET}"})
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
