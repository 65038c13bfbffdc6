"""Each tenant's storage layout (``domain.placement.Layout``), in table ``Tenants``.

Row ``PartitionKey = "layout"``, ``RowKey = {tenant}``: ``Version``, ``BucketSize``,
``Stride``, ``Moving``. A tenant without a row is looked at once: if it has partitions of
the first shape (``{tenant}|{spread}|{subscriber}``) it is a tenant of layout 2, else a new
one, which starts in buckets. The answer is written with create-if-absent, so it never
overwrites a move (``abonno layout``) that wrote its row first.

Every process keeps what it read: a tenant in buckets for good (layout 3, not moving)
for ever, any other for ``ttl_s``. A move therefore announces itself (``moving``) and
waits ``ttl_s`` before it moves anyone: by then no process still writes new subscribers
in the first shape.
"""

from __future__ import annotations

import threading
import time

from ..domain.placement import BUCKETS, FIRST, Layout
from .tables import Storage

TABLE = "Tenants"
SUBSCRIBERS = "Subscribers"
TTL_S = 30.0


class Layouts:
    def __init__(self, storage: Storage, ttl_s: float = TTL_S, default: Layout = BUCKETS) -> None:
        self.storage, self.ttl_s, self.default = storage, ttl_s, default
        self._known: dict[str, tuple[Layout, float]] = {}
        self._lock = threading.Lock()

    def get(self, tenant: str) -> Layout:
        with self._lock:
            known = self._known.get(tenant)
        if known is not None and (known[1] == float("inf") or time.monotonic() < known[1]):
            return known[0]
        row = self.storage.get(TABLE, "layout", tenant)
        if row is None:
            layout = self._probe(tenant)
            if not self.storage.insert(TABLE, _row(tenant, layout)):
                row = self.storage.get(TABLE, "layout", tenant)
        if row is not None:
            layout = _layout(tenant, row)
        self._remember(tenant, layout)
        return layout

    def _probe(self, tenant: str) -> Layout:
        """The layout of a tenant without a row: its shape in ``Subscribers``. Partitions of the
        first shape beside buckets mean a move began (its old partitions stay as evidence):
        neither layout 2 (their heads say ``Moved``) nor a bucket size can be told from that."""
        first = self._any(tenant, f"{tenant}|0", f"{tenant}|g")
        if first is None:
            return self.default
        if self._any(tenant, f"{tenant}||", f"{tenant}|}}") is not None:
            raise LayoutUnknown(f"tenant {tenant} has partitions of both shapes but no layout row: "
                                f"restore its row (abonno layout --status shows its last move's layout)")
        return FIRST

    def _any(self, tenant: str, lo: str, hi: str) -> dict[str, object] | None:
        return self.storage.first(SUBSCRIBERS, "PartitionKey ge @lo and PartitionKey lt @hi", {"lo": lo, "hi": hi},
                                  select=["PartitionKey"])

    def set(self, tenant: str, layout: Layout) -> None:
        self.storage.upsert(TABLE, _row(tenant, layout))
        self._remember(tenant, layout)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._known.pop(tenant, None)

    def _remember(self, tenant: str, layout: Layout) -> None:
        until = float("inf") if layout.bucketed and not layout.moving else time.monotonic() + self.ttl_s
        with self._lock:
            self._known[tenant] = (layout, until)


class LayoutUnknown(RuntimeError):
    """The tenant's layout cannot be read or told: an operator's matter, never the caller's
    bad request (a ``ValueError`` is answered 400), and nothing is guessed."""


def _layout(tenant: str, row: dict[str, object]) -> Layout:
    try:
        moving = row.get("Moving", False)
        if not isinstance(moving, bool):
            raise ValueError(f"Moving {moving!r}")
        return Layout(_whole(row["Version"]), _whole(row["BucketSize"]), _whole(row["Stride"]), moving=moving)
    except (KeyError, TypeError, ValueError) as exc:
        raise LayoutUnknown(f"tenant {tenant}: its layout row cannot be read ({exc})") from exc


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _row(tenant: str, layout: Layout) -> dict[str, object]:
    return {"PartitionKey": "layout", "RowKey": tenant, "Version": layout.version,
            "BucketSize": layout.bucket_size, "Stride": layout.stride, "Moving": layout.moving}
