"""Follow the processes' log files with a durable cursor: the log shipper and the archiver both read this way.

Each Jatra process writes ECS JSON lines to ``<log dir>/<process>.log`` (supervisord captures its stdout and
rotates the file to ``<process>.log.1``, ``.2`` ... by renaming it). A reader remembers, per process, which
file it is in (device and inode: the identity survives a rename) and how far it got (a byte offset), in a
small JSON file replaced atomically. It moves that cursor only when told the lines before it are safe
(shipped, archived), so a crash of the reader re-reads them and a crash of the writer loses nothing it
flushed. A line counts only once its newline is written. A rotated file is finished before the new one is
started; a file cut short in place is finished in its copy (copytruncate) when there is one, and then read
again from its start.

An inode is not an identity for ever: once the oldest generation is deleted, the filesystem may give its
inode to a new file. So a position also keeps a fingerprint of its file's first bytes (a log file only
grows, so they never change) and the time of its first event. A file whose identity matches but whose
first bytes do not is not the reader's file: the reader's file is then a copy with those first bytes
(copytruncate), or the file cut short in place (and perhaps rotated since), or gone. Gone, when rotated
files written after the reader's file began stand between: its inode was given to a new file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import structlog

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

#: rotated generations looked at for the rest of a file the reader had not finished
ROTATED = 9
#: bytes at a file's start that fingerprint it (an ECS line's timestamp alone tells two files apart)
HEAD = 256
#: how far into a file its first line (and its event time) is looked for
FIRST_LINE = 8192
#: rotated files last written this long after the reader's file began are newer than it (an event can be
#: stamped just before a rotation and written just after it)
NEWER_S = 1.0
#: a rotated file's last half line is given up once the file has not been written for this long
STALE_S = 60.0
LOST = counter(c.LOG_FILES_LOST)
log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader stands in one process's log: a file (by identity) and a byte offset in it."""

    dev: int
    ino: int
    offset: int
    # the file's fingerprint (None: not known, as in a cursor written before); not part of a position's
    # equality, which is where in which file
    head: Head | None = field(default=None, compare=False)

    def at(self, dev: int, ino: int, offset: int) -> Position:
        """Another place in a file with the same first bytes (this one, or a copy of it)."""
        return Position(dev, ino, offset, self.head)


@dataclass(frozen=True, slots=True)
class Line:
    source: str  # the process: the file name without ``.log``
    dev: int
    ino: int
    offset: int  # where the line starts
    raw: bytes  # without its newline

    @property
    def end(self) -> Position:
        return Position(self.dev, self.ino, self.offset + len(self.raw) + 1)

    @property
    def id(self) -> str:
        """The same for the same line read twice, and different for any two lines ever written: its place
        (file identity and offset) and its bytes."""
        digest = hashlib.sha256(f"{self.source}\0{self.dev}\0{self.ino}\0{self.offset}\0".encode())
        digest.update(self.raw)
        return digest.hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one read found for one source: its lines, and where the cursor goes once they are safe (also
    set when there are no lines, as when a finished rotated file is left for the new one)."""

    source: str
    lines: list[Line]
    after: Position
    start: Position | None = None  # where the read began (the lines follow it, blank lines aside)


class Cursor:
    """Positions per source, kept in a JSON file that is replaced atomically (write, fsync, rename). The
    fingerprints are kept beside the positions (``heads``), not in them: a version before them reads the
    file as it did (a rollback keeps its readers' places)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.positions: dict[str, Position] = {}
        with contextlib.suppress(FileNotFoundError):
            raw = json.loads(path.read_text())
            heads = raw.get("heads", {})
            self.positions = {
                k: Position(v["dev"], v["ino"], v["offset"], _head_of(heads.get(k), v))
                for k, v in raw["positions"].items()
            }

    def save(self, moved: Iterable[tuple[str, Position]]) -> None:
        for source, position in moved:
            self.positions[source] = position
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.positions.items())
        body = {
            "positions": {k: {"dev": v.dev, "ino": v.ino, "offset": v.offset} for k, v in ordered},
            "heads": {k: {"dev": v.dev, "ino": v.ino, **v.head._asdict()} for k, v in ordered if v.head},
        }
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("w") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _head_of(saved: dict[str, Any] | None, position: dict[str, int]) -> Head | None:
    """The fingerprint saved for a position, if it was saved for the same file."""
    if not saved or (saved["dev"], saved["ino"]) != (position["dev"], position["ino"]):
        return None
    return Head(int(saved["length"]), str(saved["digest"]), float(saved["first"]))


class Head(NamedTuple):
    """A file's fingerprint: how many of its first bytes, their hash, and its first event's time (0: not
    known)."""

    length: int
    digest: str
    first: float

    @property
    def whole(self) -> bool:
        """Taken once the file had HEAD bytes and a first event: it cannot change any more."""
        return self.length >= HEAD and bool(self.first)


def fingerprint(f: BinaryIO) -> Head | None:
    """The fingerprint of the open file ``f``: its first HEAD bytes (fewer if it is shorter), and the time
    of its first event if its first line is whole and ECS. None for an empty file: nothing to know it by."""
    start = os.pread(f.fileno(), FIRST_LINE, 0)
    if not start:
        return None
    line, newline, _ = start.partition(b"\n")
    first = (timestamp_of(line) or 0.0) if newline else 0.0
    return Head(min(len(start), HEAD), _digest(start[:HEAD]), first)


def _digest(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()[:32]


class Follower:
    """Reads complete lines past a cursor, for the sources ``sources`` names (process names)."""

    def __init__(
        self, log_dir: Path, cursor_file: Path, sources: Iterable[str] | None = None, reader: str = "reader"
    ) -> None:
        """``sources=None``: every ``*.log`` whose first line is ECS JSON, which is every Jatra process's
        and none of the servers' (Postgres, RabbitMQ ... write text). ``reader``: who reads (the loss
        metric's label)."""
        self.log_dir = log_dir
        self.cursor = Cursor(cursor_file)
        self.wanted = None if sources is None else frozenset(sources)
        self.reader = reader
        self._ecs: dict[str, bool] = {}
        self._lost: set[tuple[str, int, int]] = set()
        self._counted: set[str] = set()

    def sources(self) -> list[str]:
        found = {p.name.removesuffix(".log") for p in self.log_dir.glob("*.log")}
        if self.wanted is not None:
            names = sorted(found & self.wanted)
        else:
            names = sorted(name for name in found if self._is_ecs(name))
        for name in names:
            if name not in self._counted:  # the loss series exists from the start, at 0
                self._counted.add(name)
                LOST.labels(self.reader, name)
        return names

    def _is_ecs(self, name: str) -> bool:
        if name not in self._ecs:
            with (self.log_dir / f"{name}.log").open("rb") as f:
                first = f.readline()
            if not first.endswith(b"\n"):
                return False  # nothing whole written yet: decide later
            try:
                self._ecs[name] = "ecs.version" in json.loads(first)
            except ValueError:
                self._ecs[name] = False
        return self._ecs[name]

    def read(self, max_bytes_per_source: int = 1 << 20) -> list[Chunk]:
        """New complete lines of every source, up to about ``max_bytes_per_source`` each. The cursor does
        not move: call :meth:`commit` with the chunks once their lines are safe."""
        return self.read_from({}, max_bytes_per_source)

    def read_from(
        self, positions: Mapping[str, Position], max_bytes_per_source: int = 1 << 20
    ) -> list[Chunk]:
        """As :meth:`read`, but from ``positions`` instead of the cursor for the sources it names: a reader
        that holds lines it has read but not yet made safe (the archiver's open segments) reads on past
        them without moving the cursor."""
        chunks = []
        for source in self.sources():
            chunk = self._read_one(source, max_bytes_per_source, positions.get(source))
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def read_range(self, source: str, dev: int, ino: int, start: int, end: int) -> list[Line] | None:
        """The lines of bytes ``start``..``end`` of the file with identity (``dev``, ``ino``) among
        ``source``'s generations, exactly as :meth:`read` returned them (to rebuild what was read before a
        crash). None when that file is gone, is shorter than ``end`` or ``end`` is not a line's end."""
        for path in _generations(self.log_dir / f"{source}.log"):
            with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != (dev, ino):
                    continue
                f.seek(start)
                data = f.read(end - start)
                if len(data) != end - start or (data and not data.endswith(b"\n")):
                    return None
                return _split(source, dev, ino, start, data)[0]
        return None

    def commit(self, chunks: Iterable[Chunk]) -> None:
        self.cursor.save((c.source, self._fingerprinted(c.source, c.after)) for c in chunks)

    def _fingerprinted(self, source: str, at: Position) -> Position:
        """``at`` with its file's fingerprint: its own, else the cursor's for the same file (a position
        rebuilt from a byte range carries none; with none, the next commit in that file gives one)."""
        held = self.cursor.positions.get(source)
        if at.head or held is None or (held.dev, held.ino) != (at.dev, at.ino) or not held.head:
            return at
        if at.offset < held.offset:  # back in the same file: cut short, its first bytes may be new
            return at
        return held.at(at.dev, at.ino, at.offset)

    def lag_bytes(self) -> int:
        """Bytes written and not yet read past the cursor, rotated files included."""
        total = 0
        for source in self.sources():
            generations, index, at = self._where(source)
            if at is not None:
                total += max(generations[index].stat().st_size - at.offset, 0)
                total += sum(g.stat().st_size for g in generations[index + 1 :])
        return total

    def oldest_unread(self) -> float | None:
        """Unix time of the oldest unread line over all sources (its ``@timestamp``), or None."""
        oldest = None
        for chunk in self.read(max_bytes_per_source=64 * 1024):
            for line in chunk.lines[:1]:
                stamp = timestamp_of(line.raw)
                if stamp is not None and (oldest is None or stamp < oldest):
                    oldest = stamp
        return oldest

    # -- internals ---------------------------------------------------------------------------------------
    def _where(self, source: str, start: Position | None = None) -> tuple[list[Path], int, Position | None]:
        """The generations of ``source``'s log (oldest rotated first, the live file last), the index of the
        one to read next and the position in it (None: there is no log yet); from ``start`` if given, else
        from the cursor."""
        generations = _generations(self.log_dir / f"{source}.log")
        if not generations:
            return [], 0, None
        identities = [(st.st_dev, st.st_ino, st.st_size) for st in (g.stat() for g in generations)]
        at = start or self.cursor.positions.get(source)
        found = next(
            (i for i, (dev, ino, _) in enumerate(identities) if at and (dev, ino) == (at.dev, at.ino)), None
        )
        if at is not None and found is not None and not _starts_as(generations[found], identities[found], at):
            # other first bytes: the reader's file is a copy (copytruncate), the file cut short in place
            # (and perhaps rotated since), or gone (its identity given to a new file, which the
            # generations before it, all written after the reader's file began, give away)
            copy = _copy_of(generations, identities, at)
            if copy is not None:
                found, at = copy
            elif not _newer_than(generations[:found], at):
                return generations, found, Position(at.dev, at.ino, 0)
            else:
                found = None
        if at is None or found is None:
            # first run: everything there is, oldest first; or the cursor's file has been rotated out of
            # reach (its unread rest is lost): the oldest generation left
            if at is not None:
                self._rotated_away(source, at)
            dev, ino, _ = identities[0]
            return generations, 0, Position(dev, ino, 0)
        size = identities[found][2]
        if found == len(generations) - 1:
            # the live file; cut short in place (copytruncate): start it again
            return generations, found, at if size >= at.offset else Position(at.dev, at.ino, 0)
        if size > at.offset:
            return generations, found, at
        dev, ino, _ = identities[found + 1]  # finished a rotated file: on to the next newer one
        return generations, found + 1, Position(dev, ino, 0)

    def _rotated_away(self, source: str, at: Position) -> None:
        """Count and log, once per file, a file the reader stood in that rotated out of reach (more than
        ``ROTATED`` generations while it was not read). The event names the file and where reading
        stopped; what followed is gone, so its size is not known. Also a file whose identity was given to
        a new file (its fingerprint differs) with no copy left. Once per file, not per position: the
        archiver reads on from its open segments while a scrape reads from the cursor behind them."""
        if (source, at.dev, at.ino) not in self._lost:
            self._lost.add((source, at.dev, at.ino))
            LOST.labels(self.reader, source).inc()
            log.warning("logfiles.rotated_unread", reader=self.reader, source=source, dev=at.dev,
                        ino=at.ino, offset=at.offset)  # fmt: skip

    def _read_one(self, source: str, budget: int, start: Position | None = None) -> Chunk | None:
        generations, index, at = self._where(source, start)
        if at is None:
            return None
        with generations[index].open("rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != (at.dev, at.ino):
                return None  # rotated between stat and open: the next read sees it
            f.seek(at.offset)
            data = f.read(budget)
            if len(data) == budget and b"\n" not in data:
                data += f.readline()  # one line longer than the budget: still read it whole
            # taken afresh until the file has HEAD bytes and a first event's time (``at``'s, when it has
            # them, is this file's: checked)
            head = at.head if at.head and at.head.whole else fingerprint(f)
        if (
            b"\n" not in data
            and data
            and index < len(generations) - 1
            and time.time() - st.st_mtime > STALE_S
        ):
            # a rotated file that ends in half a line nobody will finish: left, or the source stalls here
            log.warning("logfiles.partial_line_dropped", reader=self.reader, source=source, dev=at.dev,
                        ino=at.ino, offset=at.offset, size=len(data))  # fmt: skip
            return Chunk(source, [], Position(at.dev, at.ino, at.offset + len(data), head), at)
        lines, offset = _split(source, at.dev, at.ino, at.offset, data[: data.rfind(b"\n") + 1])
        after = Position(at.dev, at.ino, offset, head)
        held = start or self.cursor.positions.get(source)
        if after == held and at == held:  # nothing new where the reader stands (not moved by _where)
            return None
        return Chunk(source, lines, after, at)


def _starts_as(path: Path, identity: tuple[int, int, int], at: Position, unsure: bool = True) -> bool:
    """Whether the file at ``path`` (with ``identity``) begins with the bytes ``at``'s fingerprint was taken
    of. ``unsure`` when ``at`` has none, or ``path`` no longer holds that file (gone, or rotated since it
    was looked at: the caller's next read looks again)."""
    if not at.head:
        return unsure
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != identity[:2]:
                return unsure
            head = os.pread(f.fileno(), at.head.length, 0)
    except FileNotFoundError:
        return unsure
    return len(head) == at.head.length and _digest(head) == at.head.digest


def _copy_of(
    generations: list[Path], identities: list[tuple[int, int, int]], at: Position
) -> tuple[int, Position] | None:
    """The generation holding a copy of ``at``'s file (copytruncate: the same first bytes; it may end
    before ``at``, which read on in the live file before it was cut), and ``at`` moved into it."""
    for i, (path, identity) in enumerate(zip(generations, identities, strict=True)):
        if identity[:2] != (at.dev, at.ino) and _starts_as(path, identity, at, unsure=False):
            return i, at.at(identity[0], identity[1], at.offset)
    return None


def _newer_than(rotated: list[Path], at: Position) -> bool:
    """Whether every rotated generation was last written after ``at``'s file began: then they came after
    it, and it rotated out of reach (a reused inode). False when not known: a file cut short in place
    leaves the older generations as they were."""
    if not at.head or not at.head.first or not rotated:
        return False
    try:
        return min(p.stat().st_mtime for p in rotated) > at.head.first + NEWER_S
    except FileNotFoundError:
        return False


def _split(source: str, dev: int, ino: int, offset: int, complete: bytes) -> tuple[list[Line], int]:
    """The non-blank lines of ``complete`` (whole lines read at ``offset``), and the offset after them."""
    lines = []
    for raw in complete.split(b"\n")[:-1]:
        if raw.strip():
            lines.append(Line(source, dev, ino, offset, raw))
        offset += len(raw) + 1
    return lines, offset


def _generations(current: Path) -> list[Path]:
    """``name.log.N`` ... ``name.log.1``, ``name.log``: the ones that exist, oldest first."""
    rotated = [current.with_name(f"{current.name}.{n}") for n in range(ROTATED, 0, -1)]
    return [p for p in [*rotated, current] if p.exists()]


def timestamp_of(raw: bytes) -> float | None:
    """The Unix time of an ECS line's ``@timestamp`` (None when the line is not ECS JSON)."""
    try:
        return dt.datetime.fromisoformat(json.loads(raw)["@timestamp"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None
