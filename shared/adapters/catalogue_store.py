"""The tenant's catalogue in table ``Catalogue`` (one partition per tenant).

Read whole (one round trip) and cached per process for ``ttl`` seconds: the invoice
run reads it for every message, and a catalogue changes seldom. A write through this
repository drops the local cache at once; other processes see it within ``ttl``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..domain.catalogue import BillingPlan, Catalogue, DunningProcess, Organization, Product, SubscriptionPlan
from .codec import dumps, loads
from .tables import Storage

TABLE = "Catalogue"
KINDS: dict[str, type[Any]] = {
    "organization": Organization,
    "product": Product,
    "billing_plan": BillingPlan,
    "plan": SubscriptionPlan,
    "dunning_process": DunningProcess,
}
FIELDS = {"organization": "organizations", "product": "products", "billing_plan": "billing_plans", "plan": "plans",
          "dunning_process": "dunning_processes"}


class CatalogueStore:
    def __init__(self, storage: Storage, ttl: float = 30.0) -> None:
        self.storage = storage
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Catalogue]] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> Catalogue:
        with self._lock:
            hit = self._cache.get(tenant)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        catalogue = self._read(tenant)
        with self._lock:
            self._cache[tenant] = (time.monotonic(), catalogue)
        return catalogue

    def _read(self, tenant: str) -> Catalogue:
        parts: dict[str, dict[str, Any]] = {f: {} for f in FIELDS.values()}
        for row in self.storage.query(TABLE, "PartitionKey eq @pk", {"pk": tenant}):
            kind, item_id = row["RowKey"].split("|", 1)
            parts[FIELDS[kind]][item_id] = loads(KINDS[kind], row["Body"])
        return Catalogue(**parts)

    def put(self, tenant: str, kind: str, item: Any) -> None:
        item.check_bounds()  # the one write path: nothing out of bounds is stored
        self.storage.upsert(TABLE, {"PartitionKey": tenant, "RowKey": f"{kind}|{item.id}", "Body": dumps(item)})
        self.invalidate(tenant)

    def delete(self, tenant: str, kind: str, item_id: str) -> None:
        self.storage.delete(TABLE, tenant, f"{kind}|{item_id}")
        self.invalidate(tenant)

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            self._cache.pop(tenant, None)
