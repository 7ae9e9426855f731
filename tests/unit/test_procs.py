from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from jatra.gateway.routes import SERVICES
from jatra.stack.apps import jatra_processes, programs
from jatra.stack.base import StackContext
from jatra.stack.gateway import Gateway
from jatra.stack.monitoring import add_target, clear_targets, prometheus_config, remove_target
from jatra.stack.ports import APP_OFFSETS, MAX_API_REPLICAS, Ports, api_replica
from jatra.stack.procs import MissingBinaryError, find_binary, pids_naming, spawn, stop_pid, wait_until
from jatra.stack.stores import Redis, RedisClusterNode


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
    """The Jatra processes are found in one file each, written as they start: each API replica on its own
    port, never the shared API port (nor the gateway's)."""
    ctx = StackContext(tmp_path, Ports(40000), api_replicas=3)
    config = yaml.safe_load(prometheus_config(ctx))
    [jatra] = [job for job in config["scrape_configs"] if job["job_name"] == "jatra"]
    [found] = jatra["file_sd_configs"]
    for n in range(1, 4):
        add_target(ctx, api_replica(n), ctx.ports.app(api_replica(n)), "api")
    add_target(ctx, "catalog", ctx.ports.app("catalog"), "catalog")
    remove_target(ctx, api_replica(3))
    files = sorted(Path(found["files"][0]).parent.glob(Path(found["files"][0]).name))
    entries = [entry for path in files for entry in json.loads(path.read_text())]
    api = sorted(t for e in entries if e["labels"]["process"] == "api" for t in e["targets"])
    assert api == ["127.0.0.1:40061", "127.0.0.1:40062"]
    targets = [t for e in entries for t in e["targets"]]
    static = [c for job in config["scrape_configs"] for c in job.get("static_configs", [])]
    targets += [t for c in static for t in c["targets"]]
    assert "127.0.0.1:40000" not in targets and "127.0.0.1:40019" not in targets
    assert "127.0.0.1:40016" in targets
    assert all(e["labels"]["environment"] == "dev" for e in entries)
    assert all(c["labels"]["environment"] == "dev" for c in static)
    clear_targets(ctx)
    assert not list(Path(found["files"][0]).parent.glob("*.json"))


def test_split_mode_runs_one_process_per_service_and_all_in_one_none() -> None:
    split = [p.name for p in jatra_processes(2, split=True)]
    together = [p.name for p in jatra_processes(2)]
    assert split[:4] == list(SERVICES) and together[:2] == ["api-1", "api-2"]
    assert split[4:] == together[2:]  # the same workers in both modes
    assert not set(SERVICES) & set(together) and not {"api-1", "api-2"} & set(split)
    assert {p.name for p in programs()} >= set(split) | set(together)  # supervisord knows both modes


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx")
def test_the_local_gateway_configuration_passes_nginx_t(tmp_path: Path) -> None:
    """`nginx -t` on the configuration `jatra up --split` writes: on its own port and the API port, one
    upstream per service on the service's own port."""
    ctx = StackContext(tmp_path, Ports(40000))
    gateway = Gateway(on_api_port=True)
    gateway.prepare(ctx)
    ctx.log("gateway").parent.mkdir(parents=True, exist_ok=True)
    text = gateway.conf_file(ctx).read_text()
    assert "listen 127.0.0.1:40019 reuseport;" in text and "listen 127.0.0.1:40000 reuseport;" in text
    for service in SERVICES:
        assert f"server 127.0.0.1:{ctx.ports.app(service)} max_fails=3" in text
    argv = gateway.argv(ctx)
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert not Gateway().site(ctx).also_listen  # the tests' gateway, next to the all-in-one API: its own port


def test_only_the_standalone_redis_listens_on_the_platforms_socket(tmp_path: Path) -> None:
    """The cluster's nodes are Redis servers too: one of them on the same socket path took it over, and the
    platform's processes found a cluster node (MOVED) where their Redis was."""
    ctx = StackContext(tmp_path, Ports(40000))
    standalone = Redis().argv(ctx)
    socket = tmp_path.resolve() / "data" / "redis" / "redis-40020.sock"
    assert standalone[standalone.index("--unixsocket") + 1] == str(socket)
    assert "--unixsocket" not in RedisClusterNode(0).argv(ctx)


def test_a_process_is_found_by_a_path_it_names_and_not_by_a_longer_one(tmp_path: Path) -> None:
    named = tmp_path / "drill" / "T-12"
    longer = tmp_path / "drill" / "T-123"
    # sh -c takes the argument after its script as $0: a command line that names the path, as pgBackRest's
    pids = [
        spawn(["/bin/sh", "-c", "sleep 30; :", f"--config={p}/pgbackrest.conf"], tmp_path / "log")
        for p in (named, longer)
    ]
    try:
        # the children name the paths once they have exec'd, in whatever order; each sh forks its sleep, and
        # the fork names the path too until it execs: wait for each path to be named by its own sh alone
        # (a match on a prefix would find both for the shorter path, and never settle)
        wait_until(
            lambda: pids_naming(named) == [pids[0]] and pids_naming(longer) == [pids[1]], 10, "each sh alone"
        )
    finally:
        for pid in pids:
            stop_pid(pid)
