"""Start, stop and report the local stack. The CLI (`jatra up|down|status`) and the test fixtures use this."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from jatra.stack.apps import programs
from jatra.stack.base import Server, StackContext
from jatra.stack.elastic import ElasticGateway, Osmem
from jatra.stack.exporters import NodeExporter, PgBouncerExporter, PostgresExporter, RedisExporter
from jatra.stack.gateway import Gateway
from jatra.stack.monitoring import Alertmanager, Prometheus, add_target, clear_targets, remove_target
from jatra.stack.objectstore import SeaweedS3
from jatra.stack.ports import MAX_API_REPLICAS, Ports
from jatra.stack.procs import (
    StackError,
    log_tail,
    niced,
    pid_alive,
    port_open,
    set_autogroup_nice,
    spawn,
    stop_pid,
    wait_until,
)
from jatra.stack.stores import Epmd, PgBouncer, Postgres, RabbitMQ, Redis
from jatra.stack.supervisor import (
    LIVE_STATES,
    Supervised,
    Supervisor,
    program,
    program_pid,
    start_program,
    stop_program,
)

log = structlog.get_logger()


def data_servers() -> list[Server]:
    # S3 before Postgres: `down` stops in reverse order, so Postgres archives its last WAL while S3 still runs
    return [SeaweedS3(), Postgres(), PgBouncer(), Redis(), Epmd(), RabbitMQ(), Osmem(), ElasticGateway()]


def monitoring_servers() -> list[Server]:
    exporters = [RedisExporter(), PostgresExporter(), PgBouncerExporter(), NodeExporter()]
    return [Alertmanager(), Prometheus(), *exporters]


@dataclass(frozen=True, slots=True)
class Running:
    name: str
    pids: list[int]
    port: int
    ready: bool


class Stack:
    def __init__(
        self, state_dir: Path, ports: Ports, api_replicas: int = 1, environment: str = "dev"
    ) -> None:
        self.ctx = StackContext(state_dir.resolve(), ports, api_replicas, environment)
        self.state_file = self.ctx.state_dir / "stack.json"

    # -- state file ------------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data: dict[str, dict[str, object]] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _save(self, state: dict[str, dict[str, object]]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))  # no sort_keys: `down` reverses start order
        tmp.replace(self.state_file)

    def _pids(self, name: str) -> list[int]:
        raw = self._load().get(name, {}).get("pids", [])
        return [int(p) for p in raw] if isinstance(raw, list) else []

    # -- lifecycle ---------------------------------------------------------------------------------------
    def up(self, servers: Sequence[Server], parallel: bool = False) -> list[Running]:
        """Start what is not running yet and wait until each answers. Running servers are left alone.

        Every binary is looked up first, so a missing one stops `up` before anything was started.
        ``parallel`` spawns all before waiting for any: for servers that do not need each other.
        """
        for server in servers:
            server.argv(self.ctx)
        if any(isinstance(s, Supervised) for s in servers):
            supervisor = Supervisor(programs(self.ctx.api_replicas))
            self._wait(supervisor, self._spawn(supervisor))
        if not parallel:
            return [self._wait(server, self._spawn(server)) for server in servers]
        spawned = [(server, self._spawn(server)) for server in servers]
        return [self._wait(server, pid) for server, pid in spawned]

    def _spawn(self, server: Server) -> int | None:
        """Start the server unless it already runs; returns the new PID, or None if it was running."""
        ctx = self.ctx
        if isinstance(server, Supervised):
            return self._start_program(server)
        pids = self._pids(server.name)
        if any(pid_alive(p) for p in pids) and server.ready(ctx):
            return None
        if port_open(server.port(ctx)):
            raise StackError(
                f"{server.name}: port {server.port(ctx)} is taken by a process this stack did not start; "
                f"stop it or set JATRA_PORT_BASE to another base"
            )
        server.prepare(ctx)
        argv = niced(server.argv(ctx), server.nice) if server.nice else server.argv(ctx)
        pid = spawn(argv, ctx.log(server.name), env=server.env(ctx))
        if server.nice:
            set_autogroup_nice(pid, server.nice)
        self._record(server.name, [pid], server.port(ctx))
        return pid

    def _start_program(self, server: Supervised) -> int | None:
        """Ask supervisord to start a program unless it runs (or is being restarted); returns its PID."""
        found = program(self.ctx, server.name)
        if found is not None and found.state in LIVE_STATES and server.ready(self.ctx):
            return None
        if found is None or found.state not in LIVE_STATES:
            if port_open(server.port(self.ctx)):
                raise StackError(f"{server.name}: port {server.port(self.ctx)} is taken by another process")
            server.prepare(self.ctx)
            start_program(self.ctx, server.name)
        pid = program_pid(self.ctx, server.name)
        self._record(server.name, [pid], server.port(self.ctx))
        return pid

    def _alive(self, server: Server, pid: int | None) -> bool:
        if isinstance(server, Supervised):
            found = program(self.ctx, server.name)
            return found is not None and found.state in LIVE_STATES
        return pid_alive(pid)

    def _wait(self, server: Server, pid: int | None) -> Running:
        ctx = self.ctx
        if pid is None:
            if isinstance(server, Supervised) and server.process:
                add_target(ctx, server.name, server.port(ctx), server.process)
            return Running(server.name, self._pids(server.name), server.port(ctx), True)
        t0 = time.monotonic()
        wait_until(
            lambda: not self._alive(server, pid) or server.ready(ctx),
            server.ready_timeout,
            server.name,
            ctx.log(server.name),
        )
        if not self._alive(server, pid):
            raise StackError(f"{server.name} exited during start-up{log_tail(ctx.log(server.name))}")
        server.after_start(ctx)
        if isinstance(server, Supervised):
            pid = program_pid(ctx, server.name)
            if server.process:
                add_target(ctx, server.name, server.port(ctx), server.process)
        pids = [pid, *server.extra_pids(ctx)]
        self._record(server.name, pids, server.port(ctx))
        log.info(
            "stack.server.started",
            server=server.name,
            port=server.port(ctx),
            duration_s=round(time.monotonic() - t0, 2),
        )
        return Running(server.name, pids, server.port(ctx), True)

    def _record(self, name: str, pids: list[int], port: int) -> None:
        state = self._load()
        state[name] = {"pids": pids, "port": port}
        self._save(state)

    def down(self, names: Iterable[str] | None = None, retire: bool = False) -> list[str]:
        """Stop what this stack started, in reverse start order, by PID. Returns the names stopped.

        A Jatra process stopped alone stays a scrape target, down (as if it had crashed), so its alerts
        fire until it is back; ``retire`` also drops it from Prometheus's targets (it is no longer part
        of the stack). Stopping supervisord retires every Jatra process.
        """
        state = self._load()
        wanted = list(state) if names is None else [n for n in names if n in state]
        # supervisord stops its programs itself, all at once, when it is stopped
        whole_supervisor = Supervisor.name in wanted
        if whole_supervisor:
            clear_targets(self.ctx)
        stopped = []
        for name in reversed(wanted):
            server = _by_name(name)
            if isinstance(server, Supervised) and (whole_supervisor or stop_program(self.ctx, name)):
                if retire:
                    remove_target(self.ctx, name)
                del state[name]
                self._save(state)
                stopped.append(name)
                continue
            signal_ = server.stop_signal if server else 15
            pids = [int(p) for p in state[name].get("pids", [])]  # type: ignore[attr-defined]
            if server is not None:
                pids += [p for p in server.extra_pids(self.ctx) if p not in pids]
            for pid in reversed(pids):
                stop_pid(pid, signal_, server.stop_timeout if server else 20.0)
            del state[name]
            self._save(state)
            stopped.append(name)
            log.info("stack.server.stopped", server=name)
        return stopped

    def status(self) -> list[Running]:
        result = []
        for name, entry in self._load().items():
            pids = [int(p) for p in entry.get("pids", [])]  # type: ignore[attr-defined]
            port = int(entry.get("port", 0))  # type: ignore[call-overload]
            server = _by_name(name)
            if isinstance(server, Supervised):
                # supervisord may have restarted it since: its PID now is the one that counts
                found = program(self.ctx, name)
                pids = [found.pid] if found is not None and found.pid else []
            alive = any(pid_alive(p) for p in pids)
            ready = alive and (server.ready(self.ctx) if server else port_open(port))
            result.append(Running(name, pids, port, ready))
        return result


def _by_name(name: str) -> Server | None:
    # every replica a stack may have started, whatever JATRA_API_REPLICAS says now
    known = [*data_servers(), *monitoring_servers(), Supervisor(), *programs(MAX_API_REPLICAS), Gateway()]
    for server in known:
        if server.name == name:
            return server
    return None
