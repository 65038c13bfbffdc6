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

*E-mail index* (``"email|{tenant}|{digest}"``, the SHA-256 of the trimmed, lower-cased
address, so no character a caller types can break a key): the atomic create-if-absent
of this row decides which subscriber an e-mail address belongs to, also under
concurrent orders.

*Order records* (``"order|{tenant}|{digest of order_ref}"``): an order reference (the
sales poster's form id or an ``Idempotency-Key``) is bound, by create-if-absent, to the
fingerprint of the order it came with and the subscriber and subscription that order
makes. A racer that loses reads the winner's row: the same fingerprint places the same
order (or answers with it); another fingerprint is a reuse of the key, refused.

*Pending orders* (``"pending|{tenant}"``, ``RowKey = "{order id}"``): anonymous orders
whose e-mail belongs to an existing subscriber, held for customer service to confirm
(attach to that subscriber) or reject (S2, manual 5: the sales poster's user is its
e-mail; someone not logged in as that user cannot order on that account).

*Dunning index* (``"dun|{tenant}|{yyyy-mm-dd}"``, ``RowKey = "{subscriber_no}"``): the
subscribers the dunning run must visit on a day besides those whose renewal invoices
fall due by their cadence (see ``service.dunning``). Written ahead of the transaction
that makes the visit necessary (a first invoice, a reminder, a stop); a visit that
finds nothing to do costs one partition read. Rows are never updated: a day's
partition is read once, when the run passes that day.

KIDs need no index: ``KidScheme.decode`` yields the subscriber and demand numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Any

from azure.core import MatchConditions

from ..ports import ConcurrencyConflict, OrderRecord, PendingOrder
from .tables import MAX_BATCH, Storage, prefix_filter

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

    def add_many(self, tenant: str, visits: Iterable[tuple[date, int]]) -> None:
        """A bucket's next visits: one upsert transaction per day (and 100 rows), not one call each."""
        by_day: dict[date, set[int]] = {}
        for day, subscriber_no in visits:
            by_day.setdefault(day, set()).add(subscriber_no)
        for day, numbers in sorted(by_day.items()):
            pk, rows = f"dun|{tenant}|{day.isoformat()}", sorted(numbers)
            for start in range(0, len(rows), MAX_BATCH):
                self.storage.transact(TABLE, [("upsert", {"PartitionKey": pk, "RowKey": f"{n:010d}"})
                                              for n in rows[start:start + MAX_BATCH]])

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
        return f"email|{tenant}|{digest(email.strip().lower())}"

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

    def release(self, tenant: str, email: str, subscriber_no: int) -> bool:
        """Delete the binding under its ETag if it names ``subscriber_no``: a claim by
        someone else made after the read is never deleted."""
        pk = self._pk(tenant, email)
        row = self.storage.get(TABLE, pk, "")
        if row is None or int(row["SubscriberNo"]) != subscriber_no:
            return False
        try:
            self.storage.transact(TABLE, [("delete", {"PartitionKey": pk, "RowKey": ""},
                                           {"etag": row["etag"], "match_condition": MatchConditions.IfNotModified})])
        except ConcurrencyConflict:
            return False
        return True


def digest(text: str) -> str:
    """A key-safe name for caller-supplied text (Table keys refuse ``/ \\ # ?`` and control
    characters)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]



class OrderRecords:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def bind(self, tenant: str, order_ref: str, record: OrderRecord) -> OrderRecord:
        """Bind ``order_ref`` to ``record`` unless it is bound already; returns the binding."""
        pk = f"order|{tenant}|{digest(order_ref)}"
        row = {"PartitionKey": pk, "RowKey": "", "Fingerprint": record.fingerprint,
               "SubscriberNo": record.subscriber_no, "SubscriptionId": record.subscription_id}
        if self.storage.insert(TABLE, row):
            return record
        found = self.storage.get(TABLE, pk, "")
        assert found is not None
        return OrderRecord(found["Fingerprint"], int(found["SubscriberNo"]), found["SubscriptionId"])



class PendingOrders:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def add(self, tenant: str, pending: PendingOrder) -> PendingOrder:
        """Hold ``pending`` unless an order with its id is held already; returns the held one."""
        row = {"PartitionKey": f"pending|{tenant}", "RowKey": pending.id, "SubscriberNo": pending.subscriber_no,
               "Order": json.dumps(pending.order), "Received": pending.received, "State": pending.state}
        self.storage.insert(TABLE, row)
        found = self.get(tenant, pending.id)
        assert found is not None
        return found

    def get(self, tenant: str, order_id: str) -> PendingOrder | None:
        row = self.storage.get(TABLE, f"pending|{tenant}", order_id)
        return _pending(row) if row else None

    def list(self, tenant: str, state: str = "pending") -> list[PendingOrder]:
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and State eq @state",
                                  {"pk": f"pending|{tenant}", "state": state})
        return [_pending(r) for r in rows]

    def decide(self, tenant: str, pending: PendingOrder, state: str) -> PendingOrder:
        """Move ``pending`` to ``state`` under its ETag: a second decision conflicts."""
        row = {"PartitionKey": f"pending|{tenant}", "RowKey": pending.id, "State": state}
        (result,) = self.storage.transact(TABLE, [("update", row, {"mode": "merge", "etag": pending.etag,
                                                                   "match_condition": MatchConditions.IfNotModified})])
        return replace(pending, state=state, etag=str(result["etag"]))


def _pending(row: dict[str, Any]) -> PendingOrder:
    return PendingOrder(row["RowKey"], int(row["SubscriberNo"]), json.loads(row["Order"]), row["Received"],
                        row["State"], str(row["etag"]))


class Tenants:
    """The registry of tenants the timers run for, and each run's watermark (read with the
    run's attention rows: ``AttentionStore.run_state``)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def register(self, tenant: str) -> None:
        self.storage.upsert("Tenants", {"PartitionKey": "tenant", "RowKey": tenant})

    def exists(self, tenant: str) -> bool:
        return self.storage.get("Tenants", "tenant", tenant) is not None

    def all(self) -> list[str]:
        return [r["RowKey"] for r in self.storage.query("Tenants", "PartitionKey eq 'tenant'")]

    def set_watermark(self, tenant: str, run: str, through: date) -> None:
        self.storage.upsert("Tenants", {"PartitionKey": f"run|{run}", "RowKey": tenant,
                                        "Through": through.isoformat()})
