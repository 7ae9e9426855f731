"""A log line -> the bulk action that indexes it: its data stream, its ``_id`` and the document.

A line is indexed as the process wrote it, plus the ECS ``data_stream`` fields. A JSON object is not
decoded and encoded again: only the two fields the choice needs are read from it (``msgspec``, which skips
the rest), and the ``data_stream`` object is written in before its closing brace; a line that carries a
``data_stream`` of its own, has no string ``@timestamp`` or is not UTF-8 takes the long way (decoded, the
fields set, encoded), as every line did before. One difference: a line that writes a key twice (structlog
never does) goes out as written, and Elasticsearch refuses it (a key twice is an error there), so it is
set aside with the reason; decoded whole, the last value used to win. The data stream is
``logs-<dataset>-<namespace>``: the dataset is the line's ``event.dataset`` (``jatra.api``), the namespace
the deployment's environment. Elastic's naming scheme allows no ``-`` inside either part, so one becomes
``_`` there (``jatra.payment-provider`` -> ``logs-jatra.payment_provider-dev``); ``event.dataset`` itself is
left as written.

A line that is not a JSON object (something a process printed on stderr, which supervisord puts in the
same file; an uncaught exception is logged as an event instead, `jatra.telemetry.uncaught`) is wrapped,
never dropped: its text, redacted, is the ``message``, tagged ``unstructured``, in the dataset of the
process (``api-1`` -> ``jatra.api``: replicas share one), with the file and offset it came from. Every
choice here depends on the line and the settings only, so a line read twice gets the same ``_index`` and
``_id``, and Elasticsearch refuses the second copy.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from jatra.infra.logfiles import Line
from jatra.telemetry.redact import scrub

ECS_VERSION = "1.6.0"
UNSTRUCTURED = "unstructured"
_NOT_ALLOWED = re.compile(r"[^a-z0-9._]")
_REPLICA = re.compile(r"-\d+$")


@dataclass(frozen=True, slots=True)
class Action:
    """One ``create`` of a bulk request (a data stream takes only creates; a second one is a 409)."""

    index: str  # the data stream: [a-z0-9._-] only (see part)
    id: str  # hex (Line.id)
    document: bytes  # the JSON object sent as the ``_source``

    def header(self) -> bytes:
        return b'{"create":{"_index":"%s","_id":"%s"}}' % (self.index.encode(), self.id.encode())


class _Head(msgspec.Struct):
    """What the choice reads of a JSON line; every other field is skipped unread."""

    timestamp: Any = msgspec.field(default=None, name="@timestamp")
    event: Any = None
    dotted_dataset: Any = msgspec.field(default=msgspec.UNSET, name="event.dataset")
    data_stream: Any = msgspec.UNSET


_head = msgspec.json.Decoder(_Head).decode
_encode = msgspec.json.Encoder().encode


def part(value: str) -> str:
    """A dataset or namespace as a data stream name part: lowercase, ``[a-z0-9._]``, at most 100 long."""
    cleaned = _NOT_ALLOWED.sub("_", value.lower()).lstrip("._")[:100]
    return cleaned or "unknown"


def data_stream(dataset: str, namespace: str) -> str:
    return f"logs-{part(dataset)}-{part(namespace)}"


def source_dataset(source: str) -> str:
    """The dataset of a process by its log's name: ``api-2`` -> ``jatra.api``."""
    return f"jatra.{_REPLICA.sub('', source)}"


def field(doc: dict[str, Any], path: str) -> Any:
    """A field by its dotted path, written either dotted (``"event.dataset"``) or nested."""
    if path in doc:
        return doc[path]
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wrapped(line: Line, text: str, namespace: str, path: str) -> dict[str, Any]:
    dataset = source_dataset(line.source)
    return {
        "@timestamp": _now(),
        "message": scrub(text),  # not written by the redacting pipeline: searched here
        "tags": [UNSTRUCTURED],
        "ecs.version": ECS_VERSION,
        "event": {"dataset": dataset},
        "service": {"name": f"jatra-{dataset.removeprefix('jatra.')}", "environment": namespace},
        "log": {"file": {"path": path}, "offset": line.offset},
    }


def _stream(dataset: str, namespace: str) -> dict[str, str]:
    return {"type": "logs", "dataset": part(dataset), "namespace": part(namespace)}


def _dataset(found: Any, line: Line) -> str:
    return found if isinstance(found, str) and found else source_dataset(line.source)


def _as_written(line: Line, namespace: str) -> Action | None:
    """The action for a UTF-8 JSON object with a string ``@timestamp`` and no ``data_stream``, without
    decoding it whole; None for any other line."""
    raw = line.raw
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        head = _head(raw)
    except msgspec.DecodeError:  # not JSON, or not an object (a ValidationError is one)
        return None
    if not isinstance(head.timestamp, str) or head.data_stream is not msgspec.UNSET:
        return None
    if head.dotted_dataset is not msgspec.UNSET:  # written dotted: it wins, as in field()
        dataset = _dataset(head.dotted_dataset, line)
    else:
        nested = head.event.get("dataset") if isinstance(head.event, dict) else None
        dataset = _dataset(nested, line)
    body = raw.rstrip()[:-1].rstrip()  # a JSON object: its last byte is its closing brace
    joint = b"" if body.endswith(b"{") else b","
    document = body + joint + b'"data_stream":' + _encode(_stream(dataset, namespace)) + b"}"
    return Action(data_stream(dataset, namespace), line.id, document)


def action(line: Line, namespace: str, log_dir: str = "") -> Action:
    """The ``create`` action for one line (``namespace``: the deployment's environment)."""
    if (fast := _as_written(line, namespace)) is not None:
        return fast
    text = line.raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        doc: dict[str, Any] = parsed
        if not isinstance(doc.get("@timestamp"), str):
            doc["@timestamp"] = _now()
        dataset = _dataset(field(doc, "event.dataset"), line)
    else:
        doc = wrapped(line, text, namespace, f"{log_dir}/{line.source}.log" if log_dir else line.source)
        dataset = doc["event"]["dataset"]
    doc["data_stream"] = _stream(dataset, namespace)
    document = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return Action(data_stream(dataset, namespace), line.id, document)
