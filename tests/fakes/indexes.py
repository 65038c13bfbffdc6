"""In-memory indexes, tenants and needs-attention rows, as the Table adapters behave."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import date

from shared.ports import TENANT_RUN, Attention, ConcurrencyConflict, OrderRecord, PendingOrder, RunState

from .faults import Faults

_tags = itertools.count(1)


class FakeDueIndex:
    def __init__(self) -> None:
        self.entries: set[tuple[str, str, int, str]] = set()

    def add(self, tenant: str, cadence: str, subscriber_no: int, subscription_id: str) -> None:
        self.entries.add((tenant, cadence, subscriber_no, subscription_id))

    def subscribers(self, tenant: str, cadences: Iterable[str]) -> list[int]:
        wanted = set(cadences)
        return sorted({n for t, c, n, _s in self.entries if t == tenant and c in wanted})


class FakeDunningIndex:
    def __init__(self) -> None:
        self.entries: set[tuple[str, date, int]] = set()

    def add(self, tenant: str, day: date, subscriber_no: int) -> None:
        self.entries.add((tenant, day, subscriber_no))

    def add_many(self, tenant: str, visits: Iterable[tuple[date, int]]) -> None:
        for day, subscriber_no in visits:
            self.add(tenant, day, subscriber_no)

    def subscribers(self, tenant: str, days: Iterable[date]) -> set[int]:
        wanted = set(days)
        return {n for t, d, n in self.entries if t == tenant and d in wanted}


class FakeEmails:
    def __init__(self) -> None:
        self.owners: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def find(self, tenant: str, email: str) -> int | None:
        return self.owners.get((tenant, email.strip().lower()))

    def claim(self, tenant: str, email: str, subscriber_no: int) -> int:
        with self._lock:
            return self.owners.setdefault((tenant, email.strip().lower()), subscriber_no)

    def release(self, tenant: str, email: str, subscriber_no: int) -> bool:
        with self._lock:
            key = (tenant, email.strip().lower())
            if self.owners.get(key) != subscriber_no:
                return False
            del self.owners[key]
            return True


class FakeOrderRecords:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], OrderRecord] = {}
        self._lock = threading.Lock()

    def bind(self, tenant: str, order_ref: str, record: OrderRecord) -> OrderRecord:
        with self._lock:
            return self.records.setdefault((tenant, order_ref), record)


class FakePendingOrders:
    def __init__(self) -> None:
        self.held: dict[tuple[str, str], PendingOrder] = {}
        self._lock = threading.Lock()

    def add(self, tenant: str, pending: PendingOrder) -> PendingOrder:
        with self._lock:
            return self.held.setdefault((tenant, pending.id), replace(pending, etag=f'W/"p{next(_tags)}"'))

    def get(self, tenant: str, order_id: str) -> PendingOrder | None:
        return self.held.get((tenant, order_id))

    def list(self, tenant: str, state: str = "pending") -> list[PendingOrder]:
        return [p for (t, _id), p in sorted(self.held.items()) if t == tenant and p.state == state]

    def decide(self, tenant: str, pending: PendingOrder, state: str) -> PendingOrder:
        with self._lock:
            held = self.held.get((tenant, pending.id))
            if held is None or held.etag != pending.etag:
                raise ConcurrencyConflict(f"pending order {pending.id} changed since it was read")
            decided = replace(held, state=state, etag=f'W/"p{next(_tags)}"')
            self.held[(tenant, pending.id)] = decided
            return replace(pending, state=state, etag=decided.etag)


class FakeTenants:
    """The tenant registry; the watermarks it sets are what ``FakeAttention.run_state`` reads
    (they share one table in Azure: hand both the same ``watermarks``)."""

    def __init__(self, watermarks: dict[tuple[str, str], date] | None = None) -> None:
        self.registered: set[str] = set()
        self.watermarks = watermarks if watermarks is not None else {}

    def register(self, tenant: str) -> None:
        self.registered.add(tenant)

    def exists(self, tenant: str) -> bool:
        return tenant in self.registered

    def all(self) -> list[str]:
        return sorted(self.registered)

    def set_watermark(self, tenant: str, run: str, through: date) -> None:
        self.watermarks[(run, tenant)] = through


def _safe(ref: str) -> str:
    """The ref as the adapter keys (and so returns) it: no key-breaking characters, 200 at most."""
    return re.sub(r"[^A-Za-z0-9._:-]", "_", ref)[:200]


class FakeAttention(Faults):
    def __init__(self, watermarks: dict[tuple[str, str], date] | None = None) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str, int, str], Attention] = {}  # (run, tenant, subscriber, ref)
        self.watermarks = watermarks if watermarks is not None else {}
        self._lock = threading.Lock()

    def run_state(self, tenant: str, run: str) -> RunState:
        rows = {k: a for k, a in self.rows.items() if k[0] == run and k[1] == tenant}
        failed = rows.get((run, tenant, TENANT_RUN, ""))
        return RunState(self.watermarks.get((run, tenant)), frozenset(k[2] for k in rows),
                        failed.first_day if failed else None)

    def record(self, tenant: str, run: str, subscriber_no: int, day: date, reason: str, ref: str = "") -> Attention:
        self.fault("record")
        key = (run, tenant, subscriber_no, _safe(ref))
        with self._lock:
            before = self.rows.get(key)
            row = Attention(run, subscriber_no, key[3], before.first_day if before else day, day, reason,
                            before.count + 1 if before else 1)
            self.rows[key] = row
            return row

    def find(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> Attention | None:
        return self.rows.get((run, tenant, subscriber_no, _safe(ref)))

    def resolve(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> None:
        with self._lock:
            self.rows.pop((run, tenant, subscriber_no, _safe(ref)), None)

    def all(self, tenant: str) -> list[Attention]:
        return [a for k, a in sorted(self.rows.items()) if k[1] == tenant]
