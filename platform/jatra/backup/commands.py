"""`jatra backup [--type]`, `jatra backup list` and `jatra restore --drill` (heavy imports inside each)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from jatra.settings import Settings, get_settings


def _setup(settings: Settings) -> None:
    """Log events on stderr (stdout carries the command's answer), spans where the settings say."""
    import structlog  # noqa: PLC0415

    from jatra.telemetry.tracing import setup_tracing  # noqa: PLC0415

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    if settings.trace_dir or settings.otlp_endpoint:  # with nowhere to send spans, skip the second it costs
        setup_tracing(settings, "backup")


def _flush() -> None:
    from opentelemetry import trace  # noqa: PLC0415

    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        flush()


@click.group(invoke_without_command=True)
@click.option(
    "--type",
    "type_",
    type=click.Choice(["full", "diff", "incr"]),
    default="incr",
    show_default=True,
    help="full: everything; diff: what changed since the last full; incr: since the last backup "
    "(the first backup is always full).",
)
@click.pass_context
def backup(ctx: click.Context, type_: str) -> None:
    """Back the database up into the S3 backup bucket (pgBackRest), then apply retention.

    `jatra backup list` shows what the repository holds. Between backups, Postgres archives its WAL to the
    same repository, so a restore reaches any moment up to the last archived segment.
    """
    if ctx.invoked_subcommand is not None:
        return
    from jatra.backup.errors import BackupError  # noqa: PLC0415
    from jatra.backup.take import take_backup  # noqa: PLC0415

    settings = get_settings()
    _setup(settings)
    t0 = time.monotonic()
    try:
        made = take_backup(settings, type_)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        _flush()
    click.echo(
        f"backup {made.label} ({made.type}) of {made.database_bytes / 2**20:.1f} MiB, "
        f"{made.repository_bytes / 2**20:.1f} MiB stored, in {time.monotonic() - t0:.1f}s"
    )


@backup.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the repository as JSON.")
def list_backups(as_json: bool) -> None:
    """What the repository holds: backups, the archived WAL range and the retention."""
    from jatra.backup import listing, repository  # noqa: PLC0415
    from jatra.backup.errors import BackupError  # noqa: PLC0415

    settings = get_settings()
    try:
        repo = repository.read(settings)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(listing.as_json(settings, repo), indent=2))
    else:
        click.echo(listing.render(settings, repo))


@click.command()
@click.option(
    "--drill",
    is_flag=True,
    help="Restore the latest backup and the WAL after it into a scratch cluster, check it, then remove it.",
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON report here.")
def restore(drill: bool, out: str | None) -> None:
    """The restore drill: prints a JSON report (RTO, what was checked) and exits 1 if anything failed.

    Only the drill is a command: restoring over the live database is an operator's decision (stop the
    stack, `pgbackrest --config=STATE_DIR/conf/pgbackrest/pgbackrest.conf --stanza=jatra restore --delta`,
    start it), never a side effect of a typo.
    """
    if not drill:
        raise click.UsageError("only `jatra restore --drill` is a command (see `jatra restore --help`)")
    import asyncio  # noqa: PLC0415

    from jatra.backup.drill import drill as run_drill  # noqa: PLC0415

    settings = get_settings()
    _setup(settings)
    try:
        report = asyncio.run(run_drill(settings))
    finally:
        _flush()
    rendered = json.dumps(report, indent=2, default=str)
    click.echo(rendered)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(rendered + "\n")
    if not report["ok"]:
        click.secho(f"restore drill FAILED: {report.get('error')}", fg="red", err=True)
        sys.exit(1)
