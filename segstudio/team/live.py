"""Live changes of a team project: the server NOTIFYs every lease, save, review and assignment (schema 2
triggers, channel `segstudio_changes`, payload "table:image_id"); a `ChangeListener` thread LISTENs on
its own connection and calls back at once, so the window learns of others' work in milliseconds instead
of at the next poll. The poll stays as the fallback (a dropped listener reconnects after a pause).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from segstudio.team.connection import connect, require_driver
from segstudio.team.errors import TeamError

__all__ = ["CHANNEL", "ChangeListener"]

CHANNEL = "segstudio_changes"
#: Seconds between checks of the stop flag, and the pause before reconnecting a dropped listener.
WAKE_SECONDS = 0.5
RECONNECT_SECONDS = 3.0


class ChangeListener:
    """Calls `on_change(table, image_id)` on its own thread for every change anyone makes."""

    def __init__(self, url: str, on_change: Callable[[str, int], None]) -> None:
        self.url = url
        self.on_change = on_change
        self._stop = threading.Event()
        self._conn: Any = None
        self.listening = threading.Event()  # set while LISTEN is active (tests and benches wait on it)
        self._thread = threading.Thread(target=self._loop, name="segstudio-team-listen", daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        psycopg = require_driver()
        while not self._stop.is_set():
            try:
                conn = connect(self.url)
            except TeamError:
                self._stop.wait(RECONNECT_SECONDS)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.listening.set()
                while not self._stop.is_set():
                    for notice in conn.notifies(timeout=WAKE_SECONDS):
                        table, _, image = notice.payload.partition(":")
                        with contextlib.suppress(ValueError):
                            self.on_change(table, int(image))
            except psycopg.Error:
                self.listening.clear()
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.close()
