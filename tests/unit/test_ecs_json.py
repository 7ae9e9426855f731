"""The ECS line rendered by msgspec is ecs-logging's document: same fields, same nesting, same head."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import ecs_logging
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from jatra.settings import load_settings
from jatra.telemetry.ecs_json import render_ecs
from jatra.telemetry.log_sink import LineStreamHandler, RootHandlersLogger
from jatra.telemetry.logs import configure_logging

HEAD = ["@timestamp", "log.level", "message"]
names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event whose dotted keys never collide with a plain value (where ecs-logging raises)."""
    paths = draw(st.lists(st.lists(names, min_size=1, max_size=3).map(tuple), max_size=8, unique=True))
    kept = [p for p in paths if not any(q != p and q[: len(p)] == p for q in paths)]  # leaves only
    event = {".".join(p): draw(values) for p in kept if p[0] not in ("event", "exception", "log")}
    event["event"] = draw(st.text(max_size=30))
    return event


def ecs_reference(event: dict[str, Any], level: str = "info") -> str:
    return str(ecs_logging.StructlogFormatter()(None, level, copy.deepcopy(event)))


def parsed_without_time(line: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(line)
    doc.pop("@timestamp")
    return doc


@given(events(), st.sampled_from(["debug", "info", "warning", "error", "critical"]))
def test_the_document_is_ecs_loggings(event: dict[str, Any], level: str) -> None:
    ours = render_ecs(None, level, copy.deepcopy(event))
    reference = ecs_reference(event, level)
    assert parsed_without_time(ours) == parsed_without_time(reference)
    assert list(json.loads(ours))[:3] == HEAD == list(json.loads(reference))[:3]


def test_a_given_timestamp_level_and_exception_are_placed_as_ecs_logging_places_them() -> None:
    event = {
        "event": "payment.failed",
        "@timestamp": "2026-12-03T10:00:00.123Z",
        "log.level": "warning",
        "log.logger": "jatra.payments",
        "error.type": "ProviderDown",
        "exception": "Traceback ...",
        "nested": {"a.b": 1, "c": {"d.e": [1, 2]}},
    }
    ours = render_ecs(None, "info", copy.deepcopy(event))
    assert ours.startswith('{"@timestamp":"2026-12-03T10:00:00.123Z","log.level":"warning","message":')
    assert json.loads(ours) == json.loads(ecs_reference(event))
    assert json.loads(ours)["error"] == {"type": "ProviderDown", "stack_trace": "Traceback ..."}


def test_the_time_is_utc_to_the_millisecond() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = json.loads(render_ecs(None, "info", {"event": "x"}))["@timestamp"]
    assert len(stamp) == len("2026-12-03T10:00:00.123Z") and stamp.endswith("Z")
    assert before <= dt.datetime.fromisoformat(stamp) <= dt.datetime.now(dt.UTC)


def test_a_colliding_dotted_key_is_kept_where_ecs_logging_would_raise_in_the_callers_log_call() -> None:
    event = {"event": "x", "error": "plain", "error.code": 7, "http": {"status": 1}, "http.status": 2}
    with pytest.raises(TypeError):
        ecs_reference(event)
    doc = json.loads(render_ecs(None, "info", event))
    assert doc["error"] == "plain" and doc["error.code"] == 7
    assert doc["http"] == {"status": 1} and doc["http.status"] == 2


def test_text_is_utf8_and_odd_values_are_written_not_raised() -> None:
    class Seat:
        def __repr__(self) -> str:
            return "Seat(A1)"

    class Bound:
        def __structlog__(self) -> str:
            return "bound"

    line = render_ecs(None, "info", {"event": "যাত্রা", "seat": Seat(), "b": Bound(), "n": float("nan")})
    doc = json.loads(line)
    assert "যাত্রা" in line and doc["message"] == "যাত্রা"
    assert doc["seat"] == "Seat(A1)" and doc["b"] == "bound" and doc["n"] is None


def test_structlog_events_and_stdlib_records_end_as_the_same_layout_in_the_log_file(tmp_path: Path) -> None:
    path = tmp_path / "api.log"
    configure_logging(dataclasses.replace(load_settings({}), log_file=str(path)), "unit")
    try:
        structlog.get_logger("jatra.unit").info("seat.held", **{"seat.count": 2})
        logging.getLogger("some.library").warning("pool %s", "exhausted")
        structlog.get_logger("jatra.unit").debug("not.written")  # below the configured level
    finally:
        configure_logging(load_settings({}), "unit")
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert list(first)[:3] == list(second)[:3] == HEAD
    assert first["message"] == "seat.held" and first["seat"] == {"count": 2}
    assert first["log"] == {"logger": "jatra.unit"} and second["log"] == {"logger": "some.library"}
    assert second["message"] == "pool exhausted" and second["log.level"] == "warning"
    assert first["service"]["name"] == second["service"]["name"] == "jatra-unit"


def test_a_logger_asked_for_without_a_name_is_named_after_its_module() -> None:
    assert RootHandlersLogger().name == __name__
    assert RootHandlersLogger("jatra.http").name == "jatra.http"


def test_a_line_that_cannot_be_written_never_fails_the_call_that_logged_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = (tmp_path / "closed.log").open("w")
    stream.close()
    LineStreamHandler(stream).write_line('{"message":"x"}')  # as a stdlib handler's emit, it does not raise
    assert "--- Logging error ---" in capsys.readouterr().err
