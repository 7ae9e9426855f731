"""The log follower: nothing lost and nothing read twice across restarts, rotations and truncations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from jatra.infra.logfiles import ROTATED, Follower, Position, timestamp_of


def event(n: int) -> bytes:
    return json.dumps({"@timestamp": f"2026-11-23T10:00:{n % 60:02d}.250Z", "message": f"e{n}"}).encode()


def drain(follower: Follower) -> list[bytes]:
    """Everything new, committed as it is read (as a reader does once its lines are safe)."""
    seen = []
    while chunks := follower.read(max_bytes_per_source=256):
        seen += [line.raw for c in chunks for line in c.lines]
        follower.commit(chunks)
    return seen


def test_a_restarted_reader_continues_where_it_committed(tmp_path: Path) -> None:
    log = tmp_path / "api-1.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(10)))
    first = Follower(tmp_path, tmp_path / "cursor.json", ["api-1"])
    chunks = first.read(max_bytes_per_source=200)
    first.commit(chunks)
    got = [line.raw for c in chunks for line in c.lines]
    uncommitted = first.read()  # read but never committed: the reader "crashed" here
    assert uncommitted
    again = Follower(tmp_path, tmp_path / "cursor.json", ["api-1"])
    got += drain(again)
    assert got == [event(n) for n in range(10)]


def test_a_half_written_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "payments.log"
    log.write_bytes(event(1) + b"\n" + event(2)[:10])
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"])
    assert drain(follower) == [event(1)]
    with log.open("ab") as f:
        f.write(event(2)[10:] + b"\n")
    assert drain(follower) == [event(2)]


def test_a_rotated_file_is_finished_before_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "outbox.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(3)))
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["outbox"])
    seen = drain(follower)
    with log.open("ab") as f:  # written after the last read, then rotated away (supervisord renames)
        f.write(event(3) + b"\n")
    log.rename(tmp_path / "outbox.log.1")
    log.write_bytes(event(4) + b"\n")
    seen += drain(follower)
    assert seen == [event(n) for n in range(5)]
    assert follower.lag_bytes() == 0


def test_a_file_truncated_in_place_is_read_from_its_start(tmp_path: Path) -> None:
    older = tmp_path / "reaper.log.1"  # rotated before the live file began, and read before it
    older.write_bytes(event(0) + b"\n")
    began = timestamp_of(event(0))
    assert began is not None
    os.utime(older, (began - 60, began - 60))
    log = tmp_path / "reaper.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(5)))
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["reaper"], reader="truncate-test")
    drain(follower)
    log.write_bytes(event(9) + b"\n")  # same inode, shorter, other first bytes, no copy
    assert drain(follower) == [event(9)]  # neither the rotated file again nor a loss
    assert lost("truncate-test", "reaper") == 0


def test_only_named_sources_are_read_and_ids_are_stable(tmp_path: Path) -> None:
    (tmp_path / "api-1.log").write_bytes(event(1) + b"\n" + event(1) + b"\n")
    (tmp_path / "postgres.log").write_bytes(b"LOG:  database system is ready\n")
    first = Follower(tmp_path, tmp_path / "a.json", ["api-1"]).read()
    second = Follower(tmp_path, tmp_path / "b.json", ["api-1"]).read()
    assert [c.source for c in first] == ["api-1"]
    ids = [line.id for line in first[0].lines]
    assert ids == [line.id for line in second[0].lines]
    assert len(set(ids)) == 2  # the same bytes at two places are two events


def test_lag_and_the_oldest_unread_event(tmp_path: Path) -> None:
    (tmp_path / "api-1.log").write_bytes(event(5) + b"\n")
    (tmp_path / "api-2.log").write_bytes(event(3) + b"\n" + event(7) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["api-1", "api-2"])
    assert follower.lag_bytes() == 3 * (len(event(0)) + 1)
    assert follower.oldest_unread() == timestamp_of(event(3))
    drain(follower)
    assert follower.lag_bytes() == 0 and follower.oldest_unread() is None


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.booleans()), min_size=1, max_size=12),
    budget=st.integers(40, 400),
)
def test_any_interleaving_of_writes_rotations_and_restarts_reads_each_line_once(
    writes: list[tuple[int, bool, bool]], budget: int
) -> None:
    import tempfile  # noqa: PLC0415 - a fresh directory per example

    root = Path(tempfile.mkdtemp())
    log = root / "api-1.log"
    log.touch()
    follower = Follower(root, root / "cursor.json", ["api-1"])
    written: list[bytes] = []
    seen: list[bytes] = []
    n = 0
    for count, rotate, restart in writes:
        with log.open("ab") as f:
            for _ in range(count):
                written.append(event(n))
                f.write(event(n) + b"\n")
                n += 1
        if rotate:
            for k in range(8, 0, -1):  # supervisord's scheme: .1 -> .2 ..., then the live file -> .1
                older = root / f"api-1.log.{k}"
                if older.exists():
                    older.rename(root / f"api-1.log.{k + 1}")
            log.rename(root / "api-1.log.1")
            log.touch()
        if restart:
            follower = Follower(root, root / "cursor.json", ["api-1"])
        chunks = follower.read(max_bytes_per_source=budget)
        seen += [line.raw for c in chunks for line in c.lines]
        follower.commit(chunks)
    seen += drain(follower)
    assert seen == written


def test_by_default_every_ecs_log_is_a_source_and_no_server_log_is(tmp_path: Path) -> None:
    ecs = json.dumps({"@timestamp": "2026-11-23T10:00:00Z", "ecs.version": "1.6.0", "message": "m"})
    (tmp_path / "payments.log").write_text(ecs + "\n")
    (tmp_path / "postgres.log").write_text("2026-11-23 10:00:00 UTC LOG:  database system is ready\n")
    (tmp_path / "api-1.log").write_text(ecs[:5])  # nothing whole yet
    follower = Follower(tmp_path, tmp_path / "cursor.json")
    assert follower.sources() == ["payments"]
    (tmp_path / "api-1.log").write_text(ecs + "\n")
    assert follower.sources() == ["api-1", "payments"]


def test_reading_on_from_held_positions_leaves_the_cursor_and_sees_rotation(tmp_path: Path) -> None:
    """The archiver holds lines in open segments: it reads past them without committing."""
    log = tmp_path / "payments.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(4)))
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"])
    (first,) = follower.read(max_bytes_per_source=2 * (len(event(0)) + 1))
    assert [line.raw for line in first.lines] == [event(0), event(1)]
    assert first.start is not None and first.start.offset == 0
    (second,) = follower.read_from({"payments": first.after})
    assert second.start == first.after and [line.raw for line in second.lines] == [event(2), event(3)]
    assert follower.read_from({"payments": second.after}) == []
    assert [line.raw for c in follower.read() for line in c.lines][:1] == [event(0)]  # cursor unmoved
    log.rename(tmp_path / "payments.log.1")
    log.write_bytes(event(4) + b"\n")
    (third,) = follower.read_from({"payments": second.after})
    assert third.start is not None and (third.start.ino, third.start.offset) != (
        second.after.ino,
        second.after.offset,
    )
    assert [line.raw for line in third.lines] == [event(4)]


def test_a_byte_range_is_read_again_exactly_by_file_identity(tmp_path: Path) -> None:
    log = tmp_path / "payments.log"
    log.write_bytes(event(0) + b"\n\n" + event(1) + b"\n" + event(2) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"])
    (chunk,) = follower.read()
    start, end = chunk.start, chunk.after
    assert start is not None
    log.rename(tmp_path / "payments.log.1")  # rotated since: found by identity, not by name
    log.write_bytes(event(7) + b"\n")
    again = follower.read_range("payments", start.dev, start.ino, start.offset, end.offset)
    assert again == chunk.lines  # same lines, offsets and ids; the blank line skipped as before
    middle = chunk.lines[1].offset
    assert [
        x.raw for x in follower.read_range("payments", start.dev, start.ino, middle, end.offset) or []
    ] == [
        event(1),
        event(2),
    ]
    assert follower.read_range("payments", start.dev, start.ino, 0, end.offset + 5) is None  # past the end
    assert follower.read_range("payments", start.dev, start.ino, 0, 3) is None  # not a line's end
    assert (
        follower.read_range("payments", start.dev, start.ino + 10**9, 0, end.offset) is None
    )  # no such file


def lost(reader: str, source: str) -> float:
    value = REGISTRY.get_sample_value("jatra_log_files_lost_total", {"reader": reader, "source": source})
    return -1.0 if value is None else value


def test_a_file_rotated_out_of_reach_unfinished_is_counted_once_and_logged(tmp_path: Path) -> None:
    log = tmp_path / "payments.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(4)))
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"], reader="loss-test")
    first = follower.read(max_bytes_per_source=150)  # part of the file, committed
    follower.commit(first)
    assert lost("loss-test", "payments") == 0  # the series exists from the first read
    # the reader stops; the file it stood in rotates past every generation it looks at (kept open here so
    # that its inode is not given to a new file)
    held = [log.open("rb")]
    for n in range(ROTATED + 1):
        for older in range(ROTATED, 0, -1):
            name = tmp_path / f"payments.log.{older}"
            if name.exists():
                if older == ROTATED:
                    held.append(name.open("rb"))
                    name.unlink()
                else:
                    name.rename(tmp_path / f"payments.log.{older + 1}")
        log.rename(tmp_path / "payments.log.1")
        log.write_bytes(event(100 + n) + b"\n")
    gone_at = first[0].after
    further = Position(gone_at.dev, gone_at.ino, gone_at.offset + 10)
    with structlog.testing.capture_logs() as events:
        follower.lag_bytes()  # the scrape's read sees the loss too: counted once for all of them
        # as the archiver reads on from an open segment further in the same file: the same file, once
        follower.read_from({"payments": further})
        rest = drain(follower)
        follower.lag_bytes()
    assert lost("loss-test", "payments") == 1
    assert rest == [event(100 + n) for n in range(ROTATED + 1)][-ROTATED - 1 :]
    gone = [e for e in events if e["event"] == "logfiles.rotated_unread"]
    assert len(gone) == 1
    assert gone[0]["reader"] == "loss-test" and gone[0]["source"] == "payments"
    assert gone[0]["offset"] == first[0].after.offset
    for f in held:
        f.close()


def test_a_rotated_file_read_to_its_end_in_time_is_no_loss(tmp_path: Path) -> None:
    log = tmp_path / "payments.log"
    log.write_bytes(event(1) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"], reader="no-loss-test")
    log.rename(tmp_path / "payments.log.1")
    log.write_bytes(event(2) + b"\n")
    assert drain(follower) == [event(1), event(2)]
    assert lost("no-loss-test", "payments") == 0


def test_a_new_file_given_the_identity_of_the_readers_deleted_file_is_not_taken_for_it(
    tmp_path: Path,
) -> None:
    log = tmp_path / "payments.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(6)))
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["payments"], reader="reuse-test")
    first = follower.read(max_bytes_per_source=150)  # part of the file, committed
    follower.commit(first)
    saved = json.loads((tmp_path / "cursor.json").read_text())
    stood, head = saved["positions"]["payments"], saved["heads"]["payments"]
    # the cursor keeps the file's fingerprint and its first event's time
    assert head["length"] > 0 and head["first"] == timestamp_of(event(0))
    # the reader stops; its file rotates past every generation and is deleted; newer generations and a new
    # live file are written, and the filesystem gives the new live file the deleted file's inode. That
    # last step is not the test's to make happen, so the cursor is made to name the new file's identity,
    # which is all that reuse changes.
    log.unlink()
    (tmp_path / "payments.log.2").write_bytes(event(20) + b"\n")
    (tmp_path / "payments.log.1").write_bytes(event(21) + b"\n")
    for name in ("payments.log.2", "payments.log.1"):  # written after the reader's file began
        os.utime(tmp_path / name, (head["first"] + 600, head["first"] + 600))
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(22, 26)))
    reused = log.stat()
    identity = {"dev": reused.st_dev, "ino": reused.st_ino}
    (tmp_path / "cursor.json").write_text(
        json.dumps({"positions": {"payments": stood | identity}, "heads": {"payments": head | identity}})
    )
    again = Follower(tmp_path, tmp_path / "cursor.json", ["payments"], reader="reuse-test")
    with structlog.testing.capture_logs() as events:
        rest = drain(again)
    # every generation there is, from the oldest: none skipped, the new file from its start
    assert rest == [event(n) for n in range(20, 26)]
    assert lost("reuse-test", "payments") == 1
    assert [e["offset"] for e in events if e["event"] == "logfiles.rotated_unread"] == [stood["offset"]]


@pytest.mark.parametrize("past_the_copy", [False, True])
def test_a_copy_truncated_file_is_finished_in_its_copy(tmp_path: Path, past_the_copy: bool) -> None:
    log = tmp_path / "reaper.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(6)))
    reader = f"copy-test-{past_the_copy}"
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["reaper"], reader=reader)
    first = follower.read(max_bytes_per_source=150)
    follower.commit(first)
    seen = [line.raw for c in first for line in c.lines]
    # logrotate's copytruncate: the file is copied to .1 (a new inode), then cut short in place and
    # written on. Lines written between the copy and the cut are in neither (logrotate's own window): a
    # reader that read them stands past the copy's end.
    copied = log.read_bytes()
    if past_the_copy:
        with log.open("ab") as f:
            f.write(event(6) + b"\n")
        seen += drain(follower)
    (tmp_path / "reaper.log.1").write_bytes(copied)
    with log.open("r+b") as f:
        f.truncate(0)
        f.write(event(30) + b"\n" + event(31) + b"\n")
    seen += drain(Follower(tmp_path, tmp_path / "cursor.json", ["reaper"], reader=reader))
    written = [*(event(n) for n in range(7 if past_the_copy else 6)), event(30), event(31)]
    assert seen == written
    assert lost(reader, "reaper") == 0


def test_a_cursor_written_before_fingerprints_is_read_as_before(tmp_path: Path) -> None:
    log = tmp_path / "outbox.log"
    log.write_bytes(b"".join(event(n) + b"\n" for n in range(4)))
    end_of_two = 2 * (len(event(0)) + 1)
    st = log.stat()
    (tmp_path / "cursor.json").write_text(
        json.dumps({"positions": {"outbox": {"dev": st.st_dev, "ino": st.st_ino, "offset": end_of_two}}})
    )
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["outbox"])
    assert drain(follower) == [event(2), event(3)]
    saved = json.loads((tmp_path / "cursor.json").read_text())
    assert saved["heads"]["outbox"]["length"] > 0
    # and a version before the fingerprints still reads the positions as it did (a rollback): it made
    # each with Position(**v) of exactly these fields
    assert set(saved["positions"]["outbox"]) == {"dev", "ino", "offset"}
    assert Position(**saved["positions"]["outbox"]) == follower.cursor.positions["outbox"]


def test_a_file_cut_short_in_place_then_rotated_is_read_from_its_start(tmp_path: Path) -> None:
    older = tmp_path / "api-1.log.1"
    older.write_bytes(event(0) + b"\n")
    began = timestamp_of(event(10))
    assert began is not None
    os.utime(older, (began - 60, began - 60))  # rotated before the live file began
    log = tmp_path / "api-1.log"
    log.write_bytes(event(10) + b"\n" + event(11) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["api-1"], reader="cut-rotated-test")
    assert drain(follower) == [event(0), event(10), event(11)]
    with log.open("r+b") as f:  # cut short in place, written on, then rotated before the next read
        f.truncate(0)
        f.write(event(12) + b"\n")
    (tmp_path / "api-1.log.1").rename(tmp_path / "api-1.log.2")
    log.rename(tmp_path / "api-1.log.1")
    log.write_bytes(event(13) + b"\n")
    assert drain(follower) == [event(12), event(13)]  # nothing older again, nothing lost
    assert lost("cut-rotated-test", "api-1") == 0


def test_a_file_rewritten_to_the_same_length_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "api-2.log"
    log.write_bytes(event(10) + b"\n" + event(11) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["api-2"])
    assert drain(follower) == [event(10), event(11)]
    with log.open("r+b") as f:  # cut short in place and written to where the reader stood
        f.truncate(0)
        f.write(event(12) + b"\n" + event(13) + b"\n")
    assert drain(follower) == [event(12), event(13)]


def test_a_rotated_file_ending_in_half_a_line_is_left_behind(tmp_path: Path) -> None:
    rotated = tmp_path / "notifications.log.1"
    rotated.write_bytes(event(0) + b"\n" + event(1)[:20])  # the writer died mid-line, then rotated
    long_ago = rotated.stat().st_mtime - 120
    os.utime(rotated, (long_ago, long_ago))
    (tmp_path / "notifications.log").write_bytes(event(2) + b"\n")
    follower = Follower(tmp_path, tmp_path / "cursor.json", ["notifications"])
    with structlog.testing.capture_logs() as events:
        assert drain(follower) == [event(0), event(2)]
    dropped = [e for e in events if e["event"] == "logfiles.partial_line_dropped"]
    assert [e["size"] for e in dropped] == [20]
