from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jatra.stack.base import StackContext
from jatra.stack.monitoring import prometheus_config
from jatra.stack.ports import APP_OFFSETS, MAX_API_REPLICAS, Ports, api_replica
from jatra.stack.procs import MissingBinaryError, find_binary
from jatra.stack.stores import Redis


def test_a_missing_binary_names_itself_and_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError) as caught:
        Redis().argv(StackContext(tmp_path, Ports(40000)))
    message = str(caught.value)
    assert "redis-server is not installed" in message
    assert "apt-get install -y redis-server" in message


def test_absolute_globs_are_searched() -> None:
    with pytest.raises(MissingBinaryError, match="nope"):
        find_binary(["/nonexistent/*/nope"], "nope-package")


def test_ports_do_not_collide() -> None:
    p = Ports(17000)
    servers = [getattr(p, n) for n in dir(p) if n not in {"base", "api"} and isinstance(getattr(p, n), int)]
    apps = [p.app(name) for name in APP_OFFSETS]
    replicas = [p.app(api_replica(n)) for n in range(1, MAX_API_REPLICAS + 1)]
    used = servers + apps + replicas
    assert len(used) == len(set(used)) >= 15 + MAX_API_REPLICAS
    assert max(used) - p.base < 100
    with pytest.raises(ValueError, match="out of range"):
        p.app(api_replica(MAX_API_REPLICAS + 1))


def test_prometheus_scrapes_each_api_replica_and_never_the_shared_port(tmp_path: Path) -> None:
    ctx = StackContext(tmp_path, Ports(40000), api_replicas=3)
    config = yaml.safe_load(prometheus_config(ctx))
    [jatra] = [job for job in config["scrape_configs"] if job["job_name"] == "jatra"]
    api = next(c for c in jatra["static_configs"] if c["labels"]["process"] == "api")
    assert api["targets"] == ["127.0.0.1:40061", "127.0.0.1:40062", "127.0.0.1:40063"]
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert "127.0.0.1:40000" not in targets
    assert all(
        c["labels"]["environment"] == "dev" for job in config["scrape_configs"] for c in job["static_configs"]
    )
