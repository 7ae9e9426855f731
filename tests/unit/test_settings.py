from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from jatra.settings import Settings, load_settings
from jatra.stack import sockets


def test_defaults_point_at_the_local_stack(tmp_path: Path) -> None:
    s = load_settings({"JATRA_STATE_DIR": str(tmp_path)})  # no stack there: no socket, so TCP
    assert s.db_url == f"postgresql+asyncpg://jatra@127.0.0.1:{s.ports.pgbouncer}/jatra"
    assert s.db_admin_url.endswith(f":{s.ports.postgres}/jatra")
    assert s.redis == f"redis://127.0.0.1:{s.ports.redis}/0"


def listening(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


def test_the_local_stack_is_reached_by_its_unix_sockets_once_they_are_there(tmp_path: Path) -> None:
    s = load_settings({"JATRA_STATE_DIR": str(tmp_path)})
    pgbouncer = tmp_path / "conf" / "pgbouncer"
    with (
        listening(pgbouncer / f".s.PGSQL.{s.ports.pgbouncer}"),
        listening(tmp_path / "data" / "redis" / f"redis-{s.ports.redis}.sock"),
    ):
        assert s.db_url == f"postgresql+asyncpg://jatra@/jatra?host={pgbouncer}&port={s.ports.pgbouncer}"
        assert s.redis == f"unix://{tmp_path}/data/redis/redis-{s.ports.redis}.sock?db=0"
        other_stack = dataclasses.replace(s, port_base=s.port_base + 100)  # its own sockets: not there
        assert other_stack.redis == f"redis://127.0.0.1:{other_stack.ports.redis}/0"
        direct = dataclasses.replace(s, database_via_pgbouncer=False)
        assert direct.db_url.startswith("postgresql+asyncpg://jatra@127.0.0.1:")  # Postgres's is not there
        assert s.db_admin_url.endswith(f"127.0.0.1:{s.ports.postgres}/jatra")  # admin and drills: TCP
        assert dataclasses.replace(s, redis_url="redis://cache:6379/0").redis == "redis://cache:6379/0"


@pytest.mark.parametrize("name", ["a b+c&d", "100%", "x#y"])
def test_a_socket_whose_path_a_url_would_have_to_quote_is_not_used(tmp_path: Path, name: str) -> None:
    s = load_settings({"JATRA_STATE_DIR": str(tmp_path / name)})
    with listening(tmp_path / name / "data" / "redis" / f"redis-{s.ports.redis}.sock"):
        assert s.redis == f"redis://127.0.0.1:{s.ports.redis}/0"


def test_a_socket_path_too_long_for_an_address_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings({"JATRA_STATE_DIR": str(tmp_path)})
    path = tmp_path / "data" / "redis" / f"redis-{s.ports.redis}.sock"
    with listening(path):
        assert s.redis.startswith("unix://")
        monkeypatch.setattr(sockets, "SOCKET_PATH_MAX", len(str(path)) - 1)
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
