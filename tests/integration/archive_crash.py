"""A real process crash at one durable step of the archiver's first seal (run by test_archive_recovery).

    python -m tests.integration.archive_crash STEP STATE_DIR

runs the archiver over JATRA_LOG_DIR into JATRA_ARCHIVE_BUCKET and exits at once (os._exit: no cleanup,
no flush, as a SIGKILL would) when the first seal reaches STEP: planned, segment-stored, manifest-stored
or cursor-committed. Exits 17 if it crashed there, 0 if it never got there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jatra.archive import signing
from jatra.archive.archiver import Archiver
from jatra.archive.store import ArchiveStore
from jatra.settings import load_settings

CRASHED = 17


def main() -> None:
    step, state_dir = sys.argv[1], Path(sys.argv[2])
    settings = load_settings()

    def checkpoint(at: str, source: str) -> None:
        if at == step:
            os._exit(CRASHED)

    archiver = Archiver(
        settings,
        ArchiveStore.from_settings(settings),
        signing.signing_key(settings),
        state_dir=state_dir,
        checkpoint=checkpoint,
    )
    archiver.run_once()
    archiver.flush()


if __name__ == "__main__":
    main()
