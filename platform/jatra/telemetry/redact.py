"""Personal data out of every log event: the last step of the logging pipeline, before rendering.

Logs are shipped to Elasticsearch and archived for years, so names, phone numbers, e-mail addresses,
one-time passwords, tokens and SQL parameters never reach them. Two passes:

- by key: a field named like personal data (``name``, ``email``, ``otp``, ``token`` ...) loses its value;
  a phone number keeps its first six and last three digits, so support can still match a complaint;
- by content: every other string (messages, error details, stack traces, URLs) is searched for e-mail
  addresses, phone numbers, JWTs, bearer tokens, OTPs, SQL parameter lists and the values Postgres
  quotes in its error details, and those are replaced;
- a URL's query (``url.query``) both ways: each parameter named like personal data by key, then the
  whole by content (`scrub_query`); a path (``url.path``, decoded) by content, and the query its decoding
  revealed (an encoded "?") as a decoded query is (`scrub_url`).

The code that logs is expected not to log such values at all; this step is the net under it. A test scans
the logs of a whole Eid rush for the data its passengers used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import unquote, unquote_plus

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"
#: fields whose value is personal whatever it looks like
PERSONAL_KEYS = frozenset(
    {
        "name", "names", "passenger", "passengers", "passenger_name", "full_name",
        "surname", "first_name", "last_name", "middle_name", "given_name", "family_name", "display_name",
        "username", "user_name", "nickname", "address", "home_address", "street", "dob", "date_of_birth",
        "birth_date", "birthdate", "nid", "national_id", "passport", "passport_number",
        # the same run together (camelCase, lower-cased when judged) or hyphenated
        "passengername", "fullname", "firstname", "lastname", "middlename", "givenname", "familyname",
        "displayname", "homeaddress", "dateofbirth", "nationalid", "passportnumber", "contactemail",
        "full-name", "first-name", "last-name", "date-of-birth",
        "email", "e-mail", "contact_email", "to_address", "recipient",
        "otp", "code_plain", "password", "secret", "token", "access_token", "refresh_token",
        "authorization", "cookie", "set-cookie", "id_token", "api_key",
        "body", "request_body", "response_body", "parameters", "params",
    }
)  # fmt: skip
PHONE_KEYS = frozenset({"phone", "phone_number", "phonenumber", "phone-number", "msisdn", "mobile"})
#: fields the pipeline itself fills with values that are never personal: not searched
SAFE_KEYS = frozenset(
    {
        "@timestamp", "log.level", "log.logger", "trace.id", "span.id", "service.name", "service.version",
        "service.environment", "event.dataset", "ecs.version", "http.request.method", "http.route",
        "http.response.status_code", "event.duration", "process.pid", "process.thread.name", "error.type",
    }
)  # fmt: skip


def mask_phone(phone: str) -> str:
    """``+8801712345678`` -> ``+88017*****678``: enough for support, not enough to call."""
    digits = phone.strip()
    if len(digits) < 9 or not _PHONE_LIKE.fullmatch(digits):  # a name given as a phone: nothing of it kept
        return REDACTED
    return digits[:6] + "*****" + digits[-3:]


#: what a phone number written by a person looks like: digits, a leading "+", spaces, dashes, brackets
_PHONE_LIKE = re.compile(r"\+?[\d ().-]+")


_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # SQLAlchemy's "[parameters: (...)]" and asyncpg's "$1 = ..." echo every bound value
    (re.compile(r"\[parameters: .*?\]\n?|\[parameters: .*$", re.DOTALL), lambda m: "[parameters: redacted]"),
    # Postgres error details quote the row: Key (phone)=(+8801...) already exists
    (re.compile(r"\(([\w, ]+)\)=\((?:[^()]|\([^()]*\))*\)"), lambda m: f"({m.group(1)})=({REDACTED})"),
    (re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"), lambda m: "[redacted-jwt]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), lambda m: f"{m.group(1)} [redacted]"),
    # from the start of a run only (the lookbehind): tried at every position of a long run, the search
    # took time quadratic in its length (an 8 KB path of letters and an "@": 152 ms)
    (re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"), lambda m: "[redacted-email]"),
    (re.compile(r"(?<![\w*])\+?(?:88)?01[3-9]\d{8}\b"), lambda m: mask_phone(m.group(0))),
    (re.compile(r"(?<![\w*])\+\d{10,14}\b"), lambda m: mask_phone(m.group(0))),
    (re.compile(r"(?i)\b(otp|code|passcode|pin)\b(\W{1,4}(?:is\W{1,3})?)\d{4,8}\b"),
     lambda m: f"{m.group(1)}{m.group(2)}******"),
]  # fmt: skip
_DIGITS = re.compile(r"\d{10}")


def _may_be_personal(text: str) -> bool:
    """Whether ``text`` holds what every match of a pattern above contains: an e-mail's "@", a phone's
    "+" or ten of its (11) digits in a row, the OTP pattern's keywords ("passcode" holds "code"), and so
    on. Only a filter (a false "yes" costs the full search), so it need not be exact, only never say no to
    a string a pattern would change (tests hold it to that). Substring tests, ~0.6 µs a short string: a
    regex of the same alternatives took ~1.8, and the one before looked for any four digits, which every
    UUID, date and ticket number has (most strings of a booking's events). Text that is not ASCII is
    searched whole: the patterns' case-blind matching knows more letters than ``lower()`` does (a long s
    is an "s" to it)."""
    if not text.isascii():
        return True
    if "@" in text or "+" in text or "eyJ" in text or ")=(" in text or "parameters" in text:
        return True
    lowered = text.lower()
    if "earer" in lowered or "asic" in lowered or "otp" in lowered or "code" in lowered or "pin" in lowered:
        return True
    return _DIGITS.search(text) is not None


#: how often percent-encoded text is decoded, at most, to search it (``%2540`` is an "@" encoded twice)
DECODE_ROUNDS = 4


def scrub(text: str) -> str:
    """``text`` with every personal value the patterns know replaced. Percent-encoded text (a URL's path or
    query: ``rahim%40example.com``, ``%2B8801712345678``, or encoded twice: ``rahim%2540example.com``) is
    searched decoded too, after each decoding until one changes nothing; the first decoding in which a
    pattern finds something is kept, scrubbed, since no pattern knows the encoded form (each round is
    searched: a value can show at one round and be hidden at the next, ``01712345678%2541`` ends in a
    digit once decoded twice). Text still encoded after ``DECODE_ROUNDS`` decodings is replaced whole."""
    if "%" in text:
        decoded = text
        for decoded in _decodings(text, unquote):
            cleaned = _scrub(decoded)
            if cleaned != decoded:
                return cleaned
        if unquote(decoded) != decoded:
            return REDACTED
    return _scrub(text)


def _decodings(text: str, decode: Callable[[str], str]) -> Iterator[str]:
    """Each decoding of ``text`` that changes it, at most ``DECODE_ROUNDS``."""
    for _ in range(DECODE_ROUNDS):
        once = decode(text)
        if once == text:
            return
        text = once
        yield text


#: the last word of a parameter's name: ``passengers[0][name]`` and ``contact.email`` are named by it (a
#: word's start only, the lookbehind: tried at every position of a long run, the search took time quadratic
#: in its length, ~1 s for an 8 KB name)
_LAST_WORD = re.compile(r"(?<![\w-])[\w-]+(?=[^\w-]*$)")
#: how much of a parameter's name is looked at, from its end (the longest field name has 14 characters)
NAME_TAIL = 64
#: the verdict of each parameter name seen (``from``, ``to``, ``date`` ...), as `_KINDS` keeps field names
_QUERY_KINDS: dict[str, int] = {}


def _parameter_kind(key: str) -> int:
    """What a query parameter's name says of its value, as a field's name would (decoded as often as
    `scrub` decodes text: ``%255B`` is a "[" encoded twice)."""
    kind = _QUERY_KINDS.get(key)
    if kind is None:
        name = [key, *_decodings(key, unquote_plus)][-1]  # the last decoding
        word = _LAST_WORD.search(name[-NAME_TAIL:])
        kind = _kind_of(word.group(0)) if word else _SEARCHED
        if len(_QUERY_KINDS) < KINDS_KEPT and len(key) <= NAME_TAIL:
            _QUERY_KINDS[key] = kind
    return kind


def scrub_query(query: str) -> str:
    """A URL's query, as sent (percent-encoded), with each parameter named like personal data
    (``passenger=Rahim+Uddin``, ``phone=...``) losing its value as a log field of that name would (a name
    has no pattern to be found by), then `scrub`-bed as any text. The rest of the query keeps its form;
    all of it goes when a parameter hides one named like personal data behind an encoded "&" or "="
    (``from=DA%26passenger%3DRahim``, ``passenger%3DRahim``: `_hides_a_name`)."""
    if "%" in query and _hides_a_name(query):
        return REDACTED
    if "=" in query:
        parts = query.split("&")
        for i, key, value, kind in _parameters(parts):
            if kind == _PERSONAL:
                parts[i] = f"{key}={REDACTED}"
            elif kind == _PHONE:
                parts[i] = f"{key}={mask_phone(unquote(value))}"
        query = "&".join(parts)
    return scrub(query)


#: an encoded "&" or "=", encoded once or more (``%26``, ``%253D``)
_ENCODED_SEPARATOR = re.compile(r"%(?:25)*(?:26|3d)", re.IGNORECASE)


def _hides_a_name(query: str) -> bool:
    """Whether a parameter of ``query`` not emptied by its own name holds an encoded "&" or "=" and, decoded
    (as often as `scrub` decodes), has a parameter named like personal data. Each parameter is judged on
    its own, and only one with an encoded separator is decoded (linear in the query)."""
    for part in query.split("&"):
        if not _ENCODED_SEPARATOR.search(part):
            continue
        key, equals, value = part.partition("=")
        if equals and value and _parameter_kind(key) == _PERSONAL:
            continue  # emptied whole anyway (a phone's is masked, keeping some of it: judged here)
        if any(names_personal(decoded) for decoded in _decodings(part, unquote_plus)):
            return True
    return False


def scrub_url(value: str) -> str:
    """A URL or a path as a client sent it, already decoded (a path's encoded "?" is a "?" here, and in
    OpenTelemetry's ``http.url`` an encoded "&" in a value is a separator): its query goes whole when a
    parameter is named like personal data, or hides one (`_hides_a_name`); the rest is `scrub`-bed."""
    base, mark, query = value.partition("?")
    if not mark:
        return scrub(value)
    hidden = names_personal(query) or ("%" in query and _hides_a_name(query))
    return scrub(base) + mark + (REDACTED if hidden else scrub(query))


#: the fields that hold what a client sent as a URL's query or its path, and how each is scrubbed
URL_KEYS: dict[str, Callable[[str], str]] = {"url.query": scrub_query, "url.path": scrub_url}


def _parameters(parts: list[str]) -> Iterator[tuple[int, str, str, int]]:
    """Each of a query's parameters that has a value: its place, name, value and what its name says."""
    for i, part in enumerate(parts):
        key, equals, value = part.partition("=")
        if equals and value:
            yield i, key, value, _parameter_kind(key)


def names_personal(query: str) -> bool:
    """Whether a parameter of ``query`` with a value is named like personal data. For a query already
    decoded (`scrub_url`), where an encoded "&" in a value became a separator, so only the whole query can
    be dropped."""
    return any(kind != _SEARCHED for *_, kind in _parameters(query.split("&")))


def _scrub(text: str) -> str:
    if not _may_be_personal(text):
        return text
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


#: what a field's name says of its value: personal whatever it is, a phone, or to be searched
_PERSONAL, _PHONE, _SEARCHED = range(3)
#: the verdict of each top-level field name, once per process: those names are the code's own (keyword
#: arguments of log calls), so this stays small; nested keys, which can come from data, are not kept
_KINDS: dict[str, int] = {}
KINDS_KEPT = 1024
#: values of a searched field never searched: numbers and None (exactly these types)
_PLAIN = frozenset({int, float, bool, type(None)})


def _kind_of(key: str) -> int:
    lowered = key.lower().rsplit(".", 1)[-1]
    return _PHONE if lowered in PHONE_KEYS else _PERSONAL if lowered in PERSONAL_KEYS else _SEARCHED


def _top_kind(key: str) -> int:
    kind = _KINDS.get(key)
    if kind is None:
        kind = _kind_of(key)
        if len(_KINDS) < KINDS_KEPT and len(key) <= 64:
            _KINDS[key] = kind
    return kind


def _clean(key: str, value: object, kind: int) -> object:
    if kind == _PERSONAL:
        return None if value is None else REDACTED
    if kind == _PHONE and isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        return text if "*" in text else mask_phone(text)
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): _clean(str(k), v, _kind_of(str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v, kind) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the event with personal data removed (see the module docstring). A personal
    field loses its value whatever its type (an OTP logged as a number too)."""
    for key, value in list(event_dict.items()):
        if key in SAFE_KEYS or key.startswith("_"):
            continue
        if key in URL_KEYS and isinstance(value, str):
            event_dict[key] = URL_KEYS[key](value)
            continue
        kind = _top_kind(key)
        if kind == _SEARCHED and type(value) in _PLAIN:
            continue
        event_dict[key] = _clean(key, value, kind)
    return event_dict
