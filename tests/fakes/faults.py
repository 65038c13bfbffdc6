"""Fault injection for the fakes: ``fake.inject("commit", ConcurrencyConflict())`` makes
the next ``commit`` raise it; several faults are raised one per call, in order; with
``when``, only calls whose arguments it accepts (``when=lambda tenant, number: number == 7``;
the arguments are those the fake passes to ``fault``: for the accounts, the tenant and the
subscriber number)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Faults:
    def __init__(self) -> None:
        self._faults: dict[str, list[tuple[Callable[..., bool] | None, BaseException]]] = {}
        self._faults_lock = threading.Lock()

    def inject(self, method: str, *faults: BaseException, when: Callable[..., bool] | None = None) -> None:
        with self._faults_lock:
            self._faults.setdefault(method, []).extend((when, f) for f in faults)

    def fault(self, method: str, *args: Any) -> None:
        """Raise the next fault injected for ``method`` that applies to ``args``, if any."""
        with self._faults_lock:
            queued = self._faults.get(method, [])
            i = next((i for i, (when, _f) in enumerate(queued) if when is None or when(*args)), None)
            fault = queued.pop(i)[1] if i is not None else None
        if fault is not None:
            raise fault

    def clear_faults(self) -> None:
        """Drop the faults injected and not raised yet."""
        with self._faults_lock:
            self._faults.clear()
