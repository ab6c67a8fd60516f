"""SQLite WAL checkpoints on a background thread, off the commit path.

By default SQLite checkpoints inside whichever commit pushes the write-ahead
log past 1,000 pages: that commit copies the pages into the database file and
fsyncs it, several milliseconds on a cloud disk. At 10 msg/s that was about
one accept or claim in thirty, which is the p99 of accept -> submit.

Here the storage's own connections checkpoint only past a safety limit
(:data:`SAFETY_PAGES`), and a :class:`WalCheckpointer` thread runs a
``PASSIVE`` checkpoint (it never waits for, nor blocks, readers or the writer)
shortly after commits, on its own connection. A passive checkpoint cannot
rewind the log while writers follow each other with no gap, so once the log
holds ``restart_pages`` frames the thread takes this process's writer gate for
one ``RESTART`` checkpoint, which makes the next writer start the log from the
beginning: the file stays bounded under any load.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Final

__all__ = ["SAFETY_PAGES", "WalCheckpointer"]

_log = logging.getLogger(__name__)

#: ``wal_autocheckpoint`` of the storage's connections: they checkpoint in a
#: commit only if the background thread has fallen this far behind.
SAFETY_PAGES: Final = 20_000


class WalCheckpointer:
    """One daemon thread per storage: checkpoint the WAL soon after commits, never in them.

    :meth:`committed` is all a commit pays (an event set). The thread starts
    at the first commit, waits ``delay`` seconds so a burst of commits shares
    one checkpoint, and exits after ``idle_exit`` seconds without commits (a
    later commit starts it again), closing its connection.
    """

    def __init__(
        self,
        database: str,
        gate: AbstractContextManager[None],
        *,
        delay: float = 0.2,
        restart_pages: int = 4_000,
        idle_exit: float = 30.0,
    ) -> None:
        """Checkpoint ``database`` (a file path); ``gate`` is the process's writer gate for it."""
        self._database = database
        self._gate = gate
        self.delay = delay
        self.restart_pages = restart_pages
        self.idle_exit = idle_exit
        self._pending = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Checkpoints run, and of those the RESTARTs (for tests and health).
        self.checkpoints = 0
        self.restarts = 0
        self.failures = 0

    def committed(self) -> None:
        """A transaction committed: checkpoint soon (start the thread if it is not running)."""
        self._pending.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start()

    def checkpoint_now(self) -> None:
        """Run one checkpoint on this thread, as the background thread would (tools and tests)."""
        connection = sqlite3.connect(self._database, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout = 200")
            self._checkpoint(connection)
        finally:
            connection.close()

    def close(self) -> None:
        """Stop the thread (it finishes a checkpoint in progress) and wait briefly for it."""
        self._closed.set()
        self._pending.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _start(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="bharatsend-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._database, isolation_level=None)
        except sqlite3.Error as e:
            self.failures += 1
            _log.warning("WAL checkpointer: cannot open the database (%s)", type(e).__name__)
            return
        try:
            # Short: a RESTART waits for readers while holding the writer gate.
            connection.execute("PRAGMA busy_timeout = 200")
            while not self._closed.is_set():
                if not self._pending.wait(self.idle_exit):
                    break
                if self._closed.wait(self.delay):
                    break
                self._pending.clear()
                self._checkpoint(connection)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            frames = int(row[1]) if row is not None else 0
            if frames >= self.restart_pages:
                # Writers leave no gap for the log to rewind: make one.
                with self._gate:
                    connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                self.restarts += 1
        except sqlite3.Error as e:
            # The next commit asks again; the connections' safety limit covers the rest.
            self.failures += 1
            _log.warning("WAL checkpoint failed (%s)", type(e).__name__)
