"""The local stack's Unix sockets, and the URLs that use them when they are there.

On one machine a Unix socket costs less than TCP over loopback, where each send also runs the receiver's
TCP stack. Measured here, one statement through PgBouncer (`SELECT $1`, client + PgBouncer + Postgres CPU):
208 µs over TCP both ways, 174 with PgBouncer reaching Postgres by socket, 149 with the client's hop too;
one Redis GET (client + server): 86.4 µs over TCP, 72.8 by socket (bench/results/unix-sockets/).

A URL names the socket only once the socket exists, so a client never depends on it: started before the
server, against a stack started by older code, or unable to look (another user's directory), it gets the
TCP URL that always works. A path too long for a socket address (108 bytes with its NUL), or with a
character a URL or PgBouncer's connection string would have to quote, is not used at all.
"""

from __future__ import annotations

import re
from pathlib import Path

from jatra.stack.ports import Ports

#: the longest path a Unix socket address holds (sun_path is 108 bytes, NUL included)
SOCKET_PATH_MAX = 107
#: what a path may be made of to go into a URL and PgBouncer's config as it is
PLAIN_PATH = re.compile(r"[A-Za-z0-9/._-]+")


def usable(path: Path) -> bool:
    """Whether ``path`` can be a socket's address and be written, unquoted, where it is used."""
    text = str(path)
    return len(text.encode()) <= SOCKET_PATH_MAX and PLAIN_PATH.fullmatch(text) is not None


def _listening(path: Path) -> bool:
    try:
        return usable(path) and path.is_socket()
    except OSError:  # a directory we may not look into (Postgres's, when another user started it)
        return False


def postgres_dir(state_dir: Path) -> Path:
    """Where Postgres puts its socket (`-k`): its data directory."""
    return state_dir.resolve() / "data" / "postgres"


def pgbouncer_dir(state_dir: Path) -> Path:
    """Where PgBouncer puts its socket (`unix_socket_dir`): its config directory."""
    return state_dir.resolve() / "conf" / "pgbouncer"


def pg_socket(directory: Path, port: int) -> Path:
    """The socket libpq, Postgres and PgBouncer name by a directory and a port."""
    return directory / f".s.PGSQL.{port}"


def redis_socket(state_dir: Path, port: int) -> Path:
    """Named by its port, as Postgres's and PgBouncer's are: two stacks may share a state directory."""
    return state_dir.resolve() / "data" / "redis" / f"redis-{port}.sock"


#: PgBouncer's second name for the database, the payment provider simulator's (someone else's service in
#: production): a name has server connections of its own. Sharing the API's, a server connection passed
#: between the two took a ``SET application_name`` each time (PgBouncer 1.18 tracks it): 1.4 a booking.
PROVIDER_DATABASE = "provider"


def database_url(state_dir: Path, ports: Ports, via_pgbouncer: bool, database: str = "jatra") -> str:
    """The local database by socket when the socket is there, else by TCP (:meth:`Ports.database_url`)."""
    port = ports.pgbouncer if via_pgbouncer else ports.postgres
    directory = pgbouncer_dir(state_dir) if via_pgbouncer else postgres_dir(state_dir)
    if _listening(pg_socket(directory, port)):
        return f"postgresql+asyncpg://jatra@/{database}?host={directory}&port={port}"
    return ports.database_url(via_pgbouncer, database)


def redis_url(state_dir: Path, ports: Ports) -> str:
    """The local Redis by socket when the socket is there, else by TCP."""
    socket = redis_socket(state_dir, ports.redis)
    if _listening(socket):
        return f"unix://{socket}?db=0"
    return f"redis://127.0.0.1:{ports.redis}/0"
