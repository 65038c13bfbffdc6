"""Invoice numbers (L1): consecutive per organisation series, no gaps, no duplicates.

Design. Table ``Numbering`` holds one partition per series
(``"{tenant}|{organization}|{series}"``) with a counter row and one *claim* row per
demand, keyed by the demand's natural key (``"{subscription}.{period}"``): one
subscription period is invoiced once, so it owns one number for ever.

Claiming numbers for a batch of demands is one entity-group transaction in that
partition: replace the counter (``If-Match`` its ETag) and insert the claim rows with
the next consecutive numbers. Either all of it happens or none:

* two workers claiming at once: one transaction wins, the other fails its ETag check,
  re-reads the counter and claims after it; numbers never repeat;
* two workers claiming *the same demand* (two invoice runs racing for one
  subscriber): the loser's insert of the existing claim fails, it reads the claim and
  uses the same number; the subscriber partition's own ETag then lets exactly one of
  them write the invoice, so the number is used once;
* a worker that dies after claiming and before writing the invoice: the retry computes
  the same demand, finds its claim and uses that number; no gap.

A gap can only stay where a demand is claimed and then no longer issued at all (its
subscription was changed between the claim and the commit, a window of milliseconds);
``unissued`` lists such claims for the auditor. The counter's value and ETag are
cached per process, so an uncontended claim costs one round trip, amortised over every
invoice of a worker's batch. Within a process, claims are *group-committed*: while one
transaction is in flight, further claimers wait, and the next transaction claims for
all of them at once (up to 99 demands), so many concurrent orders share a round trip
instead of queueing for one each.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions

from .tables import MAX_BATCH, ConcurrencyConflict, Operation, Storage

TABLE = "Numbering"
MAX_ATTEMPTS = 50


def series_key(tenant: str, organization_id: str, series: str) -> str:
    return f"{tenant}|{organization_id}|{series}"


class Counter:
    """A counter row advanced under ``If-Match``; its value and ETag are cached per process."""

    def __init__(self, storage: Storage, first: int) -> None:
        self.storage = storage
        self.first = first
        self._cache: dict[str, tuple[int, str]] = {}

    def current(self, pk: str) -> tuple[int, str]:
        return self._cache.get(pk) or self._read(pk)

    def _read(self, pk: str) -> tuple[int, str]:
        row = self.storage.get(TABLE, pk, "counter")
        if row is None:
            self.storage.insert(TABLE, {"PartitionKey": pk, "RowKey": "counter", "Next": self.first})
            row = self.storage.get(TABLE, pk, "counter")
            assert row is not None
        return int(row["Next"]), str(row["etag"])

    def advance(self, pk: str, value: int, etag: str, by: int, with_rows: Sequence[dict[str, Any]] = ()) -> None:
        """Move the counter from ``value`` to ``value + by`` and write ``with_rows``, atomically."""
        ops: list[Operation] = [("update", {"PartitionKey": pk, "RowKey": "counter", "Next": value + by},
                                 {"mode": "replace", "etag": etag, "match_condition": MatchConditions.IfNotModified})]
        ops += [("create", {"PartitionKey": pk, **row}) for row in with_rows]
        try:
            results = self.storage.transact(TABLE, ops)
        except ConcurrencyConflict:
            self._cache.pop(pk, None)
            raise
        self._cache[pk] = (value + by, results[0]["etag"])


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.002 * attempt))


class _Request:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.result: dict[str, int] | None = None
        self.error: BaseException | None = None


class _Series:
    """The claimers of one series in this process: one transaction in flight at a time."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.waiting: list[_Request] = []
        self.busy = False


class InvoiceNumbers:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.counter = Counter(storage, first=1)
        self._series: dict[str, _Series] = {}
        self._guard = threading.Lock()

    def _of(self, pk: str) -> _Series:
        with self._guard:
            return self._series.setdefault(pk, _Series())

    def claim(self, pk: str, keys: Sequence[str]) -> dict[str, int]:
        """Numbers for ``keys`` (natural keys of demands), existing claims reused."""
        request, series = _Request(list(dict.fromkeys(keys))), self._of(pk)
        with series.cond:
            series.waiting.append(request)
            while request.result is None and request.error is None:
                if series.busy:
                    series.cond.wait()
                    continue
                series.busy, group, series.waiting = True, series.waiting, []
                series.cond.release()
                try:
                    self._claim_group(pk, group)
                finally:
                    series.cond.acquire()
                    series.busy = False
                    series.cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _claim_group(self, pk: str, group: list[_Request]) -> None:
        try:
            keys = list(dict.fromkeys(k for r in group for k in r.keys))
            numbers: dict[str, int] = {}
            for start in range(0, len(keys), MAX_BATCH - 1):
                numbers |= self._claim_chunk(pk, keys[start : start + MAX_BATCH - 1])
            for r in group:
                r.result = {k: numbers[k] for k in r.keys}
        except BaseException as exc:  # every waiter of the group learns of the failure
            for r in group:
                r.error = exc

    def _claim_chunk(self, pk: str, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for attempt in range(MAX_ATTEMPTS):
            todo = [k for k in keys if k not in found]
            if not todo:
                return found
            nxt, etag = self.counter.current(pk)
            numbers = {k: nxt + i for i, k in enumerate(todo)}
            try:
                self.counter.advance(pk, nxt, etag, len(todo),
                                     [{"RowKey": f"claim|{k}", "Number": n} for k, n in numbers.items()])
            except ConcurrencyConflict:
                found |= self._existing_claims(pk, todo)
                _backoff(attempt)
                continue
            return found | numbers
        raise ConcurrencyConflict(f"could not claim invoice numbers in {pk} after {MAX_ATTEMPTS} attempts")

    def _existing_claims(self, pk: str, keys: list[str]) -> dict[str, int]:
        found = {}
        for key in keys:
            row = self.storage.get(TABLE, pk, f"claim|{key}")
            if row is not None:
                found[key] = int(row["Number"])
        return found

    def claims(self, pk: str) -> dict[str, int]:
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge 'claim|' and RowKey lt 'claim}'",
                                  {"pk": pk})
        return {r["RowKey"][len("claim|"):]: int(r["Number"]) for r in rows}

    def unissued(self, pk: str, issued: set[int]) -> dict[str, int]:
        """Claims whose number no invoice carries: the only possible gaps, for audit."""
        return {k: n for k, n in self.claims(pk).items() if n not in issued}


class SubscriberNumbers:
    """Customer numbers: unique and increasing, gaps allowed; reserved in blocks per process."""

    def __init__(self, storage: Storage, block: int = 50, first: int = 1000) -> None:
        self.counter = Counter(storage, first=first)
        self.block = block
        self._free: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def next(self, tenant: str) -> int:
        with self._lock:
            free = self._free.setdefault(tenant, [])
            if not free:
                free.extend(self._reserve(f"{tenant}|subscribers"))
            return free.pop(0)

    def _reserve(self, pk: str) -> list[int]:
        for attempt in range(MAX_ATTEMPTS):
            value, etag = self.counter.current(pk)
            try:
                self.counter.advance(pk, value, etag, self.block)
            except ConcurrencyConflict:
                _backoff(attempt)
                continue
            return list(range(value, value + self.block))
        raise ConcurrencyConflict(f"could not reserve subscriber numbers in {pk}")
