"""The one clock. Production reads the system clock; tests and the local host set it,
so a year of billing runs in seconds (Kill Bill's ``ClockMock``, Stripe's test clocks).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from .ports import Clock as Clock  # re-exported: the port lives in shared/ports.py


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SettableClock:
    """A clock that is set by hand; it stands still, or with ``running`` moves on in real
    time from where it was last set (the local host's live mode)."""

    def __init__(self, start: datetime | None = None, running: bool = False) -> None:
        self._now = start or datetime.now(UTC)
        self._set_at = time.monotonic()
        self.running = running
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self.running:
                return self._now + timedelta(seconds=time.monotonic() - self._set_at)
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("set the clock to an aware datetime")
        with self._lock:
            self._now = moment
            self._set_at = time.monotonic()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)
