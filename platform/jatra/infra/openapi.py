"""What the OpenAPI document says about errors: every 4xx and 503 the API really answers, as
``application/problem+json`` (RFC 9457) with one shared schema.

Each handler lists the statuses it can answer with ``problems(...)``; the ones every API route can answer
(400 for a malformed request, 503 when a dependency fails) are always included. Schemathesis checks the
document against the running API in ``make test``, so a status that is answered but not listed fails CI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Reference, Schema
from msgspec import UNSET, Struct, UnsetType

from jatra.errors import PROBLEM_JSON

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


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
    408: "The request body did not arrive in time (or the client went away)",
    409: "Conflicts with the resource's current state",
    413: "The body is larger than the API accepts",
    415: "The body is not application/json",
    422: "Well-formed, but names something invalid (see invalid_params)",
    429: "Too many requests; retry after Retry-After seconds",
    503: "A dependency failed or the service is overloaded; retry after Retry-After seconds",
}
ALWAYS = (400, 503)
#: what a handler that takes a JSON body can also answer
BODY = (408, 413, 415)


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


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema of a msgspec Struct, plus what msgspec enforces and Litestar leaves out:
    ``additionalProperties: false`` for structs that forbid unknown fields, and the bounds of list items
    (a seat id's range). A client that follows the document is then never refused for the document's
    silence. (Litestar keeps this plugin in a private module; the test of the document pins it.)"""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if not isinstance(info, msgspec.inspect.StructType):
            return schema
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            prop = (schema.properties or {}).get(field.encode_name)
            if isinstance(prop, Schema) and isinstance(field.type, msgspec.inspect.ListType):
                _bound(prop.items, field.type.item_type)
        return schema


def _bound(items: Schema | Reference | None, item: msgspec.inspect.Type) -> None:
    if isinstance(item, msgspec.inspect.Metadata):
        item = item.type
    if not isinstance(items, Schema):
        return
    if isinstance(item, msgspec.inspect.IntType):
        items.minimum = item.ge if item.ge is not None else items.minimum
        items.maximum = item.le if item.le is not None else items.maximum
    elif isinstance(item, msgspec.inspect.StrType):
        items.min_length, items.max_length = item.min_length, item.max_length
        items.pattern = item.pattern
