"""Personal data out of every log event: the last step of the logging pipeline, before rendering.

Logs are shipped to Elasticsearch and archived for years, so names, phone numbers, e-mail addresses,
one-time passwords, tokens and SQL parameters never reach them. Two passes:

- by key: a field named like personal data (``name``, ``email``, ``otp``, ``token`` ...) loses its value;
  a phone number keeps its first six and last three digits, so support can still match a complaint;
- by content: every other string (messages, error details, stack traces, URLs) is searched for e-mail
  addresses, phone numbers, JWTs, bearer tokens, OTPs, SQL parameter lists and the values Postgres
  quotes in its error details, and those are replaced.

The code that logs is expected not to log such values at all; this step is the net under it. A test scans
the logs of a whole Eid rush for the data its passengers used.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"
#: fields whose value is personal whatever it looks like
PERSONAL_KEYS = frozenset(
    {
        "name", "names", "passenger", "passengers", "passenger_name", "full_name",
        "email", "e-mail", "contact_email", "to_address", "recipient",
        "otp", "code_plain", "password", "secret", "token", "access_token", "refresh_token",
        "authorization", "cookie", "set-cookie", "id_token", "api_key",
        "body", "request_body", "response_body", "parameters", "params",
    }
)  # fmt: skip
PHONE_KEYS = frozenset({"phone", "phone_number", "msisdn", "mobile"})
#: fields the pipeline itself fills with values that are never personal: not searched
SAFE_KEYS = frozenset(
    {
        "@timestamp", "log.level", "log.logger", "trace.id", "span.id", "service.name", "service.version",
        "service.environment", "event.dataset", "ecs.version", "http.request.method", "http.route",
        "http.response.status_code", "event.duration", "process.pid",
    }
)  # fmt: skip


def mask_phone(phone: str) -> str:
    """``+8801712345678`` -> ``+88017*****678``: enough for support, not enough to call."""
    digits = phone.strip()
    if len(digits) < 9:
        return REDACTED
    return digits[:6] + "*****" + digits[-3:]


_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # SQLAlchemy's "[parameters: (...)]" and asyncpg's "$1 = ..." echo every bound value
    (re.compile(r"\[parameters: .*?\]\n?|\[parameters: .*$", re.DOTALL), lambda m: "[parameters: redacted]"),
    # Postgres error details quote the row: Key (phone)=(+8801...) already exists
    (re.compile(r"\(([\w, ]+)\)=\((?:[^()]|\([^()]*\))*\)"), lambda m: f"({m.group(1)})=({REDACTED})"),
    (re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]*"), lambda m: "[redacted-jwt]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]{8,}"), lambda m: f"{m.group(1)} [redacted]"),
    (re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"), lambda m: "[redacted-email]"),
    (re.compile(r"(?<![\w*])\+?(?:88)?01[3-9]\d{8}\b"), lambda m: mask_phone(m.group(0))),
    (re.compile(r"(?<![\w*])\+\d{10,14}\b"), lambda m: mask_phone(m.group(0))),
    (re.compile(r"(?i)\b(otp|code|passcode|pin)\b(\W{1,4}(?:is\W{1,3})?)\d{4,8}\b"),
     lambda m: f"{m.group(1)}{m.group(2)}******"),
]  # fmt: skip
#: what every match of a pattern above contains, so a string without any is left as it is: an e-mail's
#: "@", a phone's "+" or its 11 digits in a row, the OTP pattern's keywords ("passcode" holds "code"), ...
#: It is only a filter (a false match costs the full search), so it need not be exact, only never miss:
#: it was ``\d{4}``, which every UUID, date and ticket number matched (most strings of a booking's events)
_QUICK = re.compile(r"[@+]|eyJ|earer|asic|parameters|\)=\(|\d{10}|otp|code|pin", re.IGNORECASE)


def scrub(text: str) -> str:
    """``text`` with every personal value the patterns know replaced."""
    if not _QUICK.search(text):
        return text
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def _clean(key: str, value: object) -> object:
    lowered = key.lower().rsplit(".", 1)[-1]
    if lowered in PHONE_KEYS and isinstance(value, str):
        return mask_phone(value) if "*" not in value else value
    if lowered in PERSONAL_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(key, v) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the event with personal data removed (see the module docstring)."""
    for key, value in list(event_dict.items()):
        if key in SAFE_KEYS or key.startswith("_") or isinstance(value, int | float | bool) or value is None:
            continue
        event_dict[key] = _clean(key, value)
    return event_dict
