"""The archive's pure parts: deterministic segments, key layout, canonical signed manifests, the write-ahead
journal, and verify's chain logic run over an export file (the offline path an auditor uses)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from jatra.archive import export as export_module
from jatra.archive import layout, segments, signing
from jatra.archive.commands import audit
from jatra.archive.export import EVENTS, ExportReader
from jatra.archive.journal import Journal
from jatra.archive.manifest import Link, LogRange, Manifest, ManifestError, canonical, digest, parse
from jatra.archive.verify import verify
from jatra.settings import Settings

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def line(n: int, source: str = "payments") -> bytes:
    stamp = (T0 + dt.timedelta(seconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {"@timestamp": stamp, "message": "booking.confirmed", "booking_id": f"b-{n}", "service": source},
        separators=(",", ":"),
    ).encode()


# -- segments --------------------------------------------------------------------------------------------
def test_the_same_lines_make_the_same_bytes_with_no_time_in_the_gzip_header() -> None:
    lines = [line(n) for n in range(50)]
    a, b = segments.build(lines), segments.build(list(lines))
    assert a.data == b.data and a.sha256 == b.sha256 == digest(a.data)
    assert a.data[4:8] == b"\0\0\0\0"  # gzip MTIME
    assert segments.lines_of(a.data) == lines
    assert gzip.decompress(a.data) == b"".join(x + b"\n" for x in lines)
    assert (a.events, a.first, a.last) == (50, T0, T0 + dt.timedelta(seconds=49))
    assert segments.build(lines[:-1]).sha256 != a.sha256


def test_event_times_come_from_ecs_lines_and_other_lines_have_none() -> None:
    assert segments.event_time(line(3)) == T0 + dt.timedelta(seconds=3)
    reordered = json.dumps({"message": "x", "@timestamp": "2026-11-23T16:00:00.123+06:00"}).encode()
    assert segments.event_time(reordered) == dt.datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=dt.UTC)
    assert segments.event_time(b"Traceback (most recent call last):") is None
    built = segments.build([b"Traceback (most recent call last):"])
    assert (built.events, built.first, built.last) == (1, None, None)


PHONE, EMAIL = "+8801712345678", "rahim.uddin@example.com"
REBUILD = """
import json, sys
from jatra.archive import segments
lines = [x.encode("latin-1") for x in json.load(sys.stdin)]
print(segments.build(lines).sha256)
"""


def test_json_lines_are_archived_as_written_and_any_other_line_scrubbed_of_personal_data() -> None:
    """The pipeline's JSON is redacted where it is written; a Postgres error, a raw traceback or a Python
    repr of a dict is not, and the archive is kept for years."""
    # JSON is kept as written even where the patterns would find something (the pipeline decided there)
    ecs = json.dumps(
        {"@timestamp": "2026-12-06T04:10:00.123Z", "message": f"otp 123456 for {PHONE}"}
    ).encode()
    postgres = f"2026-12-06 04:10:00.123 UTC [812] DETAIL:  Key (phone)=({PHONE}) already exists.".encode()
    statement = f"2026-12-06 04:10:00.123 UTC [812] STATEMENT:  SELECT '{EMAIL}'::int".encode()
    repr_ = f"{{'phone': '{PHONE}', 'email': '{EMAIL}'}}".encode()
    harmless = b"2026-12-06 04:10:00.123 UTC [812] LOG:  checkpoint starting: time \xff\xfe"
    built = segments.build([ecs, postgres, statement, repr_, harmless])
    kept = segments.lines_of(built.data)
    assert kept[0] == ecs and kept[4] == harmless  # byte for byte, invalid UTF-8 included
    for scrubbed in kept[1:4]:
        assert PHONE.encode() not in scrubbed and EMAIL.encode() not in scrubbed, scrubbed
    assert kept[1].startswith(b"2026-12-06 04:10:00.123 UTC [812] DETAIL:  Key (phone)=(")
    assert built.events == 5
    # the same bytes in another process: a segment rebuilt after a crash hashes as planned
    again = subprocess.run(
        [sys.executable, "-c", REBUILD], input=json.dumps([x.decode("latin-1") for x in
        (ecs, postgres, statement, repr_, harmless)]), capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert again.stdout.strip() == built.sha256


# -- layout ----------------------------------------------------------------------------------------------
def test_manifest_keys_carry_sequence_and_time_range_and_sort_in_sequence_order() -> None:
    first, last = T0 + dt.timedelta(milliseconds=213), T0 + dt.timedelta(minutes=5)
    key = layout.manifest_key("api-1", 12, first, last)
    assert key == "manifests/api-1/0000000012_20261123T100000213Z_20261123T100500000Z.json"
    name = layout.parse_manifest_key(key)
    assert name is not None and (name.source, name.sequence, name.first, name.last) == (
        "api-1",
        12,
        first,
        last,
    )
    assert (
        name.overlaps(last, None)
        and name.overlaps(None, first)
        and not name.overlaps(last + dt.timedelta(1), None)
    )
    assert layout.manifest_key("a", 9, T0, T0) < layout.manifest_key("a", 10, T0 - dt.timedelta(days=9), T0)
    assert layout.parse_segment_key(layout.segment_key("api-1", 12)) == ("api-1", 12)
    assert layout.parse_manifest_key("manifests/api-1/12.json") is None
    with pytest.raises(ValueError, match="not an archivable source"):
        layout.segment_key("../etc", 1)


# -- manifests and signing -------------------------------------------------------------------------------
KEY = signing.load_private(signing.generate_pem())
OTHER = signing.load_private(signing.generate_pem())
KEY_ID = signing.key_id(KEY.public_key())


def manifest_for(source: str, seq: int, built: segments.SegmentBytes, previous: Link | None) -> Manifest:
    return Manifest(
        source=source,
        sequence=seq,
        environment="test",
        sealed_at=T0 + dt.timedelta(hours=1),
        events=built.events,
        first=built.first,
        last=built.last,
        segment_key=layout.segment_key(source, seq),
        segment_version=f"v{seq}",
        segment_sha256=built.sha256,
        segment_size=len(built.data),
        uncompressed_size=built.raw_bytes,
        log=LogRange(1, 2, 0, built.raw_bytes),
        previous=previous,
        retain_until=T0 + dt.timedelta(days=2557),
        legal_hold=False,
    )


def test_a_signed_manifest_is_canonical_deterministic_and_round_trips() -> None:
    m = manifest_for("payments", 1, segments.build([line(1), line(2)]), None)
    raw = m.signed(KEY)
    assert raw == m.signed(KEY)  # Ed25519 is deterministic: a manifest rebuilt after a crash is identical
    assert raw == canonical(json.loads(raw))
    back = parse(raw)
    assert back.key_id == signing.key_id(KEY.public_key())
    assert back.signature_ok(KEY.public_key()) and not back.signature_ok(OTHER.public_key())
    assert dataclasses.replace(back, signature="", key_id="") == m
    assert back.key == "manifests/payments/0000000001_20261123T100001000Z_20261123T100002000Z.json"


@pytest.mark.parametrize(
    ("path", "value"),
    [(("events", "count"), 3), (("segment", "sha256"), "0" * 64), (("previous",), None), (("sequence",), 7)],
)
def test_editing_any_signed_field_breaks_the_signature(path: tuple[str, ...], value: object) -> None:
    m = manifest_for("payments", 2, segments.build([line(1)]), Link(1, "manifests/x", "f" * 64))
    doc = json.loads(m.signed(KEY))
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert not parse(canonical(doc)).signature_ok(KEY.public_key())


def test_malformed_manifests_are_named() -> None:
    good = json.loads(manifest_for("payments", 1, segments.build([line(1)]), None).signed(KEY))
    with pytest.raises(ManifestError, match="not JSON"):
        parse(b"{nope")
    with pytest.raises(ManifestError, match="malformed"):
        parse(canonical({k: v for k, v in good.items() if k != "segment"}))
    with pytest.raises(ManifestError, match="not part of the format"):
        parse(canonical({**good, "extra": 1}))
    with pytest.raises(ManifestError, match="lock mode"):
        parse(canonical({**good, "lock": {**good["lock"], "mode": "GOVERNANCE"}}))


def test_the_signing_key_is_generated_once_and_shared(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    a, b = signing.signing_key(settings), signing.signing_key(settings)
    assert signing.key_id(a.public_key()) == signing.key_id(b.public_key())
    assert (tmp_path / "secrets" / signing.KEY_FILE).stat().st_mode & 0o077 == 0
    pem = signing.generate_pem()
    configured = signing.signing_key(Settings(state_dir=tmp_path, archive_signing_key=pem))
    assert signing.key_id(configured.public_key()) == signing.key_id(signing.load_private(pem).public_key())


# -- the journal -----------------------------------------------------------------------------------------
def test_the_journal_keeps_a_plan_until_it_is_done(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "pending")
    assert journal.pending() == []
    plan = manifest_for("payments", 4, segments.build([line(1)]), Link(3, "manifests/p/3", "a" * 64))
    plan = dataclasses.replace(plan, segment_version="")
    journal.write(plan)
    assert journal.pending() == [plan]
    journal.done("payments")
    assert journal.pending() == []
    journal.done("payments")  # twice is fine (a crash after the first)


# -- verify's chain logic, over an export file -----------------------------------------------------------
def chain(source: str, n: int, key: object = KEY, per: int = 3) -> dict[str, bytes]:
    """The objects of a clean archive of ``n`` segments of ``source``."""
    files: dict[str, bytes] = {}
    previous = None
    for seq in range(1, n + 1):
        built = segments.build([line(seq * per + i, source) for i in range(per)])
        m = manifest_for(source, seq, built, previous)
        raw = m.signed(key)  # type: ignore[arg-type]
        files[m.segment_key] = built.data
        files[m.key] = raw
        previous = Link(seq, m.key, digest(raw))
    return files


def export_file(tmp_path: Path, files: dict[str, bytes], events: bytes = b"") -> Path:
    path = tmp_path / "export.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in {**files, EVENTS: events}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def problems(tmp_path: Path, files: dict[str, bytes], key: object = KEY) -> list[str]:
    report = verify(ExportReader(export_file(tmp_path, files)), public_key=key.public_key())  # type: ignore[attr-defined]
    return [str(p) for p in report.problems]


def keys_of(files: dict[str, bytes], source: str) -> list[str]:
    return sorted(k for k in files if k.startswith(f"manifests/{source}/"))


def test_a_clean_chain_verifies(tmp_path: Path) -> None:
    files = {**chain("payments", 4), **chain("api-1", 2)}
    report = verify(ExportReader(export_file(tmp_path, files)), public_key=KEY.public_key())
    assert report.ok, report.problems
    assert (report.sources, report.manifests, report.segments, report.events) == (
        ["api-1", "payments"],
        6,
        6,
        18,
    )
    assert report.key_ids == {signing.key_id(KEY.public_key())}


def test_a_changed_segment_is_named(tmp_path: Path) -> None:
    files = chain("payments", 3)
    key = layout.segment_key("payments", 2)
    files[key] = segments.build([line(99)]).data
    (found,) = problems(tmp_path, files)
    assert found.startswith(f"payments #2 {key}: content changed: SHA-256")


def test_swapped_manifests_are_named_as_reordered(tmp_path: Path) -> None:
    files = chain("payments", 4)
    k2, k3 = keys_of(files, "payments")[1:3]
    files[k2], files[k3] = files[k3], files[k2]
    found = problems(tmp_path, files)
    assert f"payments #2 {k2}: claims sequence 3, but its key says 2 (reordered or replaced)" in found
    assert f"payments #3 {k3}: claims sequence 2, but its key says 3 (reordered or replaced)" in found


def test_a_missing_manifest_is_a_gap(tmp_path: Path) -> None:
    files = chain("payments", 4)
    del files[keys_of(files, "payments")[1]]
    found = problems(tmp_path, files)
    gap = "missing: no manifest with this sequence number (a gap in the chain)"
    assert f"payments #2 manifests/payments/0000000002_*.json: {gap}" in found
    assert "payments #2 segments/payments/0000000002.ndjson.gz: a segment without a manifest" in found


def test_an_edited_manifest_fails_its_signature(tmp_path: Path) -> None:
    files = chain("payments", 3)
    k2 = keys_of(files, "payments")[1]
    doc = json.loads(files[k2])
    doc["events"]["count"] += 1
    files[k2] = canonical(doc)
    found = problems(tmp_path, files)
    assert found[0] == f"payments #2 {k2}: signature does not verify with key {KEY_ID} (forged or edited)"
    # and the next manifest's link to it no longer holds
    assert found[1].startswith(
        f"payments #3 {keys_of(files, 'payments')[2]}: hash chain broken: it records SHA-256"
    )
    assert found[1].endswith(f"for manifest #2, which hashes to {digest(files[k2])}")
    assert len(found) == 2


def test_a_manifest_re_signed_with_another_key_is_named_and_breaks_the_chain(tmp_path: Path) -> None:
    files = chain("payments", 3)
    k2 = keys_of(files, "payments")[1]
    m = parse(files[k2])
    files[k2] = dataclasses.replace(m, events=m.events - 1, signature="", key_id="").signed(OTHER)
    found = problems(tmp_path, files)
    other = signing.key_id(OTHER.public_key())
    assert f"payments #2 {k2}: signed by key {other!r}, which is not the key given with --public-key" in found
    k3 = keys_of(files, "payments")[2]
    assert any(p.startswith(f"payments #3 {k3}: hash chain broken") for p in found)


def test_a_forged_signature_is_named(tmp_path: Path) -> None:
    files = chain("payments", 2)
    k2 = keys_of(files, "payments")[1]
    doc = json.loads(files[k2])
    doc["signature"] = signing.sign(OTHER, b"something else entirely")
    files[k2] = canonical(doc)
    assert problems(tmp_path, files) == [
        f"payments #2 {k2}: signature does not verify with key {KEY_ID} (forged or edited)"
    ]


def test_an_export_that_starts_mid_chain_warns_but_verifies(tmp_path: Path) -> None:
    files = chain("payments", 4)
    for key in keys_of(files, "payments")[:2]:
        del files[key]
        del files[layout.segment_key("payments", int(key.split("/")[2][:10]))]
    report = verify(ExportReader(export_file(tmp_path, files)), public_key=KEY.public_key())
    assert report.ok, report.problems
    assert [w.what for w in report.warnings] == [
        "the chain before this manifest is not in the export: nothing proves that no earlier segment of "
        "the window was left out"
    ]


def test_events_an_export_claims_must_be_in_its_segments(tmp_path: Path) -> None:
    files = chain("payments", 2)
    honest = ExportReader(export_file(tmp_path, files, events=line(3) + b"\n" + line(6) + b"\n"))
    assert honest.events_not_in_segments() == 0
    padded = ExportReader(export_file(tmp_path, files, events=line(3) + b"\n" + line(1234) + b"\n"))
    assert padded.events_not_in_segments() == 1


# -- an export's bounds: nothing of its window left out at either end ------------------------------------
#: chain("payments", 6) holds seconds 3-5 in segment 1, 6-8 in 2 ... 18-20 in 6: a window of segments 3-4
SINCE, UNTIL = T0 + dt.timedelta(seconds=9.5), T0 + dt.timedelta(seconds=13)


def window_export(tmp_path: Path, drop: tuple[str, ...] = (), events: bytes | None = None) -> ExportReader:
    """An export of the window as `jatra audit export` writes it: segments 3-4 with their manifests, and
    manifests 2 and 5 as bounds; ``drop`` leaves objects out."""
    files = chain("payments", 6)
    names = keys_of(files, "payments")
    kept = {names[i]: files[names[i]] for i in (1, 2, 3, 4)}
    kept |= {k: files[k] for k in (layout.segment_key("payments", 3), layout.segment_key("payments", 4))}
    for key in drop:
        del kept[key]
    if events is None:
        events = b"".join(line(n) + b"\n" for n in (10, 11, 12, 13))
    about = {"window": {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}}
    path = export_file(tmp_path, kept | {"export.json": json.dumps(about).encode()}, events)
    return ExportReader(path)


def check(reader: ExportReader) -> tuple[list[str], list[str]]:
    assert reader.window == (SINCE, UNTIL)
    since, until = SINCE, UNTIL
    report = verify(reader, since=since, until=until, public_key=KEY.public_key())
    return [str(p) for p in report.problems], [str(w) for w in report.warnings]


def test_an_export_with_its_bounds_verifies_with_no_warning(tmp_path: Path) -> None:
    reader = window_export(tmp_path)
    assert check(reader) == ([], [])
    assert reader.events_left_out(SINCE, UNTIL) == 0 and reader.events_not_in_segments() == 0


def test_an_export_that_leaves_out_its_last_segment_is_caught_by_its_end_bound(tmp_path: Path) -> None:
    names = keys_of(chain("payments", 6), "payments")
    found, _ = check(window_export(tmp_path, drop=(names[3], layout.segment_key("payments", 4))))
    gap = "missing: no manifest with this sequence number (a gap in the chain)"
    assert found == [f"payments #4 manifests/payments/0000000004_*.json: {gap}"]


def test_an_export_that_leaves_out_its_first_segment_is_caught_by_its_start_bound(tmp_path: Path) -> None:
    names = keys_of(chain("payments", 6), "payments")
    found, warned = check(window_export(tmp_path, drop=(names[2], layout.segment_key("payments", 3))))
    gap = "missing: no manifest with this sequence number (a gap in the chain)"
    assert found == [f"payments #3 manifests/payments/0000000003_*.json: {gap}"]
    assert warned == []


def test_an_export_without_an_end_bound_is_warned_of(tmp_path: Path) -> None:
    names = keys_of(chain("payments", 6), "payments")
    found, warned = check(window_export(tmp_path, drop=(names[4],)))
    assert found == []
    assert warned == [
        f"payments #4 {names[3]}: no manifest after this one in the export: nothing proves that no later "
        "segment of the window was left out (it may have been the last one sealed)"
    ]


def test_a_forged_end_bound_is_named(tmp_path: Path) -> None:
    files = chain("payments", 6)
    names = keys_of(files, "payments")
    forged = chain("payments", 6, key=OTHER)[names[4]]
    reader = window_export(tmp_path)
    reader.files[names[4]] = forged
    found, _ = check(reader)
    other = signing.key_id(OTHER.public_key())
    assert (
        f"payments #5 {names[4]}: signed by key {other!r}, which is not the key given with --public-key"
        in found
    )


def test_events_of_the_window_left_out_of_events_ndjson_are_counted(tmp_path: Path) -> None:
    reader = window_export(tmp_path, events=b"".join(line(n) + b"\n" for n in (10, 12, 13)))
    assert reader.events_left_out(SINCE, UNTIL) == 1
    assert (
        reader.events_left_out(None, None) == 3
    )  # seconds 9, 11 and 14: all of segments 3-4 but those listed


def test_an_export_made_before_windows_were_recorded_is_read_by_its_millisecond_ends(tmp_path: Path) -> None:
    about = {"since": "2026-11-23T10:00:09.500Z", "until": "2026-11-23T10:00:13.000Z"}
    files = {**chain("payments", 2), "export.json": json.dumps(about).encode()}
    assert ExportReader(export_file(tmp_path, files)).window == (SINCE + dt.timedelta(milliseconds=1), UNTIL)
    assert ExportReader(export_file(tmp_path, chain("payments", 2))).window == (None, None)


def cli_verify(reader: ExportReader, tmp_path: Path, *args: str) -> tuple[int, str]:
    """`jatra audit verify --export` over ``reader``'s files, with the key pinned."""
    path = export_file(tmp_path, {k: v for k, v in reader.files.items() if k != EVENTS}, reader.files[EVENTS])
    pem = tmp_path / "key.pem"
    pem.write_bytes(signing.public_pem(KEY.public_key()))
    ran = CliRunner().invoke(audit, ["verify", "--export", str(path), "--public-key", str(pem), *args])
    return ran.exit_code, ran.output


def test_verify_takes_the_auditors_window_before_the_one_the_export_records(tmp_path: Path) -> None:
    """export.json is not signed: one whose window was narrowed, with the events outside it taken out of
    events.ndjson, fails against the window the auditor asks for."""
    reader = window_export(tmp_path, events=b"".join(line(n) + b"\n" for n in (12, 13)))
    reader.files["export.json"] = json.dumps(
        {"window": {"since": (SINCE + dt.timedelta(seconds=2)).isoformat(), "until": UNTIL.isoformat()}}
    ).encode()
    code, out = cli_verify(reader, tmp_path, "--since", SINCE.isoformat(), "--until", UNTIL.isoformat())
    assert code == 1, out
    assert "WARN the window asked for reaches past the export's" in out
    assert "FAIL events.ndjson: 2 event(s) of the window in the segments are not in it" in out
    code, out = cli_verify(window_export(tmp_path), tmp_path)
    assert code == 0 and "OK: the archive verifies" in out and "WARN" not in out, out


def test_a_source_with_only_its_bounds_in_the_export_has_a_gap(tmp_path: Path) -> None:
    names = keys_of(chain("payments", 6), "payments")
    drop = (names[2], names[3], layout.segment_key("payments", 3), layout.segment_key("payments", 4))
    found, _ = check(window_export(tmp_path, drop=drop, events=b""))
    gap = "missing: no manifest with this sequence number (a gap in the chain)"
    assert found == [f"payments #{n} manifests/payments/000000000{n}_*.json: {gap}" for n in (3, 4)]


def test_what_an_export_covers_is_a_run_without_holes_and_its_bounds_meet_nothing(tmp_path: Path) -> None:
    """One listing decides both; a segment whose times stray outside the window between two that meet it
    is exported all the same, or the chain would have a hole."""
    files = chain("payments", 6)
    names = [layout.parse_manifest_key(k) for k in keys_of(files, "payments")]
    listed = [n for n in names if n is not None]
    stray = dataclasses.replace(listed[3], first=T0 + dt.timedelta(hours=1), last=T0 + dt.timedelta(hours=1))
    covered, bounds = export_module._covered(
        [*listed[:3], stray, *listed[4:]], SINCE, T0 + dt.timedelta(seconds=16)
    )
    assert [n.sequence for n in covered] == [3, 4, 5] and [n.sequence for n in bounds] == [2, 6]
    assert not any(b.overlaps(SINCE, T0 + dt.timedelta(seconds=16)) for b in bounds)
