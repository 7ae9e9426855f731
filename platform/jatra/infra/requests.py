"""The request class of every Jatra app: JSON bodies decoded strictly, once, into the handler's type.

Litestar decodes a JSON body into builtins and then converts it leniently (``"1743"`` becomes ``1743``),
whatever the Content-Type said, and lets a body that is not UTF-8 or nests too deep escape as a 500.
Here a body is decoded by msgspec straight into the type the handler declares for ``data``, in strict
mode, after its media type is checked; each failure is a 4xx problem that names it. Litestar's own
conversion afterwards finds an instance of the right type and passes it through unchanged.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, InternalServerException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT, HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.utils.empty import value_or_default

_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
#: what Litestar's Request.stream raises when the connection closes before the body is complete
DISCONNECTED = "client disconnected prematurely"


class UnsupportedMediaType(ClientException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


class BodyTimedOut(ClientException):
    """The connection went away before the body arrived: cut by the server's body deadline (see
    :mod:`jatra.infra.http_server`) or closed by the client. A client's doing, so a 4xx and never a 500
    in the access log and the error budget (Litestar calls it an internal error)."""

    status_code = HTTP_408_REQUEST_TIMEOUT


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


@cache
def _body_type(handler: HTTPRouteHandler) -> Any:
    data = handler.parsed_fn_signature.parameters.get("data")
    return Any if data is None else data.annotation


def _invalid(key: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"invalid body: {message}", extra=[{"key": key, "message": message, "source": "body"}]
    )


def _integral(value: Any) -> Any:
    """``value`` with every float that is a whole number made an int (JSON Schema's integers)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _decode(body: bytes, target: Any) -> Any:
    try:
        return msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        if not str(exc).startswith("Expected `int`, got `float`"):
            raise
    # 120.0 is an integer to JSON Schema (and so to the OpenAPI document): accept it, but still no "120"
    return msgspec.convert(_integral(msgspec.json.decode(body)), type=target, strict=True)


def decode_body(body: bytes, target: Any) -> Any:
    """``body`` decoded strictly into ``target``; a ValidationException naming the field if it cannot be."""
    try:
        return _decode(body, target)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _PATH.search(message)
        key = found.group(1) if found and found.group(1) else "body"
        raise _invalid(key, _PATH.sub("", message)) from None
    except msgspec.DecodeError as exc:
        raise _invalid("body", f"not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise _invalid("body", "not valid UTF-8") from None
    except RecursionError:
        raise _invalid("body", "JSON nested too deeply") from None


class JatraRequest(Request[Any, Any, Any]):
    async def body(self) -> bytes:
        try:
            return await super().body()
        except InternalServerException as exc:
            if exc.detail != DISCONNECTED:
                raise
            raise BodyTimedOut(detail="the request body did not arrive in time") from None

    async def json(self) -> Any:
        cached = value_or_default(self._connection_state.json, None)
        if cached is not None:
            return cached
        media_type = self.content_type[0]
        if not is_json(media_type):
            raise UnsupportedMediaType(
                detail=f"the body must be application/json, not {media_type or 'a body without a type'}"
            )
        value = decode_body(await self.body(), _body_type(self.route_handler))
        self._json = self._connection_state.json = value
        return value
