"""What the OpenAPI document says about errors: every 4xx and 503 the API really answers, as
``application/problem+json`` (RFC 9457) with one shared schema.

Each handler lists the statuses it can answer with ``problems(...)``; the ones every API route can answer
(400 for a malformed request, 503 when a dependency fails) are always included. Schemathesis checks the
document against the running API in ``make test``, so a status that is answered but not listed fails CI.
"""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from msgspec import UNSET, Struct, UnsetType

from jatra.errors import PROBLEM_JSON


class InvalidParamOut(Struct, frozen=True):
    name: str
    reason: str


class Problem(Struct, frozen=True, kw_only=True):
    """An error, as RFC 9457 problem details, with Jatra's extension members where they apply."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    invalid_params: list[InvalidParamOut] | UnsetType = UNSET
    dependency: str | UnsetType = UNSET
    seats: list[int] | UnsetType = UNSET


_GENERIC = {
    400: "Malformed request: a parameter or the body does not match this document",
    401: "No valid access token (Authorization: Bearer <token>)",
    403: "The token's role may not do this",
    404: "No such resource, or not yours",
    409: "Conflicts with the resource's current state",
    413: "The body is larger than the API accepts",
    415: "The body is not application/json",
    422: "Well-formed, but names something invalid (see invalid_params)",
    429: "Too many requests; retry after Retry-After seconds",
    503: "A dependency failed or the service is overloaded; retry after Retry-After seconds",
}
ALWAYS = (400, 503)
#: what a handler that takes a JSON body can also answer
BODY = (413, 415)


def problems(*statuses: int, **described: str) -> dict[int, ResponseSpec]:
    """Problem responses for ``statuses`` (plus 400 and 503); ``s409="..."`` overrides a description."""
    wanted = sorted({*ALWAYS, *statuses, *(int(k.removeprefix("s")) for k in described)})
    return {
        status: ResponseSpec(
            Problem,
            description=described.get(f"s{status}", _GENERIC[status]),
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in wanted
    }
