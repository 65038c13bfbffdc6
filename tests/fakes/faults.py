"""Fault injection for the fakes: ``fake.inject("commit", ConcurrencyConflict())`` makes
the next ``commit`` raise it (a list of faults is raised one per call, in order)."""

from __future__ import annotations

import threading


class Faults:
    def __init__(self) -> None:
        self._faults: dict[str, list[BaseException]] = {}
        self._faults_lock = threading.Lock()

    def inject(self, method: str, *faults: BaseException) -> None:
        with self._faults_lock:
            self._faults.setdefault(method, []).extend(faults)

    def fault(self, method: str) -> None:
        """Raise the next fault injected for ``method``, if any."""
        with self._faults_lock:
            queued = self._faults.get(method)
            fault = queued.pop(0) if queued else None
        if fault is not None:
            raise fault
