"""One error hierarchy, mapped to RFC 9457 problem+json in one place (:func:`exception_handlers`).

Domain errors are defined next to the service that raises them (``jatra/<service>/errors.py``) as
subclasses of these. 4xx answers are logged without a traceback; 5xx answers with one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.status_codes import (
    HTTP_401_UNAUTHORIZED,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

from jatra.settings import get_settings

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://jatra.dev/problems/"


@dataclass(frozen=True, slots=True)
class InvalidParam:
    """One entry of the ``invalid_params`` extension member: which input was wrong and why."""

    name: str
    reason: str


class JatraError(Exception):
    """Base of every error the API answers with a problem document."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    #: a 5xx logged with its traceback (an error); False for a refusal the code means to make (a warning)
    traceback: ClassVar[bool] = True

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(JatraError):
    """The request is well-formed but names something invalid: 422 with the fields in ``invalid_params``."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"

    def __init__(self, *params: InvalidParam) -> None:
        super().__init__(
            "; ".join(f"{p.name}: {p.reason}" for p in params),
            invalid_params=[{"name": p.name, "reason": p.reason} for p in params],
        )


class NotFound(JatraError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(JatraError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class DependencyUnavailable(JatraError):
    """A dependency (db, redis, amqp, provider) failed: 503 with Retry-After. Nothing was accepted."""

    status = 503
    slug = "dependency-unavailable"
    title = "A dependency is unavailable"

    def __init__(self, dependency: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{dependency} is unavailable; retry shortly", dependency=dependency)
        self.dependency = dependency

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(get_settings().retry_after_s)}


def problem(
    request: Request[Any, Any, Any],
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _jatra_error(request: Request[Any, Any, Any], exc: JatraError) -> Response[dict[str, Any]]:
    if exc.status >= HTTP_500_INTERNAL_SERVER_ERROR and exc.traceback:
        log.error("request.failed", problem=exc.slug, detail=exc.detail, exc_info=exc)
    elif exc.status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.warning("request.failed", problem=exc.slug, status=exc.status, detail=exc.detail)
    else:
        log.info("request.rejected", problem=exc.slug, status=exc.status, detail=exc.detail)
    return problem(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers(), **exc.extensions)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    items = exc.extra if isinstance(exc.extra, list) else []
    params = [
        {"name": _wire_name(request, str(item.get("key", "body"))), "reason": _reason(item.get("message"))}
        for item in items
        if isinstance(item, dict)
    ]
    detail = "; ".join(f"{p['name']}: {p['reason']}" for p in params) or exc.detail
    log.info("request.rejected", problem="invalid-request", status=400, detail=detail)
    return problem(request, 400, "invalid-request", "Invalid request", detail, invalid_params=params)


def _wire_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name the client used: ``from`` for the query parameter a handler calls ``origin``."""
    field = request.route_handler.parsed_fn_signature.parameters.get(key)
    kwarg = getattr(field, "kwarg_definition", None)
    alias = getattr(kwarg, "name", None) or getattr(kwarg, "query", None) or getattr(kwarg, "header", None)
    return alias if isinstance(alias, str) else key


def _reason(message: object) -> str:
    """msgspec's message, with the regular expressions of :mod:`jatra.infra.inputs` said in words."""
    from jatra.infra.inputs import PATTERN_MEANINGS  # noqa: PLC0415 - errors must not import infra eagerly

    text = str(message or "")
    for pattern, meaning in PATTERN_MEANINGS.items():
        text = text.replace(f"matching regex {pattern!r}", meaning)
    return text


_TITLES = {
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        # Litestar's own 5xx (a misconfiguration) carry internal messages: log them, never answer them
        return _unhandled(request, exc)
    slug = "not-found" if isinstance(exc, NotFoundException) else f"http-{status}"
    headers = dict(exc.headers or {})
    if status == HTTP_401_UNAUTHORIZED:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="jatra"')
    if status == HTTP_429_TOO_MANY_REQUESTS and "RateLimit-Reset" in headers:
        # Litestar's rate limit says when in the IETF draft's header only; clients (and the OpenAPI
        # document) know Retry-After
        headers.setdefault("Retry-After", str(max(int(headers["RateLimit-Reset"]), 1)))
    log.info("request.rejected", problem=slug, status=status, detail=exc.detail)
    title = _TITLES.get(status, exc.detail or "Error")
    detail = exc.detail or title
    if status == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"the body is larger than the {limit} bytes accepted"
    return problem(request, status, slug, title, detail, headers)


def _unhandled(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    unavailable = dependency_error(exc)
    if unavailable is not None:
        return _jatra_error(request, unavailable)
    if (state := _data_exception(exc)) is not None:
        # Postgres refused a value (SQLSTATE class 22: out of range, not valid text, ...). Input validation
        # should have caught it first, so say which check let it through, but never answer 500 for input.
        log.warning("request.rejected.by_database", problem="invalid-input", sqlstate=state)
        detail = "a value in this request cannot be stored or compared; check its range and text"
        return problem(request, 422, "invalid-input", "Invalid input", detail)
    log.error("request.failed", problem="internal-error", exc_info=exc)
    return problem(request, 500, "internal-error", "Internal error", "an unexpected error occurred")


def _data_exception(exc: BaseException) -> str | None:
    """The SQLSTATE of a Postgres data exception (class 22) behind ``exc``, or None if it is not one."""
    import psycopg  # noqa: PLC0415
    import sqlalchemy.exc  # noqa: PLC0415

    if isinstance(exc, psycopg.Error):  # jatra.infra.pg's statements
        state = exc.sqlstate
    elif isinstance(exc, sqlalchemy.exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
    else:
        return None
    return state if isinstance(state, str) and state.startswith("22") else None


def dependency_error(exc: BaseException) -> DependencyUnavailable | None:
    """The 503 to answer for a dependency failure, or None if ``exc`` is not one.

    A pool timeout is not an outage: every connection was busy, so the service is overloaded, and the
    answer says so (on-call reads these details)."""
    import psycopg_pool  # noqa: PLC0415
    import redis.exceptions  # noqa: PLC0415
    import sqlalchemy.exc  # noqa: PLC0415

    if isinstance(exc, sqlalchemy.exc.TimeoutError | psycopg_pool.PoolTimeout):
        return DependencyUnavailable(
            "postgres", "no database connection was free in time: overloaded; retry shortly"
        )
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return DependencyUnavailable(
            "redis", "redis is full (maxmemory reached) and refuses writes; retry shortly"
        )
    if isinstance(exc, redis.exceptions.TimeoutError):
        # a busy loop or machine, not an outage: say which, on-call reads these details
        return DependencyUnavailable("redis", "redis did not answer in time (socket timeout); retry shortly")
    dependency = dependency_of(exc)
    return DependencyUnavailable(dependency) if dependency is not None else None


def _redis_refusals() -> tuple[type[Exception], ...]:
    """Answers by which a running Redis refuses work it would do when healthy: full, a read-only replica
    after a failover, a cluster with a slot down or mid-migration."""
    from redis import exceptions as r  # noqa: PLC0415

    return (r.OutOfMemoryError, r.ReadOnlyError, r.ClusterDownError, r.TryAgainError, r.SlotNotCoveredError)


def dependency_of(exc: BaseException) -> str | None:
    """Name the dependency whose failure raised ``exc``, or None if it is not a dependency failure."""
    import aiormq.exceptions  # noqa: PLC0415 - keep the import cost out of every error module user
    import redis.exceptions  # noqa: PLC0415
    import sqlalchemy.exc  # noqa: PLC0415

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, *_redis_refusals())):
        return "redis"
    if (
        isinstance(
            exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError | sqlalchemy.exc.TimeoutError
        )
        or (isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated)
        or _psycopg_unreachable(exc)
        or _asyncpg_unreachable(exc)
    ):
        return "postgres"
    if isinstance(exc, aiormq.exceptions.AMQPConnectionError | aiormq.exceptions.ChannelInvalidStateError):
        return "rabbitmq"
    if isinstance(exc, OSError | TimeoutError):
        # Connect-time failures reach us unwrapped (asyncpg raises ConnectionRefusedError itself): name the
        # dependency by the library the error came out of.
        return _library_of(exc) or "network"
    return None


#: SQLSTATE classes of a Postgres that cannot serve: connection exceptions, out of resources (too many
#: connections), shut down or starting up
_UNREACHABLE_STATES = ("08", "53", "57P")


def _psycopg_unreachable(exc: BaseException) -> bool:
    """A psycopg error that says Postgres (or PgBouncer) cannot be reached or cannot serve: a client-side
    failure (no SQLSTATE: refused, lost, a pool timeout) or one of :data:`_UNREACHABLE_STATES`. Not a
    deadlock, a serialization failure or a lock not available, which psycopg also calls operational."""
    import psycopg  # noqa: PLC0415

    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return exc.sqlstate is None or exc.sqlstate.startswith(_UNREACHABLE_STATES)


def _asyncpg_unreachable(exc: BaseException) -> bool:
    """The same for asyncpg, under the ORM: SQLAlchemy wraps what asyncpg raises on a connection it has,
    but not what it raises while opening one, so a Postgres or PgBouncer that refuses a new connection
    (too many clients, starting up, shutting down, a protocol error) reaches us as asyncpg's own error."""
    import asyncpg  # noqa: PLC0415

    return isinstance(exc, asyncpg.PostgresError) and str(exc.sqlstate).startswith(_UNREACHABLE_STATES)


_LIBRARIES = (("asyncpg", "postgres"), ("sqlalchemy", "postgres"), ("psycopg", "postgres"),
              ("psycopg_pool", "postgres"), ("redis", "redis"), ("aiormq", "rabbitmq"),
              ("aio_pika", "rabbitmq"))  # fmt: skip


def _library_of(exc: BaseException) -> str | None:
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    for module in reversed(frames):
        for prefix, dependency in _LIBRARIES:
            if module == prefix or module.startswith(prefix + "."):
                return dependency
    return None


def exception_handlers() -> dict[int | type[Exception], Any]:
    return {
        JatraError: _jatra_error,
        ValidationException: _validation_error,
        HTTPException: _http_error,
        Exception: _unhandled,
    }


__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "DependencyUnavailable",
    "InvalidInput",
    "InvalidParam",
    "JatraError",
    "NotFound",
    "exception_handlers",
]
