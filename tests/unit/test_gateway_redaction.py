"""The gateway's query redaction names the same parameters as the app's (`scrub_query`): a name has no
pattern, so a parameter named like personal data redacts the query nginx logs. Python's `re`, case-blind,
stands in for nginx's PCRE here; the real nginx runs the same maps in tests/integration/test_split_mode.py
and tests/deploy/test_ingress_values.py."""

from __future__ import annotations

import re

import pytest

from jatra.gateway.nginx import PERSONAL_PARAMETER
from jatra.telemetry.redact import scrub_query

NAMED = re.compile(PERSONAL_PARAMETER, re.IGNORECASE)


@pytest.mark.parametrize(
    "query",
    [
        "passenger=Rahim+Uddin",
        "from=DA&Name=Karim",
        "passengers%5B0%5D%5Bname%5D=Karim&x=1",
        "passengers[0][name]=Karim",
        "contact.email=rahim",
        "contact%2Eemail=rahim",
        "x=1&phone=0171",
        "e-mail=x",
        "a=1&token=abc",
    ],
)
def test_a_parameter_named_like_personal_data_is_found_as_the_app_finds_it(query: str) -> None:
    assert NAMED.search(query)
    assert scrub_query(query) != query


@pytest.mark.parametrize(
    "query",
    ["from=DA&to=SYT&date=2030-01-01", "username=bob", "user_name=bob", "name=", "q=name", "surname=x"],
)
def test_ordinary_parameters_are_not(query: str) -> None:
    assert not NAMED.search(query)
    assert scrub_query(query) == query
