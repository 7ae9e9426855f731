"""`jatra up|status|down` as a user runs them: idempotent, and clear about what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jatra.stack.manager import Stack
from jatra.stack.ports import Ports
from jatra.stack.procs import port_open
from jatra.stack.stores import Epmd, RabbitMQ, Redis

pytestmark = pytest.mark.integration
JATRA = [sys.executable, "-m", "jatra"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*JATRA, *args], capture_output=True, text=True, env=env, timeout=180, check=False)


def test_up_twice_breaks_nothing(monitoring: Stack) -> None:
    before = {r.name: r.pids for r in monitoring.status()}
    first = run("up", "--no-apps")
    assert first.returncode == 0, first.stderr
    second = run("up", "--no-apps")
    assert second.returncode == 0, second.stderr
    assert "Prometheus" in second.stdout and "make down" in second.stdout
    after = {r.name: r.pids for r in monitoring.status()}
    assert {k: v for k, v in after.items() if k in before} == before  # nothing was restarted
    status = run("status")
    assert status.returncode == 0 and "DOWN" not in status.stdout


def test_a_status_check_leaves_no_error_in_the_postgres_log(monitoring: Stack) -> None:
    """pg_isready as the OS user (root) made Postgres log 'FATAL: role "root" does not exist' at every
    readiness check: every `jatra status`, every CPU meter of a rush, every 5 s of a sampler."""
    log = monitoring.ctx.log("postgres")
    before = log.stat().st_size
    assert any(r.name == "postgres" and r.ready for r in monitoring.status())
    assert any(r.name == "postgres" and r.ready for r in monitoring.status())
    time.sleep(0.5)  # the backend writes its line as it answers
    with log.open("rb") as handle:
        handle.seek(before)
        added = handle.read().decode(errors="replace")
    assert "FATAL" not in added, added


def test_a_missing_binary_is_named_with_its_install_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runuser = shutil.which("runuser")
    if runuser:
        (bin_dir / "runuser").symlink_to(runuser)
    env = {
        **os.environ,
        "PATH": str(bin_dir),
        "JATRA_STATE_DIR": str(tmp_path / "var"),
        "JATRA_PORT_BASE": "29000",
    }
    result = run("up", env=env)
    assert result.returncode == 1
    assert "redis-server is not installed" in result.stderr
    assert "apt-get install -y redis-server" in result.stderr
    assert not port_open(29010), "nothing may start when a binary is missing"
    assert "nothing was running" in run("down", env=env).stdout


def test_down_leaves_no_listener(tmp_path: Path) -> None:
    env = {**os.environ, "JATRA_STATE_DIR": str(tmp_path / "var"), "JATRA_PORT_BASE": "29100"}
    assert "ephemeral" in run("up", env={**env, "JATRA_PORT_BASE": "40000"}).stderr
    refused = run("up", env={**env, "JATRA_API_REPLICAS": "12"})
    assert refused.returncode == 1 and "JATRA_API_REPLICAS must be 1..9, not 12" in refused.stderr
    assert not (tmp_path / "var" / "stack.json").exists(), "nothing may start with a bad replica count"
    stack = Stack(tmp_path / "var", Ports(29100))
    stack.up([Redis(), Epmd(), RabbitMQ()])
    ports = [29120, 29130, 29134]
    assert all(port_open(p) for p in ports)
    result = run("down", env=env)
    assert result.returncode == 0 and "rabbitmq" in result.stdout and "epmd" in result.stdout
    assert not any(port_open(p) for p in ports)
