"""The backup worker's schedule and the drill's verdicts, as pure functions (the real thing runs in
tests/integration/test_backup.py)."""

from __future__ import annotations

import dataclasses

from jatra.backup.repository import BackupSet, Repository, parse_info
from jatra.backup.schedule import due
from jatra.backup.verify import Snapshot, compare
from jatra.settings import Settings

HOUR = 3600.0
SETTINGS = dataclasses.replace(
    Settings(), backup_first_delay_s=120, backup_full_interval_s=24 * HOUR, backup_incr_interval_s=HOUR
)


def a_backup(type_: str, stopped: float, label: str = "") -> BackupSet:
    return BackupSet(label or f"{stopped}{type_}", type_, stopped - 10, stopped, 1, 1, "W1", "W2", None)


def test_the_first_full_backup_waits_a_little_after_the_worker_starts() -> None:
    empty = Repository(status="ok")
    assert due(empty, SETTINGS, now=1000 + 60, started=1000) is None
    assert due(empty, SETTINGS, now=1000 + 120, started=1000) == "full"


def test_a_full_backup_a_day_and_an_incremental_one_an_hour() -> None:
    now = 100 * 24 * HOUR
    fresh = Repository(status="ok", backups=[a_backup("full", now - 10 * 60)])
    assert due(fresh, SETTINGS, now, started=0) is None
    stale_incr = Repository(status="ok", backups=[a_backup("full", now - 2 * HOUR)])
    assert due(stale_incr, SETTINGS, now, started=0) == "incr"
    with_incr = Repository(
        status="ok", backups=[a_backup("full", now - 2 * HOUR), a_backup("incr", now - 60)]
    )
    assert due(with_incr, SETTINGS, now, started=0) is None
    old_full = Repository(
        status="ok", backups=[a_backup("full", now - 25 * HOUR), a_backup("incr", now - 60)]
    )
    assert due(old_full, SETTINGS, now, started=0) == "full"


def snap(counts: dict[str, int], **invariants: int) -> Snapshot:
    base = {
        "seats_sold_twice": 0, "payments_captured_twice": 0, "accepted_not_final": 0, "holds_leaked": 0,
        "captured_without_confirmed": 0,
    }  # fmt: skip
    return Snapshot(counts, {**base, **invariants}, "0004")


def test_counts_must_lie_between_the_live_counts_around_the_target() -> None:
    before = snap({"bookings": 10, "holds": 5})
    after = {"bookings": 12, "holds": 5}
    assert compare(before, after, snap({"bookings": 11, "holds": 5}))["failures"] == []
    lost = compare(before, after, snap({"bookings": 9, "holds": 5}))
    assert lost["failures"] == ["rows in bookings"]
    assert lost["counts"]["bookings"] == {"live_before": 10, "live_after": 12, "restored": 9, "ok": False}


def test_a_double_sale_in_the_copy_fails_the_drill_even_if_the_live_database_has_one() -> None:
    live = snap({"seat_sales": 3}, seats_sold_twice=1)
    copy = snap({"seat_sales": 3}, seats_sold_twice=1)
    assert compare(live, {"seat_sales": 3}, copy)["failures"] == ["invariant seats_sold_twice"]


def test_work_in_flight_at_the_target_may_be_in_the_copy_but_no_more() -> None:
    live = snap({"bookings": 3}, accepted_not_final=2)
    same = compare(live, {"bookings": 3}, snap({"bookings": 3}, accepted_not_final=2))
    assert same["failures"] == []
    more = compare(live, {"bookings": 3}, snap({"bookings": 3}, accepted_not_final=3))
    assert more["failures"] == ["invariant accepted_not_final"]


def test_a_different_schema_version_fails() -> None:
    live = snap({"bookings": 1})
    copy = dataclasses.replace(snap({"bookings": 1}), schema="0003")
    assert compare(live, {"bookings": 1}, copy)["failures"] == ["schema version"]


def test_only_backups_of_the_current_database_count() -> None:
    """After a re-initialised database, the repository still lists the earlier one's backups: they cannot
    be restored with the new database's WAL, so the drill and the worker must not pick them."""

    def backup(label: str, db: int, stop: int) -> dict[str, object]:
        return {
            "label": label, "type": "full", "database": {"id": db},
            "timestamp": {"start": stop - 5, "stop": stop}, "info": {"size": 10, "repository": {"delta": 5}},
            "archive": {"start": "A", "stop": "B"},
        }  # fmt: skip

    info = {
        "status": {"message": "ok"},
        "db": [{"id": 1}, {"id": 2}],
        "archive": [
            {"database": {"id": 1}, "id": "15-1", "min": "01", "max": "09"},
            {"database": {"id": 2}, "id": "15-2", "min": "01", "max": "02"},
        ],
        "backup": [backup("old", 1, 100), backup("new", 2, 50)],
    }
    repo = parse_info(info)
    assert [b.label for b in repo.backups] == ["new"] and repo.earlier_backups == 1
    assert (repo.archive_id, repo.wal_min, repo.wal_max) == ("15-2", "01", "02")
