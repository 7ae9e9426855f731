"""`make profile` sorts each py-spy sample by its innermost frame that belongs to a known category."""

from __future__ import annotations

from pathlib import Path

from cpu_profile import (
    IDLE,
    category,
    summarise,
)  # bench/cpu_profile.py (the test's directory is on sys.path)

ROOT = "Runner.run (asyncio/runners.py:118);Litestar.__call__ (litestar/app.py:50)"


def test_the_innermost_known_frame_decides() -> None:
    db_under_handler = (
        f"{ROOT};BookingsService.get (jatra/bookings/service.py:80);execute (sqlalchemy/orm/session.py:9)"
    )
    assert category(db_under_handler.split(";")) == "database (SQLAlchemy, asyncpg, psycopg)"
    assert (
        category(f"{ROOT};SeatsService.seat_map (jatra/seats/service.py:40)".split(";")) == "Jatra's own code"
    )
    assert category(ROOT.split(";")) == "Litestar"
    assert category(["<module> (x.py:1)"]) == "other"


def test_ticket_rendering_wins_wherever_it_is_in_the_stack() -> None:
    frames = f"{ROOT};render (jatra/tickets/pdf.py:60);_qr (jatra/tickets/pdf.py:40)"
    assert category(frames.split(";")) == "ticket PDF (zxing-cpp)"


def test_summarise_weighs_stacks_by_their_sample_counts(tmp_path: Path) -> None:
    raw = tmp_path / "api-1.txt"
    raw.write_text(f"{ROOT} 3\n{ROOT};info (structlog/_base.py:1) 1\n")
    total, counts = summarise(raw)
    assert total == 4 and counts["Litestar"] == 3 and counts["logging (structlog, ECS)"] == 1


def test_a_waiting_thread_is_not_work() -> None:
    loop = (
        f"{ROOT};BaseEventLoop._run_once (asyncio/base_events.py:1);EpollSelector.select (selectors.py:468)"
    )
    pool = "Thread.run (threading.py:975);_worker (concurrent/futures/thread.py:81)"
    assert category(loop.split(";")) == category(pool.split(";")) == category([" "]) == IDLE
    full = [
        "EpollSelector.select (/usr/lib/python3.11/selectors.py:468)",
        "_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81)",
    ]
    assert category([*ROOT.split(";"), full[0]]) == category(full[1:]) == IDLE


def test_full_file_names_name_opentelemetry_which_short_ones_lose() -> None:
    """py-spy shortens a file name to its package part, and OpenTelemetry's are namespace packages: its
    SDK's span showed as ``trace/__init__.py`` and was counted as whatever called it (the Redis client)."""
    site = "/work/main/.venv/lib/python3.11/site-packages"
    frames = [
        "Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)",
        f"Redis.execute_command ({site}/redis/asyncio/client.py:700)",
        f"Span.__init__ ({site}/opentelemetry/sdk/trace/__init__.py:794)",
    ]
    assert category(frames) == "tracing (OTel)"
    assert category(frames[:2]) == "Redis client"
    own = "SeatsService.hold (/work/main/platform/jatra/seats/service.py:117)"
    assert category([*frames[:1], own]) == "Jatra's own code"
    # a checkout in a directory named jatra: a library with no category stays "other"
    elsewhere = "f (/home/me/jatra/.venv/lib/python3.11/site-packages/somelib/x.py:1)"
    assert category([elsewhere]) == "other"
