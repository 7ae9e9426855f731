"""`python -m jatra.stack.respawn -- ARGV`: run ARGV and start it again when it dies, as systemd's
``Restart=on-failure`` would.

For one server of the local stack: Debian's PgBouncer 1.18 exits on a race between a cancel request and
its client (pgbouncer/pgbouncer#801, fixed in 1.20), which asyncpg's cancellations can hit under load. A
managed pooler comes back by itself; this makes the local one do the same. SIGTERM or SIGINT stop the
child and this process, and nothing is restarted after that.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

#: pause before a restart, doubled while the child keeps dying within RESET_S of its start
FIRST_PAUSE_S = 0.2
MAX_PAUSE_S = 5.0
RESET_S = 10.0


def main(argv: list[str]) -> int:
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pause = FIRST_PAUSE_S
    while True:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        code = child.wait()
        if stopping:
            return 0
        lived = time.monotonic() - started
        pause = FIRST_PAUSE_S if lived > RESET_S else min(pause * 2, MAX_PAUSE_S)
        sys.stderr.write(
            f"respawn: {argv[0]} exited with {code} after {lived:.1f}s; starting it again in {pause:.1f}s\n"
        )
        sys.stderr.flush()
        time.sleep(pause)
        if stopping:
            return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m jatra.stack.respawn -- ARGV")
    sys.exit(main(args))
