"""What `jatra up|down|status` do, as functions the CLI and the test fixtures share."""

from __future__ import annotations

from pathlib import Path

from jatra.gateway.routes import SERVICES
from jatra.settings import Settings
from jatra.stack import pgbackrest
from jatra.stack.apps import jatra_processes, programs
from jatra.stack.gateway import Gateway
from jatra.stack.manager import Stack, data_servers, monitoring_servers
from jatra.stack.ports import LAST_OFFSET, MAX_API_REPLICAS, api_replica
from jatra.stack.procs import StackError, pid_alive
from jatra.stack.supervisor import Supervisor, restarts


def stack_for(settings: Settings) -> Stack:
    return Stack(Path(settings.state_dir), settings.ports, settings.api_replicas, settings.environment)


def ephemeral_range() -> range:
    """The kernel's range for outgoing ports: servers listening there can find their port taken."""
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def check_port_base(settings: Settings) -> None:
    ephemeral = ephemeral_range()
    first, last = settings.ports.base, settings.ports.base + LAST_OFFSET
    if first <= ephemeral.stop - 1 and last >= ephemeral.start:
        raise StackError(
            f"JATRA_PORT_BASE={first} overlaps the kernel's ephemeral ports "
            f"({ephemeral.start}-{ephemeral.stop - 1}); outgoing connections could take a server's port. "
            f"Choose a base below {ephemeral.start - LAST_OFFSET}."
        )


def check_mode(stack: Stack, split: bool) -> None:
    """One API mode at a time: the all-in-one replicas and the split mode's gateway both want the API port."""
    running = {r.name for r in stack.status() if any(pid_alive(p) for p in r.pids)}
    other = ({api_replica(n) for n in range(1, MAX_API_REPLICAS + 1)} if split else {Gateway.name}) & running
    if other:
        now = "all-in-one" if split else "split"
        raise StackError(
            f"the API runs {now} ({', '.join(sorted(other))}); stop it with `jatra down --apps` "
            f"before `jatra up` {'--split' if split else 'without --split'}"
        )


def stack_up(settings: Settings, with_apps: bool = True, split: bool = False) -> str:
    """Start servers, migrate the database, then start the Jatra processes (the API all-in-one, or split
    into one process per service behind the nginx gateway). Returns the summary."""
    from jatra.db.migrate import upgrade  # noqa: PLC0415 - alembic is only needed here

    check_port_base(settings)
    stack = stack_for(settings)
    if with_apps:
        check_mode(stack, split)
        if split:
            Gateway().argv(stack.ctx)  # nginx missing stops `up` before anything starts, as any binary does
    stack.up([*data_servers(), *monitoring_servers()])
    upgrade()
    # the backup repository in the local S3 server; from now on Postgres archives every WAL segment there
    pgbackrest.ensure_stanza(settings, stack.ctx)
    if with_apps:
        stack.up(jatra_processes(settings.api_replicas, split=split), parallel=True)
        if split:
            stack.up([Gateway(on_api_port=True)])
    return summary(settings, stack)


def stack_down(settings: Settings, apps_only: bool = False) -> list[str]:
    names = [Supervisor.name, *(p.name for p in programs()), Gateway.name] if apps_only else None
    return stack_for(settings).down(names)


def stack_status(settings: Settings) -> str:
    stack = stack_for(settings)
    rows = stack.status()
    if not rows:
        return "nothing is running (start it with `jatra up`)"
    restarted = restarts(stack.ctx)
    lines = [f"{'server':18} {'port':>6}  {'pids':16} {'state':6} restarts"]
    for r in rows:
        pids = ",".join(str(p) for p in r.pids)
        count = str(restarted[r.name]) if r.name in restarted else "-"
        lines.append(f"{r.name:18} {r.port:>6}  {pids:16} {'ready' if r.ready else 'DOWN':6} {count}")
    lines.append(
        "restarts: times supervisord brought a Jatra process back after it died (- = not supervised)"
    )
    return "\n".join(lines)


def summary(settings: Settings, stack: Stack) -> str:
    p = settings.ports
    h = "http://127.0.0.1"
    running = {r.name for r in stack.status() if r.ready}
    split = Gateway.name in running
    if split:
        services = ", ".join(f"{s} {p.app(s)}" for s in SERVICES)
        api = [
            f"  API (split)     {h}:{p.api}/api/v1        OpenAPI docs: {h}:{p.api}/docs",
            f"                  nginx on {p.api} and {p.gateway}, one process per service ({services}); "
            f"access log {stack.ctx.log(Gateway.name)}",
        ]
    else:
        api = [
            f"  API             {h}:{p.api}/api/v1        OpenAPI docs: {h}:{p.api}/docs",
            f"                  ({settings.api_replicas} replicas sharing the port; replica N's own port is "
            f"{p.app(api_replica(1)) - 1}+N)",
        ]
    lines = [
        f"Jatra local stack  (state: {stack.ctx.state_dir}, logs: {stack.ctx.state_dir / 'log'})",
        *api,
        f"  Prometheus      {h}:{p.prometheus}          Alertmanager: {h}:{p.alertmanager}",
        f"  RabbitMQ        amqp://127.0.0.1:{p.amqp}   management: {h}:{p.rabbitmq_management} (guest)",
        f"  Postgres        127.0.0.1:{p.postgres} (PgBouncer {p.pgbouncer})   Redis 127.0.0.1:{p.redis}",
        f"  metrics         one /metrics per {'service' if split else 'API replica'} and per worker, "
        "scraped every 5s",
        f"  alerts          rules from alerts/generated; `jatra alerts` shows what fired "
        f"(receiver {h}:{p.app('alert-receiver')})",
        f"  traces          OTLP JSON in {stack.ctx.state_dir / 'traces'}; `jatra trace <id>`",
        f"  backups         s3://{settings.backup_bucket}{settings.backup_repo_path} (pgBackRest, WAL "
        "archived): `jatra backup list`, `jatra restore --drill`",
        "  dashboards      dashboards/generated/*.json (Grafana runs in compose: `make compose-up`)",
    ]
    if api_replica(1) not in running and not split:
        lines.append("  (Jatra processes not started: run `jatra up` without --no-apps)")
    lines.append("  stop it all with `make down` (or `jatra down`)")
    return "\n".join(lines)
