"""Invoice numbers (L1): consecutive per organisation series, no gaps, no duplicates.

Design. Table ``Numbering`` holds one partition per series
(``"{tenant}|{organization}|{series}"``) with a counter row and one *claim* row per
document, keyed by the document's *claim key*: the subscriber's number and the
document's natural key within that subscriber's account
(``"{subscriber_no}.{subscription}.{period}"``, ``"{subscriber_no}.credit.{invoice}"``,
``"{subscriber_no}.additional.{ref}"``, see ``service.unit_of_work.claim_key``). Within one
account a natural key names one document for ever (a subscription id is unique in its
account, a period is invoiced once, an invoice is credited once), and the series
partition names the organisation, so organisation + subscriber + natural key names
exactly one document: no input can make two documents share a claim, and so a number.
(The demand number would do too, but it is not stable: a retry that reloads an account
changed meanwhile can get another demand number for the same period; the natural key
stays, so a retry finds its claim.)

Claiming numbers for a batch of documents is one entity-group transaction in that
partition: replace the counter (``If-Match`` its ETag; it holds ``Next`` and the
``Free`` list) and insert the claim rows, taking released numbers from ``Free`` first
(lowest first), then consecutive numbers from ``Next``. Either all of it happens or none:

* two workers claiming at once: one transaction wins, the other fails its ETag check,
  re-reads the counter and claims after it; numbers never repeat;
* two workers claiming *the same document* (two invoice runs racing for one
  subscriber): the loser's insert of the existing claim fails, it reads the claim and
  uses the same number; the subscriber partition's own ETag then lets exactly one of
  them write the document, so the number is used once;
* a worker that fails or dies after claiming and before its commit: the retry (a
  conflict reload, a redelivered bus message, the client posting the order again)
  computes the same claim key, finds its claim and uses that number.

Numbers never used are released and reused. The service tracks the claims of one
operation (``service.unit_of_work.Claims``); when it ends, any claim its commits did not
carry (the transaction failed for good: a value too large for a property, a bad date;
or the account changed so that the document is no longer due) is released:

1. ``void``: the claim row is marked void (``If-Match``). From then on no claimer is
   handed its number: a claimer that meets a void claim waits for the release to end
   (restored: it uses that number; freed: it claims again, the free number first), and
   replaces it with a new number only if it stays void ``RELEASE_WAIT_S`` (a releaser that died).
2. *fence*: the subscriber row is touched under its ETag (``AccountRepository.fence``).
   Every operation loads the partition *before* it claims and commits under that
   load's ETag, so anyone who could still hold the old number fails its commit,
   reloads and claims again. (A subscriber with no row yet has no documents; the only
   other holder of its claim keys is a repeat of the same order, bound to the same
   content by its reference, whose transaction is the same and fails the same way.)
3. *verify*: the subscriber's documents are read; a number a document carries (a racer
   committed it before the fence) is restored, never freed.
4. ``free``: the number goes onto the counter's ``Free`` list (or, if it is the last one
   handed out, the counter steps back) and the void claim row is deleted, in one
   transaction; the next claim in the series takes it first. So at every moment the
   issued numbers and the free list together are exactly ``1 .. Next - 1``.

A process that dies between the claim and the commit, and whose work is never retried,
leaves a claim without a document; ``service.unit_of_work.release_unissued`` (the auditor's
sweep, an admin scan: ``POST /api/merchant/invoice-numbers/sweep``) finds claims older
than an hour that no document carries and releases them the same way, so the series is
gapless once the sweep has run. (The hour: no commit is in flight that long, which
matters for a subscriber whose partition the claim's own order has yet to create.)

The counter's value and ETag are cached per process, so an uncontended claim costs one
round trip, amortised over every invoice of a worker's batch. Within a process, claims
are *group-committed*: while one transaction is in flight, further claimers wait, and
the next transaction claims for all of them at once (up to 99 documents), so many
concurrent orders share a round trip instead of queueing for one each.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from azure.core import MatchConditions

from ..ports import ConcurrencyConflict, NumberClaim
from .tables import MAX_BATCH, Operation, Storage

TABLE = "Numbering"
MAX_ATTEMPTS = 50
RELEASE_WAIT_S = 5.0  # a claim void this long: its releaser died; a claimer replaces it
RELEASE_POLL_S = 0.02
VOID = "void"
IF_MATCH = MatchConditions.IfNotModified


def series_key(tenant: str, organization_id: str, series: str) -> str:
    return f"{tenant}|{organization_id}|{series}"


@dataclass(frozen=True)
class CounterState:
    next: int
    free: tuple[int, ...]  # released numbers, lowest first: claimed before ``next``
    etag: str


class Counter:
    """A counter row advanced under ``If-Match``; its value and ETag are cached per process."""

    def __init__(self, storage: Storage, first: int) -> None:
        self.storage = storage
        self.first = first
        self._cache: dict[str, CounterState] = {}

    def current(self, pk: str) -> CounterState:
        return self._cache.get(pk) or self._read(pk)

    def forget(self, pk: str) -> None:
        self._cache.pop(pk, None)

    def _read(self, pk: str) -> CounterState:
        row = self.storage.get(TABLE, pk, "counter")
        if row is None:
            self.storage.insert(TABLE, {"PartitionKey": pk, "RowKey": "counter", "Next": self.first})
            row = self.storage.get(TABLE, pk, "counter")
            assert row is not None
        return CounterState(int(row["Next"]), tuple(sorted(json.loads(row.get("Free") or "[]"))), str(row["etag"]))

    def advance(self, pk: str, state: CounterState, to: int, free: Sequence[int] = (),
                with_ops: Sequence[Operation] = ()) -> None:
        """Set the counter to ``to`` with ``free`` released numbers and apply ``with_ops``, atomically."""
        row = {"PartitionKey": pk, "RowKey": "counter", "Next": to, "Free": json.dumps(sorted(free))}
        ops: list[Operation] = [("update", row, {"mode": "replace", "etag": state.etag, "match_condition": IF_MATCH})]
        try:
            results = self.storage.transact(TABLE, [*ops, *with_ops])
        except ConcurrencyConflict:
            self.forget(pk)
            raise
        self._cache[pk] = CounterState(to, tuple(sorted(free)), results[0]["etag"])


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



Claim = NumberClaim  # the name the release steps use


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
        """Numbers for ``keys`` (claim keys of documents), existing claims reused."""
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
        void: dict[str, str] = {}  # claim key -> ETag of its void claim row, to be replaced
        met: dict[str, float] = {}  # claim key -> when we first met its claim void (a release under way)
        attempt = 0
        while attempt < MAX_ATTEMPTS:
            todo = [k for k in keys if k not in found]
            if not todo:
                return found
            state = self.counter.current(pk)
            reused = state.free[: len(todo)]
            fresh = len(todo) - len(reused)
            numbers = dict(zip(todo, [*reused, *range(state.next, state.next + fresh)], strict=True))
            try:
                self.counter.advance(pk, state, state.next + fresh, state.free[len(reused):],
                                     [self._claim_op(pk, k, n, void.get(k)) for k, n in numbers.items()])
            except ConcurrencyConflict:
                if self._met_release(pk, todo, found, void, met):
                    time.sleep(RELEASE_POLL_S)  # not an attempt: the release ends by restoring or freeing
                    continue
                _backoff(attempt)
                attempt += 1
                continue
            return found | numbers
        raise ConcurrencyConflict(f"could not claim invoice numbers in {pk} after {MAX_ATTEMPTS} attempts")

    def _met_release(self, pk: str, todo: list[str], found: dict[str, int], void: dict[str, str],
                     met: dict[str, float]) -> bool:
        """After a refused claim: note the claims others hold (``found``). A void claim is a
        release under way (void -> fence -> verify -> restore or free): its number is not
        ours to replace yet, for the release may still restore it (a document carries it)
        or free it (then we take it from the free list). A fresh number now would be one
        more to release, and so a hole below the numbers claimed meanwhile. Only a void that
        outlasts ``RELEASE_WAIT_S`` (a releaser that died) is replaced. True: wait for one."""
        now, waiting = time.monotonic(), False
        for key, claim in self.read_claims(pk, todo).items():
            if not claim.void:
                found[key] = claim.number
            elif now - met.setdefault(key, now) >= RELEASE_WAIT_S:
                void[key] = claim.etag
            else:
                waiting = True
        return waiting

    @staticmethod
    def _claim_op(pk: str, key: str, number: int, void_etag: str | None) -> Operation:
        row = {"PartitionKey": pk, "RowKey": f"claim|{key}", "Number": number, "Claimed": int(time.time())}
        if void_etag is None:
            return ("create", row)
        return ("update", row, {"mode": "replace", "etag": void_etag, "match_condition": IF_MATCH})

    def read_claims(self, pk: str, keys: Sequence[str]) -> dict[str, Claim]:
        found = {}
        for key in keys:
            row = self.storage.get(TABLE, pk, f"claim|{key}")
            if row is not None:
                found[key] = Claim(int(row["Number"]), row.get("State") == VOID, str(row["etag"]))
        return found

    def claims(self, pk: str, older_than: float | None = None) -> dict[str, int]:
        """Every live claim of the series: claim key -> number (an admin scan); with
        ``older_than`` (seconds since the epoch) only those claimed before then."""
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge 'claim|' and RowKey lt 'claim}'",
                                  {"pk": pk})
        return {r["RowKey"][len("claim|"):]: int(r["Number"]) for r in rows if r.get("State") != VOID
                and (older_than is None or int(r.get("Claimed") or 0) < older_than)}

    def stale_voids(self, pk: str, older_than: float) -> dict[str, Claim]:
        """Void claims whose release was cut short (voided before ``older_than``, seconds
        since the epoch, and never freed): their number is on no free list and handed to no
        one, so the sweep finishes their release (an admin scan)."""
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge 'claim|' and RowKey lt 'claim}'",
                                  {"pk": pk})
        return {r["RowKey"][len("claim|"):]: Claim(int(r["Number"]), True, str(r["etag"])) for r in rows
                if r.get("State") == VOID and int(r.get("Voided") or r.get("Claimed") or 0) < older_than}

    def unissued(self, pk: str, issued: set[int]) -> dict[str, int]:
        """Claims whose number no document carries: what the sweep releases."""
        return {k: n for k, n in self.claims(pk).items() if n not in issued}

    def free_numbers(self, pk: str) -> tuple[int, ...]:
        self.counter.forget(pk)
        return self.counter.current(pk).free

    # Release (see the module docstring): void -> fence (the caller) -> verify (the caller) -> free.

    def void(self, pk: str, held: Mapping[str, int]) -> dict[str, Claim]:
        """Mark the claims ``held`` (claim key -> number) void, where they still hold that
        number; returns the voided claims with their new ETags."""
        voided: dict[str, Claim] = {}
        for key, claim in self.read_claims(pk, list(held)).items():
            if claim.void or claim.number != held[key]:
                continue
            row = {"PartitionKey": pk, "RowKey": f"claim|{key}", "State": VOID, "Voided": int(time.time())}
            try:
                (result,) = self.storage.transact(TABLE, [("update", row, {"mode": "merge", "etag": claim.etag,
                                                                           "match_condition": IF_MATCH})])
            except ConcurrencyConflict:
                continue  # changed under us: someone else is releasing or replaced it
            voided[key] = Claim(claim.number, True, str(result["etag"]))
        return voided

    def restore(self, pk: str, voided: Mapping[str, Claim]) -> None:
        """Undo ``void`` for claims whose number a document carries after all, or may still
        (a commit in doubt: the sweep's hour of grace starts again)."""
        for key, claim in voided.items():
            row = {"PartitionKey": pk, "RowKey": f"claim|{key}", "Number": claim.number, "Claimed": int(time.time())}
            try:
                self.storage.transact(TABLE, [("update", row, {"mode": "replace", "etag": claim.etag,
                                                               "match_condition": IF_MATCH})])
            except ConcurrencyConflict:
                pass  # a claimer replaced the void claim: its new number is its own to use or release

    def free(self, pk: str, voided: Mapping[str, Claim]) -> None:
        """Put the numbers of ``voided`` claims (verified unused) on the free list and delete
        the claim rows that are still as voided, in one transaction. A row a claimer has
        replaced meanwhile holds a new number of its own and is left alone."""
        numbers = {c.number for c in voided.values()}
        deletable = dict(voided)
        for attempt in range(MAX_ATTEMPTS):
            state = self.counter.current(pk)
            deletes: list[Operation] = [("delete", {"PartitionKey": pk, "RowKey": f"claim|{k}"},
                                         {"etag": c.etag, "match_condition": IF_MATCH}) for k, c in deletable.items()]
            free, top = {*state.free, *numbers}, state.next
            while top - 1 in free:  # released numbers at the top: the counter steps back instead
                top -= 1
                free.discard(top)
            try:
                self.counter.advance(pk, state, top, sorted(free), deletes)
                return
            except ConcurrencyConflict:
                now = self.read_claims(pk, list(deletable))
                numbers -= {c.number for k, c in deletable.items() if k not in now}  # freed by someone else
                deletable = {k: c for k, c in deletable.items() if k in now and now[k].etag == c.etag}
                _backoff(attempt)
        raise ConcurrencyConflict(f"could not release invoice numbers in {pk}")


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
            state = self.counter.current(pk)
            try:
                self.counter.advance(pk, state, state.next + self.block)
            except ConcurrencyConflict:
                _backoff(attempt)
                continue
            return list(range(state.next, state.next + self.block))
        raise ConcurrencyConflict(f"could not reserve subscriber numbers in {pk}")
