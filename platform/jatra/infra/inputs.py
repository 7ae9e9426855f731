"""Constrained wire types every service uses for its inputs, so that no input can reach a database it
cannot fit: ids within the width of their column, text without control characters (Postgres refuses NUL),
station codes of letters and digits.

The constraints are msgspec ``Meta`` (body fields, checked when a body is decoded) and Litestar
``Parameter`` (path and query parameters); both appear in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter
from msgspec import Meta

#: the largest id the API accepts: JavaScript's Number.MAX_SAFE_INTEGER. Every JSON parser reads it
#: exactly (2**63 - 1 is not: as a float it equals 2**63, so a client's "maximum" check let 2**63 + 191
#: through, as the fuzzer found), and it fits the bigint columns with room to spare.
MAX_ID = 2**53 - 1
#: the end of the text. In Python's re (msgspec's) ``$`` alone also matches before one final newline, as it
#: does not in ECMA's (OpenAPI's), so "Rahim\n" and "a@b.c\n" passed (a newline in an e-mail's To header
#: ends its headers); the lookahead refuses that in both. Not ``\Z``, which ECMA reads as a letter Z.
END = r"$(?!\n)"
#: printable text: no C0 or C1 control characters (NUL among them) and no DEL. Spelled out rather than
#: with \s, whose meaning differs between Python's re and the ECMA regexes of OpenAPI tools.
PLAIN_TEXT = rf"^[^\x00-\x1f\x7f-\x9f]*{END}"
STATION_CODE = rf"^[A-Za-z0-9]{{2,8}}{END}"
#: an e-mail address: something@domain.tld, without spaces or control characters
EMAIL = rf"^[^@ \x00-\x1f\x7f-\x9f]+@[^@ \x00-\x1f\x7f-\x9f]+\.[^@ \x00-\x1f\x7f-\x9f]+{END}"

#: what a pattern means, for error messages (msgspec names the regular expression)
PATTERN_MEANINGS = {
    PLAIN_TEXT: "without control characters",
    STATION_CODE: "of 2 to 8 letters or digits (a station code)",
    EMAIL: "that is an e-mail address (name@domain.tld)",
}

#: a journey id in a body (journeys.id is a 64-bit integer)
JourneyId = Annotated[int, Meta(ge=1, le=MAX_ID, description="Journey id, from a search")]
#: a seat id in a body (seats.id is a 64-bit integer)
SeatId = Annotated[int, Meta(ge=1, le=MAX_ID, description="Seat id, from the seat map")]
StationCode = Annotated[
    str, Meta(pattern=STATION_CODE, min_length=2, max_length=8, description="Station code, e.g. DA")
]

#: a journey id in a path
JourneyIdPath = Annotated[int, Parameter(ge=1, le=MAX_ID, description="Journey id, from a search")]


def plain_text(max_length: int, *, min_length: int = 1, description: str = "") -> Meta:
    """Meta for a body string of printable text within the given length."""
    return Meta(min_length=min_length, max_length=max_length, pattern=PLAIN_TEXT, description=description)
