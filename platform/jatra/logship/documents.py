"""A log line -> the bulk action that indexes it: its data stream, its ``_id`` and the document.

A line is indexed as the process wrote it, plus the ECS ``data_stream`` fields. The data stream is
``logs-<dataset>-<namespace>``: the dataset is the line's ``event.dataset`` (``jatra.api``), the namespace
the deployment's environment. Elastic's naming scheme allows no ``-`` inside either part, so one becomes
``_`` there (``jatra.payment-provider`` -> ``logs-jatra.payment_provider-dev``); ``event.dataset`` itself is
left as written.

A line that is not a JSON object (a traceback a crashing process printed on stderr, which supervisord puts
in the same file) is wrapped, never dropped: its text is the ``message``, tagged ``unstructured``, in the
dataset of the process (``api-1`` -> ``jatra.api``: replicas share one), with the file and offset it came
from. Every choice here depends on the line and the settings only, so a line read twice gets the same
``_index`` and ``_id``, and Elasticsearch refuses the second copy.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from jatra.infra.logfiles import Line

ECS_VERSION = "1.6.0"
UNSTRUCTURED = "unstructured"
_NOT_ALLOWED = re.compile(r"[^a-z0-9._]")
_REPLICA = re.compile(r"-\d+$")

Action = dict[str, Any]


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
        "message": text,
        "tags": [UNSTRUCTURED],
        "ecs.version": ECS_VERSION,
        "event": {"dataset": dataset},
        "service": {"name": f"jatra-{dataset.removeprefix('jatra.')}", "environment": namespace},
        "log": {"file": {"path": path}, "offset": line.offset},
    }


def action(line: Line, namespace: str, log_dir: str = "") -> Action:
    """The ``create`` action for one line (``namespace``: the deployment's environment)."""
    text = line.raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        doc: dict[str, Any] = parsed
        if not isinstance(doc.get("@timestamp"), str):
            doc["@timestamp"] = _now()
        dataset = field(doc, "event.dataset")
        if not isinstance(dataset, str) or not dataset:
            dataset = source_dataset(line.source)
    else:
        doc = wrapped(line, text, namespace, f"{log_dir}/{line.source}.log" if log_dir else line.source)
        dataset = doc["event"]["dataset"]
    doc["data_stream"] = {"type": "logs", "dataset": part(dataset), "namespace": part(namespace)}
    return {"_op_type": "create", "_index": data_stream(dataset, namespace), "_id": line.id, "_source": doc}
