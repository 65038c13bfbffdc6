"""A bus that records what is sent, and a notifier that keeps what it delivers."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from shared.ports import BusMessage, Notice

from .faults import Faults


class FakeBus(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, BusMessage]] = []
        self._lock = threading.Lock()

    def send(self, queue: str, messages: Sequence[BusMessage]) -> None:
        self.fault("send")
        with self._lock:
            self.sent += [(queue, m) for m in messages]

    def messages(self, queue: str) -> list[BusMessage]:
        """What was sent to ``queue``, in order (a re-sent message appears again, as it
        would arrive again at a queue without duplicate detection)."""
        return [m for q, m in self.sent if q == queue]

    def take(self, queue: str) -> list[BusMessage]:
        """What was sent to ``queue``, removed (what its worker would receive)."""
        with self._lock:
            taken = [m for q, m in self.sent if q == queue]
            self.sent = [(q, m) for q, m in self.sent if q != queue]
            return taken


class FakeNotifier(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.delivered: dict[str, Notice] = {}  # by id: the same notice twice is delivered once

    def send(self, notice: Notice) -> None:
        self.fault("send")
        self.delivered[notice.id] = notice
