"""What the drill checks in a restored copy: row counts against the live database, and the invariants.

Counts: the drill counts the live tables just before and just after it marks its target (a named restore
point), so a copy replayed exactly to the target holds, in each table, a count between the two; with no
writes in between (a quiet database, the tests) the three are equal.

Invariants: the same SQL as the rush checks (:func:`jatra.rush.invariants.sql_checks`, over all of
history). A seat sold twice or a payment captured twice must be zero in the copy, whatever the live
database says. The others describe work in flight (a booking not final yet, a hold the reaper has not
ended yet), which a point-in-time copy legitimately contains: the copy may not show more than the live
database showed at the target.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from jatra.rush.invariants import sql_checks

#: the tables whose rows the drill counts: the timetable, the inventory, the passengers and their money
MAIN_TABLES = (
    "stations", "trains", "coaches", "seats", "journeys", "users", "holds", "bookings", "seat_sales",
    "provider_charges", "outbox",
)  # fmt: skip
#: invariants that must be zero in any copy
SAFETY = frozenset({"seats_sold_twice", "payments_captured_twice"})
#: sql_checks counts what happened since a moment: all of history here
BEGINNING = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one database holds: row counts, invariants and schema version."""

    counts: dict[str, int]
    invariants: dict[str, int]
    schema: str | None


async def count_rows(conn: AsyncConnection, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table, in one statement (one snapshot)."""
    for table in tables:
        if not _NAME.match(table):
            raise ValueError(f"not a table name: {table!r}")
    # table names are checked above
    columns = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)  # noqa: S608
    query = text(f"SELECT {columns}")
    row = (await conn.execute(query)).mappings().one()
    return {t: int(row[t]) for t in tables}


async def checks(conn: AsyncConnection, at: dt.datetime) -> tuple[dict[str, int], str | None]:
    """The invariants over all of history, judged at ``at``, and the schema version (Alembic's)."""
    async with AsyncSession(bind=conn) as session:
        invariants = await sql_checks(session, BEGINNING, at)
    schema = (await conn.execute(text("SELECT max(version_num) FROM alembic_version"))).scalar_one()
    return invariants, schema


async def snapshot(conn: AsyncConnection, tables: Sequence[str], at: dt.datetime) -> Snapshot:
    invariants, schema = await checks(conn, at)
    return Snapshot(await count_rows(conn, tables), invariants, schema)


def compare(before: Snapshot, after: dict[str, int], restored: Snapshot) -> dict[str, Any]:
    """Per check: the values and whether it passed; ``failures`` names every check that did not."""
    counts = {}
    for table, copy in restored.counts.items():
        low, high = sorted((before.counts[table], after[table]))
        counts[table] = {
            "live_before": before.counts[table],
            "live_after": after[table],
            "restored": copy,
            "ok": low <= copy <= high,
        }
    invariants = {}
    for name, copy in restored.invariants.items():
        live = before.invariants[name]
        ok = copy == 0 if name in SAFETY else copy <= live
        invariants[name] = {"live": live, "restored": copy, "ok": ok}
    schema = {"live": before.schema, "restored": restored.schema, "ok": before.schema == restored.schema}
    failures = [f"rows in {t}" for t, c in counts.items() if not c["ok"]]
    failures += [f"invariant {n}" for n, c in invariants.items() if not c["ok"]]
    failures += [] if schema["ok"] else ["schema version"]
    return {"counts": counts, "invariants": invariants, "schema": schema, "failures": failures}
