"""What goes wrong with backups and drills, with the context an operator needs in the message."""

from __future__ import annotations


class BackupError(RuntimeError):
    """A pgBackRest command failed; the message carries the command and the end of its output."""

    def __init__(self, command: str, returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-12:])
        super().__init__(f"pgbackrest {command} failed (exit {returncode}): {tail}")
        self.command = command
        self.returncode = returncode


class BackupBusy(BackupError):
    """Another pgBackRest process holds the lock the command needs: most often another backup still running
    (the backup worker's and an operator's `jatra backup`, or two operators')."""


class DrillFailed(RuntimeError):
    """The restore drill could not produce a queryable copy (no backup, a restore error, a timeout)."""
