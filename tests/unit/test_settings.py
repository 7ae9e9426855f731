from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jatra.settings import Settings, load_settings


def test_defaults_point_at_the_local_stack() -> None:
    s = load_settings({})
    assert s.db_url == f"postgresql+asyncpg://jatra@127.0.0.1:{s.ports.pgbouncer}/jatra"
    assert s.db_admin_url.endswith(f":{s.ports.postgres}/jatra")
    assert s.redis == f"redis://127.0.0.1:{s.ports.redis}/0"


def test_environment_variables_are_typed() -> None:
    s = load_settings(
        {"JATRA_PORT_BASE": "20000", "JATRA_TELEMETRY_ENABLED": "no", "JATRA_STATE_DIR": "/tmp/x",
         "JATRA_TRACE_SAMPLE_RATIO": "0.25"}
    )  # fmt: skip
    assert s.port_base == 20000 and s.ports.redis == 20020
    assert s.telemetry_enabled is False
    assert s.state_dir == Path("/tmp/x")
    assert s.trace_sample_ratio == 0.25


@pytest.mark.parametrize(
    ("name", "value"), [("JATRA_PORT_BASE", "abc"), ("JATRA_TELEMETRY_ENABLED", "maybe")]
)
def test_a_malformed_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})


def test_every_field_is_documented_and_secrets_are_masked() -> None:
    s = load_settings({"JATRA_AMQP_URL": "amqp://jatra:s3cret@broker:5672/"})
    rows = {name: (value, doc) for name, value, doc in s.describe()}
    assert len(rows) == len(dataclasses.fields(Settings))
    assert all(doc for _, doc in rows.values())
    assert "s3cret" not in rows["JATRA_AMQP_URL"][0]
    assert rows["JATRA_AMQP_URL"][0] == "amqp://jatra:***@broker:5672/"
