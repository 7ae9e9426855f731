"""supervisord runs the Jatra processes of the local stack and brings back any that dies, as an
orchestrator would.

Every API replica and worker is a supervisord program that `jatra up` starts on demand (``autostart`` is
off, so `up` and the tests choose what runs and wait for its /health). A program that exits is restarted at
once; one that keeps failing within ``startsecs`` of its start is retried with a growing pause (1 s, 2 s,
3 s ...), like a crash-loop back-off. An event listener (:mod:`jatra.stack.events`) counts the restarts:
``jatra_process_restarts_total{process}`` on its own /metrics, and the RESTARTS column of `jatra status`.

The data and monitoring servers are not supervised: they stand for managed services (a Postgres operator,
a RabbitMQ cluster) that restart themselves in production, and the tests stop and start them on purpose.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from jatra.stack.base import Server, StackContext
from jatra.stack.monitoring import clear_targets
from jatra.stack.procs import StackError, find_binary

#: seconds a program must stay up to count as started; failing sooner is a start failure (back-off)
START_SECONDS = 3
#: start failures in a row before supervisord gives up on a program (FATAL); the pauses add up to ~1 h
START_RETRIES = 80
#: seconds between SIGTERM and SIGKILL when a program is stopped
STOP_WAIT_SECONDS = 20
#: program states in which supervisord is (re)starting or running it
LIVE_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF"})


def socket_path(ctx: StackContext) -> Path:
    return ctx.state_dir / "run" / "supervisor.sock"


def restarts_file(ctx: StackContext) -> Path:
    return ctx.state_dir / "run" / "restarts.json"


def rpc(ctx: StackContext, timeout: float = 5.0) -> Any:
    """supervisord's XML-RPC interface, over its unix socket (no TCP port, no password on loopback)."""
    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path(ctx)}")
    transport.timeout = timeout
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


@dataclass(frozen=True, slots=True)
class Program:
    """What supervisord knows of one program right now."""

    name: str
    state: str
    pid: int


def program(ctx: StackContext, name: str) -> Program | None:
    """The program's state and PID, or None if supervisord is not running or does not know it."""
    with contextlib.suppress(OSError, xmlrpc.client.Fault):
        info = rpc(ctx).supervisor.getProcessInfo(name)
        return Program(name, str(info["statename"]), int(info["pid"]))
    return None


def program_pid(ctx: StackContext, name: str, timeout: float = 10.0) -> int:
    """The PID of a program supervisord is starting, once it has one (0 if it has none in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = program(ctx, name)
        if found is not None and found.pid:
            return found.pid
        time.sleep(0.05)
    return 0


def start_program(ctx: StackContext, name: str) -> None:
    """Ask supervisord to start a program, without waiting for it (the caller waits for /health)."""
    try:
        rpc(ctx).supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_STARTED" not in fault.faultString:
            raise StackError(f"supervisord could not start {name}: {fault.faultString}") from fault


def stop_program(ctx: StackContext, name: str) -> bool:
    """Stop a program and wait until it is down; False if supervisord is not there to do it."""
    try:
        rpc(ctx, timeout=STOP_WAIT_SECONDS + 10).supervisor.stopProcess(name, True)
    except xmlrpc.client.Fault as fault:
        return "NOT_RUNNING" in fault.faultString or "BAD_NAME" in fault.faultString
    except OSError:
        return False
    return True


def restarts(ctx: StackContext) -> dict[str, int]:
    """Restarts per program since supervisord started, as the event listener counted them."""
    try:
        counts: dict[str, int] = json.loads(restarts_file(ctx).read_text())
    except (OSError, ValueError):
        return {}
    return counts


def _escape(value: str) -> str:
    """supervisord expands %(name)s in its configuration: a literal % is written %%."""
    return value.replace("%", "%%")


class Supervised(Server):
    """A server that runs as a supervisord program (the Jatra processes)."""

    #: the ``process`` label of its series; Prometheus scrapes it from start to stop (``""``: not scraped)
    process: str = ""

    def program_section(self, ctx: StackContext) -> str:
        env = ",".join(f'{k}="{_escape(v)}"' for k, v in self.env(ctx).items())
        return f"""
[program:{self.name}]
command={_escape(shlex.join(self.argv(ctx)))}
environment={env}
autostart=false
autorestart=true
startsecs={START_SECONDS}
startretries={START_RETRIES}
stopsignal=TERM
stopwaitsecs={STOP_WAIT_SECONDS}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={ctx.log(self.name)}
stdout_logfile_maxbytes=0
stdout_logfile_backups=0
"""


class Supervisor(Server):
    """supervisord itself, in the foreground of the process we spawn, configured with ``programs``."""

    name = "supervisor"
    #: supervisord stops every program (each up to STOP_WAIT_SECONDS) before it exits itself
    stop_timeout = STOP_WAIT_SECONDS + 15.0

    def __init__(self, programs: list[Supervised] | None = None) -> None:
        self.programs = programs or []

    def port(self, ctx: StackContext) -> int:
        return ctx.ports.supervisor_events

    def conf_file(self, ctx: StackContext) -> Path:
        return ctx.conf(self.name) / "supervisord.conf"

    def prepare(self, ctx: StackContext) -> None:
        ctx.conf(self.name).mkdir(parents=True, exist_ok=True)
        socket_path(ctx).parent.mkdir(parents=True, exist_ok=True)
        restarts_file(ctx).unlink(missing_ok=True)  # counts start again with supervisord
        clear_targets(ctx)  # no program runs yet: scrape targets left by a stack that died are stale
        names = ",".join(p.name for p in self.programs)
        listener = [sys.executable, "-m", "jatra.stack.events", "--port", str(self.port(ctx)),
                    "--state", str(restarts_file(ctx)), "--programs", names]  # fmt: skip
        self.conf_file(ctx).write_text(
            f"""; generated by `jatra up` (jatra/stack/supervisor.py); edit that instead
[supervisord]
nodaemon=true
silent=true
logfile={ctx.log(self.name)}
logfile_maxbytes=0
logfile_backups=0
pidfile={ctx.state_dir / "run" / "supervisord.pid"}
childlogdir={ctx.state_dir / "log"}

[unix_http_server]
file={socket_path(ctx)}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[eventlistener:process-events]
command={_escape(shlex.join(listener))}
events=PROCESS_STATE
autorestart=true
stderr_logfile={ctx.log("process-events")}
stderr_logfile_maxbytes=0
"""
            + "".join(p.program_section(ctx) for p in self.programs)
        )

    def argv(self, ctx: StackContext) -> list[str]:
        binary = find_binary(
            [str(Path(sys.executable).with_name("supervisord")), "supervisord"], "supervisor"
        )
        return [binary, "--nodaemon", "--configuration", str(self.conf_file(ctx))]

    def ready(self, ctx: StackContext) -> bool:
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            return bool(rpc(ctx, timeout=1.0).supervisor.getState()["statename"] == "RUNNING")
        return False
