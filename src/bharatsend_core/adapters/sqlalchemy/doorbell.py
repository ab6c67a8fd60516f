"""Dispatch wake-ups across processes on one SQLite file: a doorbell file beside it.

SQLite has no ``LISTEN``/``NOTIFY``, so a worker in another process than the
application only saw new messages at its next poll (``poll_interval``, 0.5 s
by default). Now a commit that queued dispatch rows writes eight bytes at the
start of ``<database>-wake``: its storage's token and a counter. A waiting
worker reads them every ``tick`` (2 ms) and wakes its dispatch loop when they
changed and are not its own. One ``pread`` a tick is the whole cost; the
accept path pays one ``pwrite``.

Wake-ups are an optimisation: waiters still time out and poll, so a doorbell
that cannot be opened (a read-only directory) or a ring that is missed only
costs latency, and is logged once.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from typing import Final

from bharatsend_core.adapters.signal import DispatchSignal

__all__ = ["Doorbell", "doorbell_path"]

_LOG = logging.getLogger(__name__)
_FORMAT: Final = struct.Struct("<II")


def doorbell_path(database: str) -> str:
    """The doorbell file of a SQLite database file."""
    return f"{os.path.abspath(database)}-wake"


class Doorbell:
    """Ring it after a commit that queued work; ``watch`` wakes ``signal`` on others' rings."""

    #: How often a watcher reads the doorbell.
    TICK: Final = 0.002

    def __init__(self, path: str, token: str, signal: DispatchSignal) -> None:
        self._path = path
        self._token = int(token[:8], 16)
        self._signal = signal
        self._count = 0
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._warned = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def ring(self) -> None:
        """Tell other processes' workers that dispatch rows were committed."""
        with self._lock:
            if self._stop.is_set():
                return  # closed with its storage: nothing to reopen
            try:
                fd = self._open()
                self._count = (self._count + 1) & 0xFFFFFFFF
                os.pwrite(fd, _FORMAT.pack(self._token, self._count), 0)
            except OSError as e:
                self._warn(e)

    def watch(self) -> None:
        """Start the watcher thread once (later calls do nothing)."""
        with self._lock:
            if self._watcher is not None or self._stop.is_set():
                return
            self._watcher = threading.Thread(
                target=self._run, name="bharatsend-doorbell", daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        """Stop the watcher and close the file."""
        self._stop.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(1.0)
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _run(self) -> None:
        try:
            with self._lock:
                fd = self._open()
            seen = os.pread(fd, _FORMAT.size, 0)
        except OSError as e:
            self._warn(e)
            return
        while not self._stop.wait(self.TICK):
            try:
                now = os.pread(fd, _FORMAT.size, 0)
            except OSError as e:  # closed under us: the storage is closing
                if not self._stop.is_set():
                    self._warn(e)
                return
            if now != seen:
                seen = now
                if len(now) == _FORMAT.size and _FORMAT.unpack(now)[0] != self._token:
                    self._signal.notify()

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o666)
        return self._fd

    def _warn(self, error: OSError) -> None:
        if not self._warned:
            self._warned = True
            _LOG.warning(
                "dispatch doorbell %s unusable (%s); other processes' workers wait for their poll",
                self._path,
                type(error).__name__,
            )
