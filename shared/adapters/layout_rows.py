"""The storage steps of moving a tenant from layout 2 to layout 3 (``abonno layout``; the
protocol is ``service.layout_move``'s, decision 0012).

Rows of table ``Subscribers`` as they are, partition by partition: a subscriber's
partition of the first shape (``{tenant}|{spread}|{n}``) read whole, its head fenced
(``Moved`` set by a MERGE under the head's ETag, so every writer that loaded it before
conflicts and the accounts adapter sends it to the bucket), its rows copied into its
bucket under ``Place.rk`` keys (history first, the head last: the bucket head's existence
means "the subscriber is here now"), and the copy read back. ``tally`` counts the rows
per kind (``1|inv|``, ``0|dem|``, ...) and sums their ``Amount`` and ``Total`` columns: what
the move compares before and after. The move's report is stored as rows of table
``Tenants`` (``move|{tenant}``: a row ``{run}`` with the run's totals, a row ``s|{run}|{n}``
per subscriber with its tallies); one mover at a time holds the tenant's lease row there.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions

from ..domain.placement import Layout
from ..ports import ConcurrencyConflict
from .accounts import BATCH_BYTES, HEAD, OP_FRAMING, TABLE, Place, bucket_key, subscriber_of
from .layouts import TABLE as TENANTS
from .tables import MAX_BATCH, Operation, Storage, _to_table, check_entity

SYSTEM = ("PartitionKey", "RowKey", "etag", "Timestamp")
LEASE_S = 120.0  # a mover that stops renewing its lease (every RENEW_S) for this long is taken for dead
RENEW_S = 30.0
MONEY = ("Amount", "Total")

Tally = dict[str, tuple[int, int, int]]  # row kind -> (rows, sum of Amount, sum of Total)


def kind(local_rk: str) -> str:
    """A row's kind from its own key: ``1|inv|00000007`` -> ``1|inv|``; the head is its own."""
    return local_rk if local_rk == HEAD else local_rk[:6]


def tally(rows: Sequence[Mapping[str, Any]]) -> Tally:
    """Rows per kind and the sums of their money columns (integer minor units)."""
    out: dict[str, list[int]] = {}
    for r in rows:
        t = out.setdefault(kind(r["RowKey"]), [0, 0, 0])
        t[0] += 1
        t[1] += int(r.get("Amount") or 0)
        t[2] += int(r.get("Total") or 0)
    return {k: (v[0], v[1], v[2]) for k, v in sorted(out.items())}


@dataclass(frozen=True)
class FirstShape:
    """A subscriber's partition of the first shape as read: its rows (own keys) and head."""

    pk: str
    number: int
    rows: list[dict[str, Any]]

    @property
    def head(self) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["RowKey"] == HEAD), None)

    @property
    def moved(self) -> bool:
        head = self.head
        return bool(head and head.get("Moved"))

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every row but the head."""
        return [r for r in self.rows if r["RowKey"] != HEAD]


def _content(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in SYSTEM and k != "Moved"}


class LayoutRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # ---- the first shape -------------------------------------------------------------------------
    def first_shape(self, tenant: str) -> list[str]:
        """Every partition of the first shape the tenant has (keys only, in key order)."""
        keys: list[str] = []
        for row in self.storage.query(TABLE, "PartitionKey ge @lo and PartitionKey lt @hi",
                                      {"lo": f"{tenant}|0", "hi": f"{tenant}|g"}, select=["PartitionKey"]):
            if not keys or keys[-1] != row["PartitionKey"]:
                keys.append(row["PartitionKey"])
        return keys

    def read(self, pk: str) -> FirstShape:
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk", {"pk": pk}))
        return FirstShape(pk, subscriber_of(pk), rows)

    def moved(self, pk: str) -> bool:
        """Whether the partition's head is marked ``Moved`` (a point read)."""
        head = self.storage.get(TABLE, pk, HEAD)
        return bool(head and head.get("Moved"))

    def fence(self, part: FirstShape) -> bool:
        """Mark the head ``Moved`` under the ETag it was read with: False if it changed since."""
        head = part.head
        if head is None:
            return False
        try:
            self.storage.transact(TABLE, [("update", {"PartitionKey": part.pk, "RowKey": HEAD, "Moved": True},
                                           {"mode": "merge", "etag": head["etag"],
                                            "match_condition": MatchConditions.IfNotModified})])
            return True
        except ConcurrencyConflict:
            return False

    def unfence(self, part: FirstShape) -> None:
        """The subscriber stays where it was: ``Moved`` cleared (a move that failed its check)."""
        self.storage.transact(TABLE, [("update", {"PartitionKey": part.pk, "RowKey": HEAD, "Moved": False},
                                       {"mode": "merge"})])

    # ---- the bucket -------------------------------------------------------------------------------
    @staticmethod
    def bucket_place(tenant: str, number: int, layout: Layout) -> Place:
        return Place(bucket_key(tenant, layout.bucket(number)), number, True)

    def bucket_head(self, place: Place) -> dict[str, Any] | None:
        return self.storage.get(TABLE, place.pk, place.rk(HEAD))

    def copy(self, rows: Sequence[Mapping[str, Any]], place: Place) -> dict[str, str]:
        """Upsert ``rows`` (own keys) into the bucket, history first, in transactions of at most
        100 rows and ``BATCH_BYTES``; the ETag each got, by own key."""
        ordered = sorted(rows, key=lambda r: (r["RowKey"][:1] != "1", r["RowKey"]))
        ops: list[Operation] = [("upsert", {**_content(r), "PartitionKey": place.pk,
                                            "RowKey": place.rk(r["RowKey"])}, {"mode": "replace"})
                                for r in ordered]
        etags: dict[str, str] = {}
        for group in _packed(ops):
            result = self.storage.transact(TABLE, group)
            for op, answer in zip(group, result, strict=True):
                etags[place.local(op[1]["RowKey"])] = str(answer.get("etag") or "")
        return etags

    def write_head(self, head: Mapping[str, Any], place: Place) -> bool:
        """Create the bucket head (the last row of the move): False if one is there already."""
        try:
            self.storage.transact(TABLE, [("create", {**_content(head), "PartitionKey": place.pk,
                                                      "RowKey": place.rk(HEAD)})])
            return True
        except ConcurrencyConflict:
            return False

    def read_back(self, place: Place) -> list[dict[str, Any]]:
        """The subscriber's rows in its bucket (own keys): one query of its two prefixes."""
        (hot_lo, hot_hi), (old_lo, old_hi) = place.span("0"), place.span("1")
        rows = self.storage.query(
            TABLE, "PartitionKey eq @pk and ( (RowKey ge @a and RowKey lt @b ) or (RowKey ge @c and RowKey lt @d ) )",
            {"pk": place.pk, "a": hot_lo, "b": hot_hi, "c": old_lo, "d": old_hi})
        return [r | {"RowKey": place.local(r["RowKey"])} for r in rows]

    def remove(self, place: Place, local_keys: Sequence[str]) -> None:
        """Delete copied rows again (a move that failed its check leaves nothing half there)."""
        keys = [place.rk(k) for k in local_keys]
        for start in range(0, len(keys), MAX_BATCH):
            self.storage.transact(TABLE, [("delete", {"PartitionKey": place.pk, "RowKey": k})
                                          for k in keys[start:start + MAX_BATCH]])

    def catch_up(self, part: FirstShape, place: Place, copied: Mapping[str, str]) -> int:
        """Rows written to the first shape after its copy was read (the delivery log is written
        outside the head's guard, by a writer that looked before the bucket head existed): a row
        new there is created in the bucket, one changed there replaces the bucket's copy if
        that copy is still the one the move wrote. How many rows were carried over."""
        before = {r["RowKey"]: r["etag"] for r in part.items}
        carried = 0
        for row in self.read(part.pk).items:
            rk = row["RowKey"]
            if before.get(rk) == row["etag"]:
                continue
            entity = {**_content(row), "PartitionKey": place.pk, "RowKey": place.rk(rk)}
            if rk not in copied:
                op: Operation = ("create", entity)
            else:
                op = ("update", entity, {"mode": "replace", "etag": copied[rk],
                                         "match_condition": MatchConditions.IfNotModified})
            try:
                self.storage.transact(TABLE, [op])
                carried += 1
            except ConcurrencyConflict:
                pass  # the bucket's row is newer: written there since
        return carried

    # ---- one mover at a time ------------------------------------------------------------------------
    def lease(self, tenant: str, holder: str) -> Lease:
        """Hold the tenant's move lease (``ConcurrencyConflict`` if another mover holds it)."""
        key = {"PartitionKey": f"move|{tenant}", "RowKey": "lease"}
        now = time.time()
        found = self.storage.get(TENANTS, key["PartitionKey"], key["RowKey"])
        entity = {**key, "Holder": holder, "Until": now + LEASE_S}
        if found is None:
            if not self.storage.insert(TENANTS, entity):
                raise ConcurrencyConflict(f"another move of {tenant} started just now")
        elif float(found["Until"]) > now and found["Holder"] != holder:
            raise ConcurrencyConflict(f"{found['Holder']} is moving {tenant} (lease until {found['Until']:.0f})")
        else:
            self.storage.transact(TENANTS, [("update", entity, {"mode": "replace", "etag": found["etag"],
                                                                "match_condition": MatchConditions.IfNotModified})])
        return Lease(self.storage, tenant, holder, now)

    # ---- the stored report ---------------------------------------------------------------------------
    def store_report(self, tenant: str, run: str, totals: Mapping[str, Any],
                     subscribers: Sequence[Mapping[str, Any]]) -> None:
        """The run's totals (row ``{run}``) and each subscriber's tallies (rows ``s|{run}|{n}``)."""
        pk = f"move|{tenant}"
        rows = [{"PartitionKey": pk, "RowKey": run, "Report": json.dumps(totals)}]
        rows += [{"PartitionKey": pk, "RowKey": f"s|{run}|{int(s['subscriber']):010d}", "Report": json.dumps(s)}
                 for s in subscribers]
        for group in _packed([("upsert", r, {"mode": "replace"}) for r in rows]):
            self.storage.transact(TENANTS, group)

    def reports(self, tenant: str) -> list[dict[str, Any]]:
        """Every stored run's totals, oldest first."""
        rows = self.storage.query(TENANTS, "PartitionKey eq @pk and RowKey ge 'run-' and RowKey lt 'run.'",
                                  {"pk": f"move|{tenant}"})
        return [json.loads(r["Report"]) for r in rows]

    def report_of(self, tenant: str, run: str) -> list[dict[str, Any]]:
        """One run's rows per subscriber."""
        rows = self.storage.query(TENANTS, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                  {"pk": f"move|{tenant}", "lo": f"s|{run}|", "hi": f"s|{run}}}"})
        return [json.loads(r["Report"]) for r in rows]


@dataclass
class Lease:
    storage: Storage
    tenant: str
    holder: str
    renewed: float

    def renew(self, every_s: float = RENEW_S) -> None:
        """Keep the lease (at most every ``RENEW_S``); ``ConcurrencyConflict`` if another mover took it."""
        now = time.time()
        if now - self.renewed < every_s:
            return
        found = self.storage.get(TENANTS, f"move|{self.tenant}", "lease")
        if found is None or found["Holder"] != self.holder:
            raise ConcurrencyConflict(f"the move lease of {self.tenant} was taken over")
        self.storage.transact(TENANTS, [("update", {"PartitionKey": f"move|{self.tenant}", "RowKey": "lease",
                                                    "Holder": self.holder, "Until": now + LEASE_S},
                                         {"mode": "replace", "etag": found["etag"],
                                          "match_condition": MatchConditions.IfNotModified})])
        self.renewed = now

    def release(self) -> None:
        found = self.storage.get(TENANTS, f"move|{self.tenant}", "lease")
        if found is not None and found["Holder"] == self.holder:
            key = {"PartitionKey": f"move|{self.tenant}", "RowKey": "lease"}
            self.storage.transact(TENANTS, [("delete", key, {"etag": found["etag"],
                                                             "match_condition": MatchConditions.IfNotModified})])


def new_run() -> str:
    """A run's id: sorts by time (``run-{utc}-{random}``)."""
    return f"run-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def _packed(ops: Sequence[Operation]) -> Iterator[list[Operation]]:
    group: list[Operation] = []
    size = 0
    for op in ops:
        bytes_ = OP_FRAMING + check_entity(_to_table(op[1]))  # an Int64 column as it will be sent
        if group and (len(group) == MAX_BATCH or size + bytes_ > BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(op)
        size += bytes_
    if group:
        yield group
