"""Which HTTP service answers which path: the one route table of split mode.

The local nginx, the compose nginx and the Kubernetes Ingress all route by this table; a test checks that
it covers every route the services serve, so a new endpoint cannot be unreachable behind the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the HTTP services of split mode (`jatra serve <service>`), in the order the gateway lists them
SERVICES = ("auth", "catalog", "seats", "bookings")
#: per-client limit classes at the edge: "api" for everything, "auth" for the login endpoints
Limit = Literal["api", "auth"]


@dataclass(frozen=True, slots=True)
class Route:
    service: str
    #: an exact path, a prefix (ends with "/") or a regular expression (starts with "^")
    path: str
    limit: Limit = "api"

    @property
    def kind(self) -> Literal["exact", "prefix", "regex"]:
        if self.path.startswith("^"):
            return "regex"
        return "prefix" if self.path.endswith("/") else "exact"

    def matches(self, path: str) -> bool:
        import re  # noqa: PLC0415 - only the coverage test calls this

        if self.kind == "regex":
            return re.fullmatch(self.path.lstrip("^").rstrip("$"), path) is not None
        if self.kind == "prefix":
            return path.startswith(self.path)
        return path == self.path


ROUTES: tuple[Route, ...] = (
    Route("auth", "/api/v1/auth/", limit="auth"),
    Route("catalog", "/api/v1/stations"),
    Route("catalog", "/api/v1/journeys"),
    # the seat map sits under a journey, but is the seats service's (regex: checked before prefixes)
    Route("seats", r"^/api/v1/journeys/[0-9]+/seats$"),
    Route("seats", "/api/v1/holds"),
    Route("seats", "/api/v1/holds/"),
    Route("seats", "/api/v1/admin/journeys/"),
    Route("bookings", "/api/v1/bookings"),
    Route("bookings", "/api/v1/bookings/"),
    Route("bookings", "/api/v1/tickets/"),
    # each service documents its own routes; the gateway shows the catalog's document at /docs
    Route("catalog", "/docs"),
    Route("catalog", "/docs/"),
)


def service_for(path: str) -> str | None:
    """The service the gateway sends ``path`` to (regexes first, then the longest prefix, as nginx does)."""
    for route in ROUTES:
        if route.kind == "exact" and route.matches(path):
            return route.service
    for route in ROUTES:
        if route.kind == "regex" and route.matches(path):
            return route.service
    prefixes = [r for r in ROUTES if r.kind == "prefix" and r.matches(path)]
    return max(prefixes, key=lambda r: len(r.path)).service if prefixes else None
