"""A LISTEN session on its own connection straight to Postgres: a doorbell rung by NOTIFY.

LISTEN needs a session of its own (PgBouncer's transaction pooling hands a server connection to whoever
runs the next transaction, so a LISTEN made through it would hear nothing), so this is one asyncpg
connection to Postgres itself, used for nothing else. It promises nothing either: while the session is
down a waiter is told so (:attr:`Listener.listening`) and polls, and when it comes back the waiter is woken
once, since a ring may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger()

#: pause before connecting again after the session was lost or could not be made
RECONNECT_S = 1.0
#: a cheap query this often: a dead idle socket is noticed only by writing to it
KEEPALIVE_S = 10.0


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN from a SQLAlchemy URL (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self, url: str, channel: str, name: str, on_state: Callable[[bool], None] = lambda _: None
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.channel = channel
        self.name = name
        self.on_state = on_state
        self.listening = False
        self._rung = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"listen:{self.channel}")

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a ring: True when rung (since the last wait returned), else False."""
        try:
            await asyncio.wait_for(self._rung.wait(), seconds)
        except TimeoutError:
            return False
        self._rung.clear()
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
                log.warning("pg_listen.lost", channel=self.channel, error="ConnectionClosed")
            except Exception as exc:  # whatever it was (asyncpg can also fail with InternalClientError)
                log.warning("pg_listen.lost", channel=self.channel, error=type(exc).__name__)
            finally:
                self._set_listening(False)
            await asyncio.sleep(RECONNECT_S)

    async def _session(self) -> None:
        """One connection, listening until it is lost."""
        connection = await asyncpg.connect(
            self.dsn, timeout=5, server_settings={"application_name": f"jatra-{self.name}-listen"}
        )
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _c: lost.set())
            await connection.add_listener(self.channel, self._notified)
            self._set_listening(True)
            self._rung.set()  # rings may have been missed while not listening: look once
            log.info("pg_listen.listening", channel=self.channel)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), KEEPALIVE_S)
                if not lost.is_set():
                    await connection.execute("SELECT 1")
        finally:
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    def _notified(self, _connection: object, _pid: int, _channel: str, _payload: object) -> None:
        self._rung.set()

    def _set_listening(self, listening: bool) -> None:
        if listening != self.listening:
            self.listening = listening
            self.on_state(listening)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
