"""The auditors' archive against the real S3 server (SeaweedFS, Object Lock in COMPLIANCE mode): real log
lines archived exactly once, every object locked, and every kind of tampering named by verify."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from jatra.archive import layout, segments, signing
from jatra.archive.manifest import Link, Manifest, canonical, digest
from jatra.archive.search import Query, search
from jatra.archive.verify import BucketReader, verify
from jatra.settings import Settings
from jatra.stack.manager import Stack
from tests.integration.archive_support import Archive, appended, emit, file_lines, new_archive

pytestmark = pytest.mark.integration


@pytest.fixture
def archive(stack: Stack, settings: Settings, tmp_path: Path) -> Archive:
    return new_archive(settings, tmp_path)


@pytest.fixture
def sealed(archive: Archive) -> Archive:
    """A clean archive: payments in at least four segments, api-1 in at least one."""
    emit(archive.log_dir, "payments", 60, "pay")
    emit(archive.log_dir, "api-1", 12, "api")
    archiver = archive.archiver()
    archiver.run_once()
    archiver.flush()
    assert len(archive.manifests("payments")) >= 4
    assert archive.verify().ok
    return archive


def put(archive: Archive, key: str, data: bytes) -> str:
    """Write ``key`` as an attacker with the archive's own credentials would."""
    result = archive.store.client.put_object(
        archive.settings.archive_bucket, key, io.BytesIO(data), len(data)
    )
    return str(result.version_id)


def problems(archive: Archive) -> list[str]:
    return [str(p) for p in archive.verify().problems]


def test_every_real_log_line_is_archived_once_across_sizes_ages_and_a_rotation(archive: Archive) -> None:
    archiver = archive.archiver()
    emit(archive.log_dir, "payments", 30, "a")
    emit(archive.log_dir, "api-1", 5, "b")
    archiver.run_once()  # payments is over the size: sealed; api-1 stays open (young and small)
    assert [m.sequence for _, m in archive.manifests("payments")] == [1]
    assert archive.manifests("api-1") == []
    emit(archive.log_dir, "payments", 10, "c")
    (archive.log_dir / "payments.log").rename(archive.log_dir / "payments.log.1")  # supervisord rotates
    emit(archive.log_dir, "payments", 7, "d")
    archiver.run_once(now=dt.datetime.now(dt.UTC).timestamp() + 3600)  # an hour on: every open one is due
    for source in ("payments", "api-1"):
        assert archive.archived(source) == file_lines(archive.log_dir, source)
        chained = archive.manifests(source)
        assert [m.sequence for _, m in chained] == list(range(1, len(chained) + 1))
        for (_, before), (_, after) in itertools.pairwise(chained):
            assert after.previous is not None and after.previous.sequence == before.sequence
    ranges = [(m.log.ino, m.log.start, m.log.end) for _, m in archive.manifests("payments")]
    assert len({ino for ino, _, _ in ranges}) == 2  # a segment never spans the rotation
    assert archive.archiver().run_once() == 0  # a restarted archiver finds nothing new
    assert set(archive.versions_per_key().values()) == {1}
    report = archive.verify()
    assert report.ok, report.problems
    assert report.events == 30 + 5 + 10 + 7


def test_manifests_say_what_the_issue_asks_and_every_object_is_locked(sealed: Archive) -> None:
    key_id = signing.key_id(sealed.key.public_key())
    published = sealed.store.get(layout.public_key_key(key_id))
    assert published is not None and published.data == signing.public_pem(sealed.key.public_key())
    previous = None
    for key, m in sealed.manifests("payments"):
        segment = sealed.store.get(m.segment_key, m.segment_version)
        assert segment is not None
        assert (m.segment_sha256, m.segment_size) == (digest(segment.data), len(segment.data))
        lines = segments.lines_of(segment.data)
        assert m.events == len(lines) and (m.first, m.last) == (
            segments.event_time(lines[0]),
            segments.event_time(lines[-1]),
        )
        assert m.source == "payments" and m.key_id == key_id and m.signature_ok(sealed.key.public_key())
        assert m.log.end - m.log.start == m.uncompressed_size
        assert m.previous == previous
        stored = sealed.store.get(key)
        assert stored is not None and stored.data == canonical(json.loads(stored.data))
        for obj in (segment, stored, published):
            assert obj.lock_mode == "COMPLIANCE" and obj.retain_until is not None
            assert obj.retain_until > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
        assert m.retain_until <= segment.retain_until  # type: ignore[operator]
        previous = Link(m.sequence, key, digest(stored.data))


def test_object_lock_refuses_deleting_a_locked_version_or_shortening_its_retention(sealed: Archive) -> None:
    client, bucket = sealed.store.client, sealed.settings.archive_bucket
    _, m = sealed.manifests("payments")[0]
    with pytest.raises(S3Error) as refused:
        client.remove_object(bucket, m.segment_key, version_id=m.segment_version)
    assert refused.value.code == "AccessDenied"
    shorter = Retention(COMPLIANCE, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with pytest.raises(S3Error) as refused:
        client.set_object_retention(bucket, m.segment_key, shorter, version_id=m.segment_version)
    assert refused.value.code == "AccessDenied"
    assert sealed.store.get(m.segment_key, m.segment_version) is not None
    assert sealed.verify().ok


def test_a_lifted_legal_hold_is_reported(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    held = new_archive(settings, tmp_path, archive_legal_hold=True)
    emit(held.log_dir, "payments", 12, "pay")
    archiver = held.archiver()
    archiver.run_once()
    archiver.flush()
    _, m = held.manifests("payments")[0]
    stored = held.store.get(m.segment_key, m.segment_version)
    assert m.legal_hold and stored is not None and stored.legal_hold
    assert held.verify().ok
    # whoever may set a legal hold may lift it: then the object can go once its retention ends
    held.store.client.disable_object_legal_hold(
        held.settings.archive_bucket, m.segment_key, version_id=m.segment_version
    )
    assert problems(held) == [
        f"payments #1 {m.segment_key}: the segment's legal hold is off: its manifest records one (lifted)"
    ]


def test_a_new_version_written_over_a_segment_is_tampering(sealed: Archive) -> None:
    _, m = sealed.manifests("payments")[1]
    forged = segments.build([b'{"message":"nothing happened here"}']).data
    version = put(sealed, m.segment_key, forged)
    assert problems(sealed) == [
        f"payments #2 {m.segment_key}: overwritten: version(s) {version} written over the locked segment"
    ]
    # what a reader of the latest version would get is not what was archived; search reads the recorded one
    assert any(b"pay-" in raw for raw in search(sealed.store, Query(booking_id="pay-3")).events)


def test_a_deleted_segment_is_reported(sealed: Archive) -> None:
    _, m = sealed.manifests("payments")[2]
    sealed.store.client.remove_object(sealed.settings.archive_bucket, m.segment_key)  # a delete marker
    assert problems(sealed) == [
        f"payments #3 {m.segment_key}: deleted: a delete marker hides the locked segment"
    ]


def test_swapped_manifests_are_reported_as_reordering(sealed: Archive) -> None:
    (k2, _), (k3, _) = sealed.manifests("payments")[1:3]
    raw2, raw3 = sealed.store.get(k2), sealed.store.get(k3)
    assert raw2 is not None and raw3 is not None
    put(sealed, k2, raw3.data)
    put(sealed, k3, raw2.data)
    found = problems(sealed)
    assert f"payments #2 {k2}: claims sequence 3, but its key says 2 (reordered or replaced)" in found
    assert f"payments #3 {k3}: claims sequence 2, but its key says 3 (reordered or replaced)" in found
    assert any(p.startswith(f"payments #2 {k2}: overwritten: 2 versions of a locked manifest") for p in found)
    assert any(p.startswith(f"payments #3 {k3}: overwritten: 2 versions of a locked manifest") for p in found)


def test_an_edited_manifest_is_reported(sealed: Archive) -> None:
    k2, _ = sealed.manifests("payments")[1]
    stored = sealed.store.get(k2)
    assert stored is not None
    doc = json.loads(stored.data)
    doc["events"]["count"] -= 1  # hide an event
    put(sealed, k2, canonical(doc))
    found = problems(sealed)
    key_id = signing.key_id(sealed.key.public_key())
    assert f"payments #2 {k2}: signature does not verify with key {key_id} (forged or edited)" in found
    assert any(p.startswith(f"payments #2 {k2}: overwritten: 2 versions of a locked manifest") for p in found)
    k3 = sealed.manifests("payments")[2][0]
    assert any(p.startswith(f"payments #3 {k3}: hash chain broken") for p in found)


def test_a_manifest_replaced_and_re_signed_with_another_key_is_reported(sealed: Archive) -> None:
    k2, m2 = sealed.manifests("payments")[1]
    other = signing.load_private(signing.generate_pem())
    put(sealed, k2, dataclasses.replace(m2, events=m2.events - 1, key_id="", signature="").signed(other))
    found = problems(sealed)
    other_id = signing.key_id(other.public_key())
    assert (
        f"payments #2 {k2}: signed by key {other_id!r}, which is not the key given with --public-key" in found
    )
    assert any(p.startswith(f"payments #2 {k2}: overwritten: 2 versions") for p in found)


def forge_appended(sealed: Archive) -> tuple[Manifest, int]:
    """A forger appends a segment with a refund in it and writes the manifest that links correctly to the
    last one; returns that manifest (unsigned, not stored: the forger signs it as they can) and its
    sequence."""
    last_key, last = sealed.manifests("payments")[-1]
    stored = sealed.store.get(last_key)
    assert stored is not None
    built = segments.build([b'{"@timestamp":"2026-11-23T10:00:00.000Z","message":"refund.approved"}'])
    seq = last.sequence + 1
    version = put(sealed, layout.segment_key("payments", seq), built.data)
    return appended(last, last_key, stored.data, built, version), seq


def test_a_forged_signature_on_an_appended_manifest_is_reported(sealed: Archive) -> None:
    # a signature they made up, under the archive's key id
    forged, seq = forge_appended(sealed)
    doc = json.loads(forged.signed(sealed.key))
    doc["signature"] = signing.sign(signing.load_private(signing.generate_pem()), canonical(forged.body()))
    put(sealed, forged.key, canonical(doc))
    key_id = signing.key_id(sealed.key.public_key())
    found = problems(sealed)
    assert any(
        f"payments #{seq} {forged.key}: signature does not verify with key {key_id}" in p for p in found
    )
    # and the forged object is not under a COMPLIANCE lock, which a real seal always sets
    assert (
        f"payments #{seq} {forged.key}: the manifest is not under COMPLIANCE retention (mode None)" in found
    )


def test_search_leaves_out_what_no_trusted_signature_proves(sealed: Archive) -> None:
    everything = Query(since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    before = search(sealed.store, everything)
    assert before.warnings == [] and before.left_out == 0 and before.events
    forged, _ = forge_appended(sealed)  # signed by the forger's own key, published nowhere
    other = signing.load_private(signing.generate_pem())
    put(sealed, forged.key, dataclasses.replace(forged, key_id="", signature="").signed(other))
    forged_key = forged.key
    # an edited manifest: its signature no longer verifies
    k2, _ = sealed.manifests("payments")[1]
    stored = sealed.store.get(k2)
    assert stored is not None
    doc = json.loads(stored.data)
    doc["events"]["count"] -= 1
    put(sealed, k2, canonical(doc))
    for public_key in (None, sealed.key.public_key()):  # the published key, or the one the auditor holds
        found = search(sealed.store, everything, public_key=public_key)
        assert not any(b"refund.approved" in raw for raw in found.events)
        assert found.left_out == 2
        assert any(w.startswith(f"{forged_key}: signed by untrusted key") for w in found.warnings), found
        assert any(w.startswith(f"{k2}: its signature does not verify") for w in found.warnings), found
        assert len(found.events) < len(before.events)


def test_search_leaves_out_a_signed_manifest_under_another_key_and_wants_a_pinned_key(
    sealed: Archive,
) -> None:
    everything = Query(since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    (k2, _), (k3, _) = sealed.manifests("payments")[1:3]
    raw2 = sealed.store.get(k2)
    assert raw2 is not None
    put(sealed, k3, raw2.data)  # #2's manifest, validly signed, under #3's key: its events shown twice
    found = search(sealed.store, everything)
    assert found.left_out == 1 and not found.unpinned
    moved = f"{k3}: claims payments #2, but its key says payments #3"
    assert any(w.startswith(moved) for w in found.warnings), found.warnings
    # a second key published (anyone who can write the bucket can): not trusted blindly
    other = signing.load_private(signing.generate_pem()).public_key()
    put(sealed, layout.public_key_key(signing.key_id(other)), signing.public_pem(other))
    assert search(sealed.store, everything).unpinned
    assert not search(sealed.store, everything, public_key=sealed.key.public_key()).unpinned


def test_a_deleted_manifest_is_reported(sealed: Archive) -> None:
    k3, _ = sealed.manifests("payments")[2]
    sealed.store.client.remove_object(sealed.settings.archive_bucket, k3)
    assert problems(sealed) == [f"payments #3 {k3}: deleted: a delete marker hides the locked manifest"]


def test_verify_and_search_read_only_the_window(sealed: Archive) -> None:
    chained = sealed.manifests("payments")
    _, middle = chained[1]
    assert middle.first is not None and middle.last is not None
    # tamper outside the window: a window that does not reach it verifies clean
    _, last = chained[-1]
    put(sealed, last.segment_key, b"junk")
    assert not sealed.verify().ok
    windowed = verify(
        BucketReader(sealed.store), since=middle.first, until=middle.last, public_key=sealed.key.public_key()
    )
    assert windowed.ok, windowed.problems
    assert windowed.manifests <= 3
    found = search(sealed.store, Query(since=middle.first, until=middle.last), ["payments"])
    assert found.segments <= 3
    times = [(segments.event_time(raw), raw) for raw in sealed.archived("payments")]
    assert found.events == [raw for t, raw in times if t is not None and middle.first <= t <= middle.last]


def test_search_by_booking_and_trace_id(sealed: Archive) -> None:
    found = search(sealed.store, Query(booking_id="pay-17"))
    (event,) = [json.loads(raw) for raw in found.events]
    assert event["booking_id"] == "pay-17" and event["message"] == "booking.created"
    trace_id = event["trace"]["id"]
    by_trace = search(sealed.store, Query(trace_id=trace_id))
    assert [json.loads(raw)["booking_id"] for raw in by_trace.events] == ["pay-17"]
    assert search(sealed.store, Query(booking_id="pay-1")).events == [
        raw for raw in sealed.archived("payments") if json.loads(raw)["booking_id"] == "pay-1"
    ]
    assert search(sealed.store, Query(booking_id="pay-1"), ["api-1"]).events == []


# A Jatra process with its logging configured, then what Python prints raw on stderr, which supervisord
# writes into the same log: an exception raised in a __del__ ("Exception ignored in: ..."), its message
# quoting a phone number.
UNRAISABLE = """
import sys
import structlog
from jatra.settings import Settings
from jatra.telemetry.logs import configure_logging

configure_logging(Settings(environment="test"), "payments")
structlog.get_logger().info("booking.created", booking_id="b-1")
class Lookup:
    def __del__(self):
        raise ValueError("no account for " + sys.argv[1])
Lookup()
structlog.get_logger().info("booking.confirmed", booking_id="b-1")
"""


def test_a_raw_traceback_in_a_process_log_is_archived_without_the_personal_data_in_it(
    archive: Archive,
) -> None:
    """The archive keeps a process's log line for line. Its JSON was redacted where it was written; the text
    Python prints raw is not JSON, and is archived scrubbed."""
    phone = f"+88017{uuid.uuid4().int % 10**8:08d}"
    archive.log_dir.mkdir(parents=True, exist_ok=True)
    with (archive.log_dir / "payments.log").open("ab") as out:
        subprocess.run(
            [sys.executable, "-c", UNRAISABLE, phone], stdout=out, stderr=out, check=True, timeout=60
        )
    lines = file_lines(archive.log_dir, "payments")
    assert any(phone.encode() in raw and not raw.startswith(b"{") for raw in lines), lines
    archiver = archive.archiver()
    archiver.run_once()
    archiver.flush()
    kept = archive.archived("payments")
    assert len(kept) == len(lines) and not [raw for raw in kept if phone.encode() in raw]
    assert [b for a, b in zip(kept, lines, strict=True) if a != b] == [
        raw for raw in lines if phone.encode() in raw
    ]  # only the lines that held it are changed; the JSON ones are as written
    assert archive.verify().ok
