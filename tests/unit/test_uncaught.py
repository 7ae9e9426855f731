"""An exception nothing caught is one ECS event, redacted, instead of a raw traceback on stderr: in the
main thread (the process still exits with 1) and in another thread."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest

from jatra.telemetry import uncaught

CRASH = textwrap.dedent(
    """
    import threading
    from jatra.settings import load_settings
    from jatra.telemetry.logs import configure_logging
    configure_logging(load_settings({}), "unit")
    thread = threading.Thread(target=lambda: 1 / 0, name="worker-x")
    thread.start()
    thread.join()
    raise RuntimeError("could not reach rahim@example.com at +8801712345678")
    """
)


def test_an_uncaught_exception_is_a_redacted_ecs_event() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr  # not printed raw
    events = [json.loads(line) for line in done.stdout.splitlines()]
    crashes = [e for e in events if e["message"] == "process.uncaught_exception"]
    assert [e["process"]["thread"]["name"] for e in crashes] == ["worker-x", "MainThread"]
    assert [e["error"]["type"] for e in crashes] == ["ZeroDivisionError", "RuntimeError"]
    assert all(e["log.level"] == "critical" for e in crashes)
    assert "RuntimeError: could not reach" in crashes[1]["error"]["stack_trace"]
    assert "rahim" not in done.stdout and "1712345678" not in done.stdout


def test_a_hook_installed_before_is_still_called_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest's own thread hook turns a thread's exception into a warning: it must keep working."""
    seen: list[str] = []
    lines: list[str] = []
    for module, name in ((uncaught, "_previous"), (uncaught, "_previous_thread"), (sys, "excepthook")):
        monkeypatch.setattr(module, name, getattr(module, name))  # all put back after the test
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(type(args.exc_value).__name__))
    monkeypatch.setattr(uncaught.log, "critical", lambda event, **_: lines.append(event))
    uncaught.install()
    uncaught.install()  # twice: still one event and one call
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join()
    assert seen == ["ZeroDivisionError"] and lines == ["process.uncaught_exception"]
