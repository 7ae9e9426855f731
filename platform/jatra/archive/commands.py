"""`jatra audit ...`: the auditors' commands over the archive (verify, search, export, key).

Exit codes: 0 all is well, 1 verify found a problem (each named on a line of its own), 2 a usage error
or an archive that cannot be read. The modules that do the work are imported inside each command, so
`jatra --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from jatra.settings import Settings, get_settings


class Instant(click.ParamType[dt.datetime, Any]):
    """An ISO 8601 date or time; without a zone it is UTC (``2026-11-23``, ``2026-11-23T14:00+06:00``)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            t = dt.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time", param, ctx)
        return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


SINCE = click.option(
    "--since", type=Instant(), default=None, help="From this time (ISO 8601; UTC unless zoned)."
)
UNTIL = click.option(
    "--until", type=Instant(), default=None, help="Up to this time (ISO 8601; UTC unless zoned)."
)
SOURCE = click.option("--source", "sources", multiple=True, help="Only this process's log (repeatable).")
PUBLIC_KEY = click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Trust only this Ed25519 public key (PEM), not the keys published in the bucket.",
)


def _settings() -> Settings:
    return get_settings()


def _store(settings: Settings) -> Any:
    from jatra.archive.store import ArchiveStore  # noqa: PLC0415

    store = ArchiveStore.from_settings(settings)
    if not store.exists():
        click.echo(f"no archive: bucket {settings.archive_bucket} does not exist at {settings.s3}", err=True)
        sys.exit(2)
    return store


@click.group()
def audit() -> None:
    """The auditors' tamper-evident log archive (S3 with Object Lock)."""


@audit.command()
@SINCE
@UNTIL
@SOURCE
@PUBLIC_KEY
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Verify an export file offline instead of the bucket.",
)
def verify(
    since: dt.datetime | None,
    until: dt.datetime | None,
    sources: tuple[str, ...],
    public_key: Path | None,
    export_file: Path | None,
) -> None:
    """Check signatures, the hash chain, every segment and that nothing was overwritten or deleted.

    Exits 1 naming each problem: source, sequence number, object key and what is wrong."""
    from jatra.archive import layout, signing  # noqa: PLC0415
    from jatra.archive.export import ExportReader  # noqa: PLC0415
    from jatra.archive.verify import BucketReader, Reader, verify  # noqa: PLC0415

    pinned = signing.load_public(public_key.read_bytes()) if public_key else None
    reader: Reader = ExportReader(export_file) if export_file else BucketReader(_store(_settings()))
    recorded = reader.window if isinstance(reader, ExportReader) else None
    if recorded is not None:  # an end not asked for is the export's own (its bounds are read against it)
        if _reaches_past((since, until), recorded):
            click.echo(f"WARN the window asked for reaches past the export's ({_window(*recorded).strip()}): "
                       "what lies outside it is not in the export")  # fmt: skip
        since = recorded[0] if since is None else since
        until = recorded[1] if until is None else until
    report = verify(reader, since=since, until=until, sources=sources or None, public_key=pinned)
    for problem in report.problems:
        click.echo(f"FAIL {problem}")
    for warning in report.warnings:
        click.echo(f"WARN {warning}")
    padded = left_out = 0
    if isinstance(reader, ExportReader):
        padded, left_out = reader.events_not_in_segments(), reader.events_left_out(since, until)
        click.echo(f"events.ndjson checked against the window{_window(since, until) or ' (no limit)'}")
        if padded:
            click.echo(f"FAIL events.ndjson: {padded} event(s) not in any exported segment")
        if left_out:
            click.echo(f"FAIL events.ndjson: {left_out} event(s) of the window in the segments are not in it")
        if pinned is None:
            click.echo("WARN trusting the keys inside the export: pass --public-key with the key you hold")
    keys = ", ".join(sorted(report.key_ids)) or "none"
    click.echo(
        f"{len(report.sources)} source(s), {report.manifests} manifest(s), {report.segments} segment(s), "
        f"{report.events} event(s); signed by key {keys}"
    )
    if report.problems or padded or left_out:
        failed = len(report.problems) + (1 if padded else 0) + (1 if left_out else 0)
        click.echo(f"TAMPERING OR LOSS: {failed} problem(s)")
        sys.exit(1)
    # a mistyped --source, a window with nothing in it, an empty bucket: none of it is verified, and an
    # auditor reading "OK" would take it that it was
    unknown = [s for s in sources if not reader.versions(f"{layout.MANIFESTS}{s}/")]
    if not report.manifests or unknown:
        asked = ", ".join(unknown or sources) or "any source"
        click.echo(f"NOTHING VERIFIED: no manifest of {asked}{_window(since, until)}")
        sys.exit(1)
    click.echo("OK: the archive verifies")


Window = tuple[dt.datetime | None, dt.datetime | None]


def _reaches_past(asked: Window, recorded: Window) -> bool:
    """Whether the window asked for starts before, or ends after, the export's."""
    early = asked[0] is not None and recorded[0] is not None and asked[0] < recorded[0]
    late = asked[1] is not None and recorded[1] is not None and asked[1] > recorded[1]
    return early or late


def _window(since: dt.datetime | None, until: dt.datetime | None) -> str:
    return (f" since {since.isoformat()}" if since else "") + (f" until {until.isoformat()}" if until else "")


@audit.command()
@click.option("--trace-id", default=None, help="Events of this trace (ECS trace.id).")
@click.option(
    "--booking-id", default=None, help="Events about this booking (booking_id, or in the URL path)."
)
@SINCE
@UNTIL
@SOURCE
@PUBLIC_KEY
def search(
    trace_id: str | None,
    booking_id: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    sources: tuple[str, ...],
    public_key: Path | None,
) -> None:
    """Print matching archived events as NDJSON, oldest first; reads only segments that meet the window.

    Only segments proved by a trusted signature and their digest are read; exits 1 if any was left out."""
    from jatra.archive import signing  # noqa: PLC0415
    from jatra.archive.search import Query  # noqa: PLC0415
    from jatra.archive.search import search as run_search  # noqa: PLC0415

    if not (trace_id or booking_id or since or until):
        raise click.UsageError("give at least one of --trace-id, --booking-id, --since, --until")
    query = Query(since=since, until=until, trace_id=trace_id, booking_id=booking_id)
    pinned = signing.load_public(public_key.read_bytes()) if public_key else None
    found = run_search(_store(_settings()), query, sources or None, public_key=pinned)
    out = sys.stdout.buffer
    for raw in found.events:
        out.write(raw + b"\n")
    out.flush()
    for warning in found.warnings:
        click.echo(f"WARN {warning}", err=True)
    click.echo(f"{len(found.events)} event(s) in {found.segments} segment(s) read", err=True)
    if found.left_out:
        click.echo(f"INCOMPLETE: {found.left_out} segment(s) left out, named above", err=True)
        sys.exit(1)
    if found.unpinned:
        click.echo(
            "UNPROVEN: more than one key is published; pass --public-key with the key you hold", err=True
        )
        sys.exit(1)


@audit.command()
@SINCE
@UNTIL
@SOURCE
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The file to write."
)
def export(since: dt.datetime | None, until: dt.datetime | None, sources: tuple[str, ...], out: Path) -> None:
    """Write the events of a range, with the segments, manifests and keys that prove them, to a tar file."""
    from jatra.archive.export import export as run_export  # noqa: PLC0415

    done = run_export(_store(_settings()), out, since, until, sources or None)
    for warning in done.warnings:
        click.echo(f"WARN {warning}", err=True)
    click.echo(f"wrote {out}: {done.events} event(s), {done.segments} segment(s) with their manifests")
    click.echo(f"verify it offline: jatra audit verify --export {out} --public-key KEY.pem")


@audit.command()
@click.option("--published", is_flag=True, help="List the keys published in the bucket instead.")
def key(published: bool) -> None:
    """Print the public key that verifies the manifests (PEM), from the configured signing key."""
    from jatra.archive import signing  # noqa: PLC0415

    settings = _settings()
    if not published:
        public = signing.signing_key(settings).public_key()
        click.echo(f"# key id {signing.key_id(public)}", err=True)
        click.echo(signing.public_pem(public).decode(), nl=False)
        return
    from jatra.archive import layout  # noqa: PLC0415

    store = _store(settings)
    for name in store.keys(layout.KEYS):
        fetched = store.get(name)
        if fetched is not None:
            click.echo(f"# {name}")
            click.echo(fetched.data.decode(), nl=False)
