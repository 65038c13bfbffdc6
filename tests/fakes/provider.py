"""The provider watch index in memory (``ports.ProviderWatch``)."""

from __future__ import annotations

from datetime import date

from shared.ports import Watch


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
