"""`jatra logs ...`: set up Elasticsearch for the logs, ship by hand, and see where shipping stands."""

from __future__ import annotations

import asyncio
import sys
import time

import click

from jatra.settings import Settings, get_settings


@click.group()
def logs() -> None:
    """Logs in Elasticsearch: templates and lifecycle, shipping, what was set aside."""


@logs.command("setup")
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if something is missing or differs.")
def setup_command(check: bool) -> None:
    """Install the ILM policy and the index templates of the logs-jatra.* data streams (idempotent)."""
    from jatra.infra.elastic import es_client  # noqa: PLC0415
    from jatra.logship.setup import drift, install  # noqa: PLC0415

    settings = get_settings()

    async def run() -> dict[str, str] | list[str]:
        async with es_client(settings) as client:
            return await drift(client, settings) if check else await install(client, settings)

    result = asyncio.run(run())
    if isinstance(result, list):
        for label in result:
            click.echo(f"missing or different: {label}")
        click.echo(f"{settings.elasticsearch}: " + ("not as generated" if result else "as generated"))
        sys.exit(1 if result else 0)
    for label, fate in result.items():
        click.echo(f"{fate:9} {label}")


@logs.command("ship")
@click.option("--budget", type=float, default=3600.0, show_default=True, help="Stop after this many seconds.")
def ship_command(budget: float) -> None:
    """Ship every log line not shipped yet, then stop (what the worker does, once, in the foreground).
    Do not run it next to a running logship worker: they would share the cursor."""
    from prometheus_client import REGISTRY  # noqa: PLC0415

    from jatra.infra.elastic import es_client  # noqa: PLC0415
    from jatra.logship.setup import install  # noqa: PLC0415
    from jatra.logship.shipper import Shipper  # noqa: PLC0415
    from jatra.telemetry.catalogue import LOGSHIP_EVENTS  # noqa: PLC0415

    settings = get_settings()
    outcomes = ("shipped", "duplicate", "rejected", "retried")

    async def run() -> int:
        shipper = Shipper(settings)
        async with es_client(settings) as client:
            await install(client, settings)
            return await shipper.drain(client, budget)

    t0 = time.monotonic()
    events = asyncio.run(run())
    took = time.monotonic() - t0
    n = {o: int(REGISTRY.get_sample_value(LOGSHIP_EVENTS.name, {"outcome": o}) or 0) for o in outcomes}
    click.echo(
        f"{events} events settled in {took:.1f}s ({events / max(took, 1e-9):.0f}/s): {n['shipped']} indexed, "
        f"{n['duplicate']} duplicates, {n['rejected']} set aside; {n['retried']} sent again"
    )
    _print_status(settings)


@logs.command("status")
def status_command() -> None:
    """What is not shipped yet, what was set aside, and what Elasticsearch holds per data stream."""
    from jatra.infra.elastic import es_client  # noqa: PLC0415
    from jatra.observability.elastic import INDEX_PATTERN  # noqa: PLC0415

    settings = get_settings()
    _print_status(settings)

    async def streams() -> list[dict[str, str]]:
        async with es_client(settings, timeout_s=5) as client:
            answer = await client.cat.indices(index=INDEX_PATTERN, format="json")
            return list(answer.body)

    try:
        found = asyncio.run(streams())
    except Exception as exc:  # the local view above stands on its own
        click.echo(f"Elasticsearch at {settings.elasticsearch}: {type(exc).__name__}: {exc}")
        return
    for row in sorted(found, key=lambda r: r["index"]):
        click.echo(f"{row['index']:48} {row['docs.count']:>10} documents")


@logs.command("rejected")
@click.option("--last", type=int, default=20, show_default=True, help="How many to show.")
def rejected_command(last: int) -> None:
    """Documents Elasticsearch refused, set aside with its reason (newest last)."""
    from jatra.logship.setaside import SetAside  # noqa: PLC0415

    aside = SetAside(get_settings().state_dir / "logship" / "rejected")
    found = list(aside)
    for item in found[-last:]:
        error = item.get("error", {})
        click.echo(
            f"{item['at']}  {item['index']}  {item['status']} {error.get('type')}: {error.get('reason')}"
        )
        click.echo(f"    {item['source']} @{item['file']['offset']}: {item['line'][:200]}")
    click.echo(f"{len(found)} set aside in {aside.directory}")


def _print_status(settings: Settings) -> None:
    from jatra.logship.shipper import Shipper  # noqa: PLC0415

    shipper = Shipper(settings)
    click.echo(
        f"not shipped: {shipper.follower.lag_bytes()} bytes, oldest event {shipper.lag_seconds():.1f}s old"
    )
    click.echo(f"set aside: {shipper.aside.count()} in {shipper.aside.directory}")
