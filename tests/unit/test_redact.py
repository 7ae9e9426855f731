"""The redaction step keeps personal data out of log events, by key and by content."""

from __future__ import annotations

import json
import logging
import re

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from jatra.settings import load_settings
from jatra.telemetry.logs import configure_logging
from jatra.telemetry.redact import (
    _PATTERNS,
    REDACTED,
    _may_be_personal,
    mask_phone,
    redact,
    scrub,
    scrub_query,
    scrub_url,
)


def run(**event: object) -> dict[str, object]:
    return dict(redact(None, "info", dict(event)))


def test_personal_keys_lose_their_values_and_phones_are_masked() -> None:
    out = run(
        event="booking.created", name="Rahima Khatun", email="r@example.com", otp="123456",
        refresh_token="abc", phone="+8801712345678", passengers=[{"name": "X"}], seats=[3, 4],
    )  # fmt: skip
    assert out["name"] == out["email"] == out["otp"] == out["refresh_token"] == out["passengers"] == REDACTED
    assert out["phone"] == "+88017*****678"
    assert out["seats"] == [3, 4] and out["event"] == "booking.created"


@pytest.mark.parametrize(
    "key",
    ["surname", "first_name", "last_name", "given_name", "family_name", "username", "user_name",
     "address", "date_of_birth", "dob", "national_id", "nid", "passport", "passport_number"],
)  # fmt: skip
def test_a_passengers_other_particulars_are_personal_by_name(key: str) -> None:
    """A name, an address, a birth date or an identity document's number has no pattern either."""
    out = run(event="x", **{key: "Rahima Khatun 1990"}, context={"contact": {key: "Uddin"}})
    assert out[key] == REDACTED and out["context"] == {"contact": {key: REDACTED}}
    assert scrub_query(f"from=DA&{key}=Rahima+Khatun") == f"from=DA&{key}={REDACTED}"


def test_nested_fields_are_cleaned_too() -> None:
    out = run(event="x", context={"user": {"email": "a@b.co", "id": 7}, "note": "call 01812345678"})
    assert out["context"] == {"user": {"email": REDACTED, "id": 7}, "note": "call 018123*****678"}


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (
            "[SQL: INSERT INTO bookings ...]\n[parameters: ('Rahim Uddin', 'r@x.com')]\n(Background...)",
            "Rahim",
        ),
        ("DETAIL:  Key (phone)=(+8801712345678) already exists.", "+8801712345678"),
        ("DETAIL:  Key (name, age)=(Karim (Jr), 30) conflicts", "Karim"),
        ("sent to nasrin.akter@example.com.bd", "nasrin"),
        ("'+8801712345678' is not a Bangladeshi mobile number", "712345"),
        ("number 8801912345678 and 01512345678", "912345"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "eyJzdWIi"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("header was Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpw"),
        ("Your Jatra code is 483920. It expires in 5 minutes.", "483920"),
        ("OTP: 4839", "4839"),
        # percent-encoded, as in a URL's path or query
        ("to=nasrin.akter%40example.com&x=1", "nasrin"),
        ("phone=%2B8801712345678", "712345"),
        ("/api/v1/users/nasrin%40example.com/otp%3D483920", "483920"),
        # encoded twice and three times: "%25" is an encoded "%"
        ("to=nasrin.akter%2540example.com", "nasrin"),
        ("phone=%252B8801712345678", "712345"),
        ("/users/nasrin%252540example.com", "nasrin"),
        # hidden again by a later decoding: "%2541" is "%41" once decoded, and "A" twice, a letter the
        # phone number's and the OTP's patterns must not be followed by
        ("tel%3D01712345678%2541", "712345"),
        ("code%3D483920%2541", "483920"),
    ],
)
def test_content_is_scrubbed_of_personal_values(text: str, leak: str) -> None:
    assert leak not in scrub(text)
    assert scrub(scrub(text)) == scrub(text)
    assert leak not in json.dumps(run(event="x", error={"message": text}, detail=text))


def test_text_encoded_more_often_than_is_searched_is_replaced_whole() -> None:
    assert scrub("to=nasrin%2525252540example.com") == REDACTED  # an "@" encoded five times
    assert scrub("to=nasrin%25252540example.com") == "to=[redacted-email]"  # four: searched


LEAKY = [
    "[parameters: ('Rahim Uddin',)]", "Key (phone)=(+8801712345678)", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx.sig",
    "Bearer abcdefgh12345678", "basic dXNlcjpwYXNzd29yZA==", "a@b.co", "+8801712345678", "01712345678",
    "8801912345678", "+4915112345678", "Your code is 483920", "PIN: 4839", "passcode - 992211", "OTP is 1234",
    "otp:123456", "CODE 55555",
    # not ASCII: the patterns' case-blind matching takes a long s for an "s"; Bengali digits are digits
    "Ba\u017fIC dXNlcjpwYXNzd29yZA==", "Bearer\u00a0abcdefgh12345678", "Otp is ০১২৩৪৫",
]  # fmt: skip


@pytest.mark.parametrize("text", LEAKY)
def test_the_quick_filter_never_skips_a_string_a_pattern_would_change(text: str) -> None:
    searched_whole = text
    for pattern, replace in _PATTERNS:
        searched_whole = pattern.sub(replace, searched_whole)
    assert searched_whole != text  # each example is one a pattern changes
    assert scrub(text) == searched_whole  # so the filter must let it through


def _what_a_pattern_matches() -> st.SearchStrategy[str]:
    """Any text with a match of any pattern in it (their look-behinds left out: they only narrow)."""
    return st.one_of(
        st.from_regex(re.compile(p.pattern.replace("(?<![\\w*])", ""), p.flags)) for p, _ in _PATTERNS
    )


@settings(max_examples=400, deadline=None)
@given(_what_a_pattern_matches())
def test_the_quick_filter_lets_through_whatever_a_pattern_matches(text: str) -> None:
    assert _may_be_personal(text)


def test_a_personal_field_loses_its_value_whatever_its_type() -> None:
    out = run(event="x", otp=483920, phone=8801712345678, token=None, attempts=3, context={"a@b.co": 1})
    assert out["otp"] == REDACTED and out["phone"] == "880171*****678"
    assert out["token"] is None and out["attempts"] == 3
    assert out["context"] == {"[redacted-email]": 1}  # keys are searched too


@pytest.mark.parametrize(
    "text", ["0b7c5f2e-4a1d-4000-8000-01712345", "2026-04-07", "JTE8D3492421", "/bookings/42?wait=20"]
)
def test_the_quick_filter_skips_ids_dates_and_ticket_numbers(text: str) -> None:
    # most strings of a booking's events: the filter matched them all when it looked for any four digits
    assert not _may_be_personal(text)


def test_ordinary_values_are_left_alone() -> None:
    text = (
        "GET /api/v1/journeys/1743/seats?from=DA&to=CGP booking 0b7c5f2e-0000-4000-8000-017123456789 "
        "took 12 ms"
    )
    assert scrub(text) == text
    assert run(event="x", status=404, duration_ms=12.5, seat_id=123456789) == {
        "event": "x", "status": 404, "duration_ms": 12.5, "seat_id": 123456789,
    }  # fmt: skip


def test_mask_phone_keeps_only_what_support_needs() -> None:
    assert mask_phone("+8801712345678") == "+88017*****678"
    assert mask_phone("123") == REDACTED


def test_the_logging_pipeline_redacts_structlog_events_and_stdlib_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings({}), "unit")
    structlog.get_logger().info("passenger.seen", name="Rahim", note="mail rahim@example.com")
    try:
        raise ValueError("[parameters: ('Rahim Uddin', '+8801712345678')]")
    except ValueError:
        logging.getLogger("some.library").exception("failed for rahim@example.com")
    out = capsys.readouterr().out
    assert "Rahim" not in out and "rahim@" not in out and "712345" not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["message"] == "passenger.seen" and lines[0]["name"] == REDACTED
    assert "[parameters: redacted]" in json.dumps(lines[1])


@pytest.mark.parametrize(
    ("query", "cleaned"),
    [
        ("from=DA&to=SYT&date=2030-01-01", "from=DA&to=SYT&date=2030-01-01"),  # left as it was
        ("from=DA&passenger=Rahim+Uddin", f"from=DA&passenger={REDACTED}"),  # a name: no pattern finds it
        ("passengers%5B0%5D%5Bname%5D=Karim&x=1", f"passengers%5B0%5D%5Bname%5D={REDACTED}&x=1"),
        ("contact.email=a%40b.com", f"contact.email={REDACTED}"),
        ("phone=%2B8801712345678&from=DA", "phone=+88017*****678&from=DA"),  # as a phone field is masked
        ("q=Rahim%40example.com", "q=[redacted-email]"),  # any other parameter: searched as text
        ("name=&flag&=x", "name=&flag&=x"),  # nothing to empty
    ],
)
def test_a_querys_parameters_named_like_personal_data_lose_their_values(query: str, cleaned: str) -> None:
    assert scrub_query(query) == cleaned


@pytest.mark.parametrize(
    ("query", "cleaned"),
    [
        ("from=DA%26passenger%3DRahim+Uddin", REDACTED),  # a name in another's value, encoded
        ("from=DA%2526passenger%253DRahim", REDACTED),  # encoded twice
        ("from=DA%26to%3DCT&date=2030-01-01", "from=DA%26to%3DCT&date=2030-01-01"),  # nothing named
        ("passengers%5B0%5D%5Bname%5D=Karim", f"passengers%5B0%5D%5Bname%5D={REDACTED}"),  # named as sent
        # each parameter judged on its own: a count over the whole query was offset by one lost decoded
        ("passenger=%26&from=DA%26name%3DKarim", REDACTED),
        ("x%3Dname=1&from=DA%26passenger%3DKarim", REDACTED),
        ("passenger%3DRahim", REDACTED),  # no "=" as sent
        ("cursor=abc%3D%3D&limit=5", "cursor=abc%3D%3D&limit=5"),  # an encoded "=" that hides nothing
        ("mobile=Rahim+Uddin", f"mobile={REDACTED}"),  # a name given as a phone: nothing of it kept
    ],
)
def test_a_parameter_named_only_once_decoded_takes_the_whole_query(query: str, cleaned: str) -> None:
    assert scrub_query(query) == cleaned


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("/journeys?passenger=Rahim Uddin&from=DA", f"/journeys?{REDACTED}"),  # an encoded "?", decoded
        ("/journeys?from=DA", "/journeys?from=DA"),
        ("/journeys?from=DA%26passenger%3DRahim", f"/journeys?{REDACTED}"),  # decoded once, still hiding one
        ("/journeys?passenger%253DRahim", f"/journeys?{REDACTED}"),
        ("/users/rahim@example.com", "/users/[redacted-email]"),
        ("/bookings/6b110856-58dd-4ba7-8aed-77275002d0f6", "/bookings/6b110856-58dd-4ba7-8aed-77275002d0f6"),
    ],
)
def test_a_decoded_path_loses_a_query_named_like_personal_data(path: str, cleaned: str) -> None:
    assert scrub_url(path) == cleaned
    assert run(**{"url.path": path})["url.path"] == cleaned  # the chain, as the access log


def test_the_chain_cleans_a_query_field_as_the_access_log_does() -> None:
    event = run(**{"url.query": "passenger=Rahim+Uddin&to=rahim%40example.com"})
    assert event["url.query"] == f"passenger={REDACTED}&to=[redacted-email]"
