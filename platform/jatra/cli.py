"""The `jatra` command: config, up/down/status, migrate, seed, serve, worker."""

from __future__ import annotations

import asyncio
import sys
import time

import click

from jatra.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Jatra: railway ticketing, observable first."""


@main.command()
def config() -> None:
    """Print the effective settings (secrets masked) with what each one does."""
    for name, value, doc in _settings().describe():
        click.echo(f"{name:32} {value:48} {doc}")


@main.command()
@click.option("--apps/--no-apps", default=True, help="Also start the Jatra API and workers.")
@click.option(
    "--split",
    is_flag=True,
    help="Run the API as one process per service (auth, catalog, seats, bookings) behind nginx on the API "
    "port, instead of all-in-one replicas.",
)
def up(apps: bool, split: bool) -> None:
    """Start the local stack of real servers (idempotent) and print where everything listens."""
    from jatra.stack.commands import stack_up  # noqa: PLC0415 - keep `jatra --help` fast

    t0 = time.monotonic()
    try:
        summary = stack_up(_settings(), with_apps=apps, split=split)
    except Exception as exc:
        click.secho(f"jatra up failed: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(summary)
    click.echo(f"ready in {time.monotonic() - t0:.1f}s")


@main.command()
@click.option("--apps", "apps_only", is_flag=True, help="Stop only the Jatra processes, not the servers.")
def down(apps_only: bool) -> None:
    """Stop everything `jatra up` started, by PID."""
    from jatra.stack.commands import stack_down  # noqa: PLC0415

    stopped = stack_down(_settings(), apps_only=apps_only)
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@main.command()
def status() -> None:
    """Show each server of the local stack, its PID, port and readiness."""
    from jatra.stack.commands import stack_status  # noqa: PLC0415

    click.echo(stack_status(_settings()))


@main.command()
def migrate() -> None:
    """Apply database migrations (straight to Postgres)."""
    from jatra.db.migrate import upgrade  # noqa: PLC0415

    upgrade()
    click.echo("database is at head")


@main.command()
@click.option("--days", type=int, default=None, help="Days of journeys (default: the timetable horizon).")
def seed(days: int | None) -> None:
    """Load the Bangladesh Railway timetable and materialise journeys. Safe to run again."""
    from jatra.catalog.commands import run_seed  # noqa: PLC0415
    from jatra.seats.restore import restore_now  # noqa: PLC0415

    report = asyncio.run(run_seed(_settings(), days))
    # holds need each journey's synced marker in Redis (jatra.inventory.resync)
    restored = asyncio.run(restore_now(_settings()))
    click.echo(
        f"seeded {report.stations} stations, {report.lines} lines, {report.trains} trains, "
        f"{report.seats} seats; {report.journeys_created} new journeys; {restored} made known to Redis"
    )


@main.command()
@click.option("--requests", type=int, default=300, show_default=True)
def demo(requests: int) -> None:
    """Run a short burst of searches against the running stack and print where everything is."""
    from jatra.demo import auditor_view, burst, passenger_walkthrough  # noqa: PLC0415
    from jatra.stack.commands import stack_for, summary  # noqa: PLC0415

    settings = _settings()
    started = time.time()
    click.echo(asyncio.run(burst(settings, requests)))
    click.echo(asyncio.run(passenger_walkthrough(settings)))
    click.echo(summary(settings, stack_for(settings)))
    click.echo(f"  logs (ECS JSON, one file per process): {stack_for(settings).ctx.state_dir / 'log'}")
    click.echo(auditor_view(settings, started))


@main.command()
@click.option("--rate", type=float, default=20, show_default=True, help="Passengers arriving per second.")
@click.option("--duration", type=float, default=60, show_default=True, help="Seconds of arrivals.")
@click.option("--passengers", type=int, default=300, show_default=True, help="Accounts logged in first.")
@click.option("--skew", type=float, default=1.2, show_default=True, help="Zipf exponent of popularity.")
@click.option("--fault", "faults", multiple=True, help="Provider fault flag, e.g. --fault decline_rate=0.05.")
@click.option(
    "--first-day",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Days from today to the first travel date; a fresh window starts from an unsold inventory.",
)
@click.option(
    "--tries",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Seat maps a passenger looks at before leaving: a full train or a lost seat means another look.",
)
@click.option(
    "--outcome",
    type=click.Choice(["wait", "poll"]),
    default="wait",
    show_default=True,
    help="How passengers learn a booking's outcome: one long poll (?wait=20), or a read every 0.25 s.",
)
@click.option(
    "--out", type=click.Path(), default=None, help="Write the JSON report here, and PNG charts beside it."
)
def rush(
    rate: float,
    duration: float,
    passengers: int,
    skew: float,
    faults: tuple[str, ...],
    first_day: int,
    tries: int,
    outcome: str,
    out: str | None,
) -> None:
    """Eid rush: open-loop load through the whole booking flow, then the invariants."""
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from jatra.rush.options import Options  # noqa: PLC0415
    from jatra.rush.runner import run  # noqa: PLC0415
    from jatra.rush.summary import render  # noqa: PLC0415

    settings = _settings()
    flags = {k: json.loads(v) for k, v in (f.split("=", 1) for f in faults)}
    opts = Options(
        base_url=f"http://127.0.0.1:{settings.ports.api}/api/v1",
        provider_url=settings.provider,
        rate=rate,
        duration_s=duration,
        passengers=passengers,
        skew=skew,
        first_day=first_day,
        tries=tries,
        faults=flags,
        outcome=outcome,
    )
    result = asyncio.run(run(opts, settings))
    click.echo(render(result))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
        click.echo(f"report: {out}")
        from jatra.rush.plots import draw  # noqa: PLC0415

        click.echo("charts: " + ", ".join(str(p) for p in draw(result, Path(out))))
    if not result["invariants_ok"]:
        sys.exit(2)


@main.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a generated file is out of date.")
def gen(check: bool) -> None:
    """Write the generated dashboards, rules, Alertmanager config and Grafana provisioning files."""
    from jatra.observability.generate import REPO_ROOT, stale, write  # noqa: PLC0415

    if check:
        out_of_date = stale()
        for path in out_of_date:
            click.echo(f"out of date: {path.relative_to(REPO_ROOT)}")
        sys.exit(1 if out_of_date else 0)
    changed = write()
    click.echo(
        f"{len(changed)} generated files changed"
        + "".join(f"\n  {p.relative_to(REPO_ROOT)}" for p in changed)
    )


@main.command()
@click.option("--last", type=int, default=20, show_default=True, help="Notifications to show.")
def alerts(last: int) -> None:
    """What is alerting now (Alertmanager) and the last notifications the pager and tickets received."""
    from jatra.stack.alert_views import render_alerts  # noqa: PLC0415

    click.echo(render_alerts(_settings(), last))


@main.command()
@click.argument("ident")
def trace(ident: str) -> None:
    """Show one trace as a waterfall: IDENT is a trace id (32 hex digits) or a booking id."""
    from pathlib import Path  # noqa: PLC0415

    from jatra.observability.traces import spans_of, waterfall  # noqa: PLC0415

    settings = _settings()
    trace_id = ident.lower().replace("-", "") if len(ident) == 32 else _booking_trace(settings, ident)
    if trace_id is None:
        raise click.ClickException(f"no booking {ident} with a trace (or not a 32-digit trace id)")
    directory = Path(settings.trace_dir or settings.state_dir / "traces")
    click.echo(waterfall(trace_id, spans_of(trace_id, directory)))


def _booking_trace(settings: Settings, booking_id: str) -> str | None:
    """The trace of the request that created a booking, from its payment request in the outbox."""
    from sqlalchemy import select  # noqa: PLC0415

    from jatra.db.bookings import OutboxMessage  # noqa: PLC0415
    from jatra.infra.db import create_engine, session_factory  # noqa: PLC0415
    from jatra.observability.traces import trace_id_of_booking  # noqa: PLC0415

    async def find() -> str | None:
        engine = create_engine(settings, admin=True)
        try:
            async with session_factory(engine)() as session:
                row = await session.scalar(
                    select(OutboxMessage.headers).where(
                        OutboxMessage.routing_key == "payment.requested",
                        OutboxMessage.payload["booking_id"].astext == booking_id,
                    )
                )
        finally:
            await engine.dispose()
        return trace_id_of_booking(row) if row else None

    return asyncio.run(find())


@main.group()
def mailbox() -> None:
    """The dev mailbox: SMS and e-mail written to files instead of sent (not the transactional outbox)."""


@mailbox.command("show")
@click.option("--to", "to", required=True, help="Recipient phone number or e-mail address.")
@click.option("--last", type=int, default=10, show_default=True, help="How many messages to show.")
def mailbox_show(to: str, last: int) -> None:
    """Print what was sent to a recipient, newest last."""
    from jatra.infra.channels import MailboxChannel  # noqa: PLC0415

    for message in MailboxChannel(_settings().mailbox_dir).read(to)[-last:]:
        click.echo(f"{message['at']}  {message['kind']:12} {message['subject']}: {message['body']}")


@main.command("grant-admin")
@click.argument("phone")
def grant_admin(phone: str) -> None:
    """Give the account with this phone number the admin role (it must have logged in once)."""
    from jatra.auth.commands import set_role  # noqa: PLC0415

    if not asyncio.run(set_role(_settings(), phone, "admin")):
        raise click.ClickException(f"no account with phone {phone}; log in once first")
    click.echo(f"{phone} is now an admin")


@main.command()
@click.argument("services", nargs=-1)
@click.option(
    "--port",
    type=int,
    default=None,
    help="Port to listen on (default: a single service's own port in split mode, else the API port).",
)
@click.option(
    "--shared-port",
    type=int,
    default=None,
    help="Also listen on this port, shared with other replicas (SO_REUSEPORT): `jatra up` runs the API so.",
)
def serve(services: tuple[str, ...], port: int | None, shared_port: int | None) -> None:
    """Serve the HTTP API of SERVICES ("all" for every service in one process; one of auth, catalog, seats,
    bookings for split mode, behind the gateway), or the simulated `payment-provider`. Scale out with more
    processes (replicas), each with its own /metrics."""
    import uvicorn  # noqa: PLC0415

    from jatra.app import create_app  # noqa: PLC0415
    from jatra.gateway.routes import SERVICES as SPLIT_SERVICES  # noqa: PLC0415
    from jatra.infra.http_server import exit_on_sigterm, server_config  # noqa: PLC0415
    from jatra.infra.listen import listening_socket  # noqa: PLC0415

    settings = _settings()
    if services == ("payment-provider",):
        from jatra.provider.app import create_provider_app  # noqa: PLC0415

        app = create_provider_app(settings)
        port = port or settings.ports.app("payment-provider")
    elif services == ("alert-receiver",):
        from jatra.stack.alert_receiver import create_receiver_app  # noqa: PLC0415

        app = create_receiver_app(settings)
        port = port or settings.ports.app("alert-receiver")
    else:
        try:
            app = create_app(services or ("all",), settings)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="SERVICES") from exc
        if len(services) == 1 and services[0] in SPLIT_SERVICES:
            port = port or settings.ports.app(services[0])  # split mode: each service on its own port
    sockets = [listening_socket(settings.api_host, port or settings.ports.api)]
    if shared_port is not None:
        sockets.append(listening_socket(settings.api_host, shared_port, shared=True))
    exit_on_sigterm()
    uvicorn.Server(server_config(app, settings, timeout_graceful_shutdown=10)).run(sockets=sockets)


@main.command()
@click.argument("name")
@click.option("--port", type=int, default=None, help="Port for /metrics and /health.")
def worker(name: str, port: int | None) -> None:
    """Run the background worker NAME (timetable, reaper)."""
    from jatra.worker import WORKERS, run_worker  # noqa: PLC0415

    if name not in WORKERS:
        raise click.BadParameter(f"unknown worker {name!r}; known: {', '.join(WORKERS)}")
    import uvloop  # noqa: PLC0415

    settings = _settings()
    # on uvloop, as the API is (uvicorn's loop="uvloop"): in two rounds of rushes at 40 arrivals/s, A B B A
    # each, the payment, notifications and outbox workers took 6.08-6.59 ms of CPU a booking against
    # 6.85-7.10 on asyncio's loop (bench/results/workers-uvloop-40/)
    uvloop.run(run_worker(name, port or settings.ports.app(name), settings))


# -- command groups that live with their own package (imported lazily inside each command) -------------
from jatra.archive.commands import audit  # noqa: E402 - imports only click and settings; the rest lazily
from jatra.backup.commands import backup, restore  # noqa: E402 - only click and settings at import
from jatra.logship.commands import logs  # noqa: E402 - the group itself imports only click and settings

main.add_command(logs)
main.add_command(audit)
main.add_command(backup)
main.add_command(restore)
