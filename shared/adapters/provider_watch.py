"""What the provider timer polls (``ports.ProviderWatch``): rows in the ``Indexes`` table.

One partition per tenant, ``watch|{tenant}``; RowKey
``{day}|{provider}|{subscriber:010d}|{agreement key}|{charge id}``, so the watches due by a
day are one range query, never a scan of subscribers. A watch is written ahead of the
commit that makes it necessary (like the dunning index): one whose commit failed finds
nothing to do when it is polled, and is then removed.
"""

from __future__ import annotations

from datetime import date, timedelta

from ..ports import Watch
from .tables import Storage

TABLE = "Indexes"


def _pk(tenant: str) -> str:
    return f"watch|{tenant}"


def _rk(day: date, watch: Watch) -> str:
    return f"{day.isoformat()}|{watch.provider}|{watch.subscriber_no:010d}|{watch.agreement_key}|{watch.charge_id}"


class WatchRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, tenant: str, day: date, watch: Watch) -> None:
        self.storage.upsert(TABLE, {"PartitionKey": _pk(tenant), "RowKey": _rk(day, watch)})

    def due(self, tenant: str, through: date) -> list[tuple[date, Watch]]:
        after = (through + timedelta(days=1)).isoformat()
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey lt @rk", {"pk": _pk(tenant), "rk": after},
                                  ["RowKey"])
        found = []
        for row in rows:
            day, provider, subscriber, key, charge = row["RowKey"].split("|", 4)
            found.append((date.fromisoformat(day), Watch(int(subscriber), provider, key, charge)))
        return found

    def done(self, tenant: str, day: date, watch: Watch) -> None:
        self.storage.delete(TABLE, _pk(tenant), _rk(day, watch))
