"""A process stopped with SIGTERM (supervisord, Docker, Kubernetes) ends through Python's own exit: its
``finally`` blocks run and the log lines waiting in their batch are written. uvicorn re-raises the signal
after its graceful shutdown; with the default handler the kernel killed the process there and then.

A real worker process (the log shipper, which needs no server to start), stopped as supervisord stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from jatra.stack.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_stopped_with_sigterm_logs_its_last_lines(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "JATRA_STATE_DIR": str(tmp_path),
        "JATRA_LOG_DIR": str(tmp_path / "log"),
        "JATRA_LOGSHIP_INTERVAL_S": "60",
    }
    out = tmp_path / "worker.out"
    with out.open("wb") as stdout:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jatra", "worker", "logship", "--port", str(port)],
            cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert worker.poll() is None and time.monotonic() < deadline, out.read_text()
                time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 128 + signal.SIGTERM  # an exit, not a death by the signal (-15)
    finally:
        if worker.poll() is None:
            worker.kill()
    logged = out.read_text()
    assert '"worker.started"' in logged
    assert '"worker.stopped"' in logged, logged[-2000:]  # logged in a finally, after uvicorn's shutdown
