"""The local stack's Unix sockets, and the URLs that use them when they are there.

On one machine a Unix socket costs less than TCP over loopback, where each send also runs the receiver's
TCP stack. Measured here, one statement through PgBouncer (`SELECT $1`, client + PgBouncer + Postgres CPU):
208 µs over TCP both ways, 174 with PgBouncer reaching Postgres by socket, 149 with the client's hop too;
one Redis GET: 86 µs (client + server) over TCP, 72 by socket (bench/results/unix-sockets/).

A URL names the socket only once the socket exists, so a client never depends on it: started before the
server, or against a stack started by older code, it gets the TCP URL that always works. A path too long
for a socket address (108 bytes with its NUL) is not used at all.
"""

from __future__ import annotations

from pathlib import Path

from jatra.stack.ports import Ports

#: the longest path a Unix socket address holds (sun_path is 108 bytes, NUL included)
SOCKET_PATH_MAX = 107
REDIS_SOCKET = "redis.sock"


def usable(path: Path) -> bool:
    """Whether ``path`` is short enough to be a socket's address."""
    return len(str(path).encode()) <= SOCKET_PATH_MAX


def postgres_dir(state_dir: Path) -> Path:
    """Where Postgres puts its socket (`-k`): its data directory."""
    return state_dir.resolve() / "data" / "postgres"


def pgbouncer_dir(state_dir: Path) -> Path:
    """Where PgBouncer puts its socket (`unix_socket_dir`): its config directory."""
    return state_dir.resolve() / "conf" / "pgbouncer"


def redis_socket(state_dir: Path) -> Path:
    return state_dir.resolve() / "data" / "redis" / REDIS_SOCKET


def database_url(state_dir: Path, ports: Ports, via_pgbouncer: bool) -> str:
    """The local database by socket when the socket is there, else by TCP (:meth:`Ports.database_url`)."""
    port = ports.pgbouncer if via_pgbouncer else ports.postgres
    directory = pgbouncer_dir(state_dir) if via_pgbouncer else postgres_dir(state_dir)
    socket = directory / f".s.PGSQL.{port}"
    if usable(socket) and socket.is_socket():
        return f"postgresql+asyncpg://jatra@/jatra?host={directory}&port={port}"
    return ports.database_url(via_pgbouncer)


def redis_url(state_dir: Path, ports: Ports) -> str:
    """The local Redis by socket when the socket is there, else by TCP."""
    socket = redis_socket(state_dir)
    if usable(socket) and socket.is_socket():
        return f"unix://{socket}?db=0"
    return f"redis://127.0.0.1:{ports.redis}/0"
