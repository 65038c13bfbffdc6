"""Providers for service tests that involve no payment provider: every call is refused as
unavailable (a test that charges or checks out uses the real adapters against the
simulators in ``devhost/``: ``tests/providers.py``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.ports import ProviderUnavailable, Watch


class NoProvider:
    """A ``VippsRecurring`` / ``SwedbankPay`` that is never reachable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, call: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise ProviderUnavailable(f"{self.name} is not configured in this test ({call})")
        return refuse


class FakeProviderWatch:
    """``ProviderWatch`` in memory."""

    def __init__(self) -> None:
        self.entries: set[tuple[str, date, Watch]] = set()

    def add(self, tenant: str, day: date, watch: Watch) -> None:
        self.entries.add((tenant, day, watch))

    def due(self, tenant: str, through: date) -> list[tuple[date, Watch]]:
        return sorted(((d, w) for t, d, w in self.entries if t == tenant and d <= through),
                      key=lambda e: (e[0], e[1].provider, e[1].subscriber_no, e[1].agreement_key, e[1].charge_id))

    def done(self, tenant: str, day: date, watch: Watch) -> None:
        self.entries.discard((tenant, day, watch))
