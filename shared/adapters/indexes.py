"""Index tables, so no hot path scans the Subscribers table.

*Due index* (``Indexes``, ``PartitionKey = "due|{tenant}|{cadence}|{bucket}"``, ``RowKey =
"{subscriber_no}|{subscription_id}"``). A subscription is entered once, under the
cadence key of its anchor (``calendar.cadence_key``), when it is created. The invoice
run for a day asks ``calendar.cadence_keys_starting_on(day + lead days)`` for the keys
whose periods start then and reads those partitions: renewals never rewrite the
index, so issuing an invoice costs no index write. The entry is written *before* the
subscriber's transaction commits; an entry whose subscription never came to be, or has
ended, only costs the run one partition read that finds nothing due. Each cadence key
is spread over ``BUCKETS`` partitions by subscriber number, so a popular renewal day
(the 1st of the month) is read from 16 partitions in parallel rather than one hot one
(Table Storage serves about 2,000 entities/s per partition).

*E-mail index* (``"email|{tenant}|{address}"``): the atomic create-if-absent of this row
decides which subscriber an e-mail address belongs to, also under concurrent orders.

*Dunning index* (``"dun|{tenant}|{yyyy-mm-dd}"``, ``RowKey = "{subscriber_no}"``): the
subscribers the dunning run must visit on a day besides those whose renewal invoices
fall due by their cadence (see ``service.dunning``). Written ahead of the transaction
that makes the visit necessary (a first invoice, a reminder, a stop); a visit that
finds nothing to do costs one partition read. Rows are never updated: a day's
partition is read once, when the run passes that day.

KIDs need no index: ``KidScheme.decode`` yields the subscriber and demand numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from .tables import Storage, prefix_filter

TABLE = "Indexes"
BUCKETS = 16


def bucket(subscriber_no: int) -> int:
    return subscriber_no % BUCKETS


class DueIndex:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, tenant: str, cadence: str, subscriber_no: int, subscription_id: str) -> None:
        self.storage.upsert(TABLE, {"PartitionKey": f"due|{tenant}|{cadence}|{bucket(subscriber_no):02d}",
                                    "RowKey": f"{subscriber_no:010d}|{subscription_id}"})

    def subscribers(self, tenant: str, cadences: Iterable[str], workers: int = 8) -> list[int]:
        """Distinct subscriber numbers entered under any of ``cadences``, in order.

        One range query per cadence key covers its buckets (the service walks the
        partitions with continuation tokens); the keys are read in parallel.
        """

        def read(cadence: str) -> set[int]:
            query, params = prefix_filter(f"due|{tenant}|{cadence}|")
            return {int(r["RowKey"].split("|", 1)[0]) for r in self.storage.query(TABLE, query, params, ["RowKey"])}

        keys = sorted(set(cadences))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found: set[int] = set().union(*pool.map(read, keys)) if keys else set()
        return sorted(found)


class DunningIndex:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, tenant: str, day: date, subscriber_no: int) -> None:
        self.storage.upsert(TABLE, {"PartitionKey": f"dun|{tenant}|{day.isoformat()}",
                                    "RowKey": f"{subscriber_no:010d}"})

    def subscribers(self, tenant: str, days: Iterable[date]) -> set[int]:
        found: set[int] = set()
        for day in days:
            rows = self.storage.query(TABLE, "PartitionKey eq @pk", {"pk": f"dun|{tenant}|{day.isoformat()}"},
                                      ["RowKey"])
            found.update(int(r["RowKey"]) for r in rows)
        return found


class EmailIndex:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def _pk(tenant: str, email: str) -> str:
        return f"email|{tenant}|{email.strip().lower()}"

    def find(self, tenant: str, email: str) -> int | None:
        row = self.storage.get(TABLE, self._pk(tenant, email), "")
        return int(row["SubscriberNo"]) if row else None

    def claim(self, tenant: str, email: str, subscriber_no: int) -> int:
        """Bind ``email`` to ``subscriber_no`` unless it is bound already; returns the owner."""
        if self.storage.insert(TABLE, {"PartitionKey": self._pk(tenant, email), "RowKey": "",
                                       "SubscriberNo": subscriber_no}):
            return subscriber_no
        owner = self.find(tenant, email)
        assert owner is not None
        return owner


class Tenants:
    """The registry of tenants the timers run for, and each run's watermark (read with the
    run's attention rows: ``AttentionStore.run_state``)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def register(self, tenant: str) -> None:
        self.storage.upsert("Tenants", {"PartitionKey": "tenant", "RowKey": tenant})

    def all(self) -> list[str]:
        return [r["RowKey"] for r in self.storage.query("Tenants", "PartitionKey eq 'tenant'")]

    def set_watermark(self, tenant: str, run: str, through: date) -> None:
        self.storage.upsert("Tenants", {"PartitionKey": f"run|{run}", "RowKey": tenant,
                                        "Through": through.isoformat()})
