"""An in-memory ``Accounts``: subscriber partitions as Python objects, with what the Table
adapter promises and nothing more (the contract tests hold both to the same assertions).

* ``load`` gives a version tag (``etag``); ``commit`` under an older tag, or creating a
  subscriber that exists, raises ``ConcurrencyConflict``, as an ETag mismatch does on
  Azurite. So does creating a document, ledger entry, payment or outbox message twice.
* ``commit`` counts the rows the adapter would write and refuses more than one
  transaction holds (``TooManyEntities``) before changing anything; it clears the
  outbox messages found at load as far as the room left allows, as the adapter does.
* What is stored is a deep copy: a caller that keeps a reference cannot change it, as
  it cannot change a row it serialised.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.adapters.accounts import head_events
from shared.domain.account import Account, Changes, ReminderDocument
from shared.domain.events import Event
from shared.domain.invoicing import CreditNote, Invoice
from shared.domain.ledger import LedgerEntry
from shared.domain.payments import BookedPayment, row_id
from shared.domain.placement import BUCKETS
from shared.domain.subscriptions import Subscription
from shared.ports import ConcurrencyConflict, History, Loaded, TooManyEntities, with_documents

from .faults import Faults

MAX_BATCH = 100  # rows one entity-group transaction holds
KEYED = ("open_demands", "mandates", "order_blocks")  # account items stored a row per key
ORDERED = ("corrections", "balance_checks")  # account items stored a row each, in order
_tags = itertools.count(1)


@dataclass
class Partition:
    account: Account
    etag: str
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    outbox: dict[str, Event] = field(default_factory=dict)
    out_rows: set[str] = field(default_factory=set)  # outbox events in rows of their own (not the subscriber row)
    invoices: dict[int, Invoice] = field(default_factory=dict)  # demand no ->
    ledger: dict[int, LedgerEntry] = field(default_factory=dict)  # seq ->
    payments: dict[str, BookedPayment] = field(default_factory=dict)  # row id ->
    reminders: dict[int, ReminderDocument] = field(default_factory=dict)  # demand no ->
    credit_notes: dict[int, CreditNote] = field(default_factory=dict)  # number ->


def _tag() -> str:
    return f'W/"fake-{next(_tags)}"'


def _kept_in_order(before: Sequence[Any], after: Sequence[Any]) -> int:
    """How many of ``after`` keep the row they are stored in (the adapter's rule: items
    matched in order keep their rows; the rest are deleted and created)."""
    i = j = 0
    while i < len(before) and j < len(after):
        if before[i] == after[j]:
            j += 1
        i += 1
    return j


def item_writes(before: Account | None, after: Account) -> int:
    """Rows of account items (open demands, mandates, blocks, corrections, balance checks)
    a commit creates, replaces or deletes."""
    n = 0
    for name in KEYED:
        old: Mapping[Any, Any] = getattr(before, name) if before else {}
        new: Mapping[Any, Any] = getattr(after, name)
        n += sum(1 for k, v in new.items() if k not in old or old[k] != v) + sum(1 for k in old if k not in new)
    for name in ORDERED:
        old_items: Sequence[Any] = getattr(before, name) if before else ()
        new_items: Sequence[Any] = getattr(after, name)
        kept = _kept_in_order(old_items, new_items)
        n += (len(old_items) - kept) + (len(new_items) - kept)
    return n


class FakeAccounts(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.commits = 0  # transactions that went through (what a round-trip count would see)
        self.queries = 0  # bucket reads of ``load_many``
        self.layout = BUCKETS
        self._lock = threading.Lock()

    def load(self, tenant: str, subscriber_no: int) -> Loaded | None:
        self.fault("load", tenant, subscriber_no)
        with self._lock:
            p = self.partitions.get((tenant, subscriber_no))
            if p is None:
                return None
            account = replace(p.account, subscriptions=dict(p.subscriptions), credited=())
            return copy.deepcopy(Loaded(account, p.etag, sorted(p.outbox.values(), key=lambda e: e.id)))

    def commit(self, tenant: str, loaded: Loaded | None, changes: Changes) -> Loaded:
        self.fault("commit", tenant, changes.account.number)
        changes = copy.deepcopy(changes)
        key = (tenant, changes.account.number)
        with self._lock:
            p = self.partitions.get(key)
            new = loaded is None or loaded.etag is None
            again = {e.id for e in changes.events}
            _, overflow = head_events(changes.events)  # the rest ride in the subscriber row, as the adapter keeps them
            in_rows = set() if p is None else p.out_rows
            sent = [] if new or loaded is None else [e for e in loaded.outbox if e.id not in again]
            rows = (1 + item_writes(None if new or loaded is None else loaded.account, changes.account)
                    + len(changes.subscriptions) + len(changes.invoices) + len(changes.ledger) + len(overflow)
                    + len(changes.payments) + len(changes.reminders) + len(changes.credit_notes))
            if rows > MAX_BATCH:
                raise TooManyEntities(f"subscriber {changes.account.number}: this operation writes {rows} rows, "
                                      f"more than one transaction holds ({MAX_BATCH}); do it in smaller parts")
            if new and p is not None:
                raise ConcurrencyConflict("EntityAlreadyExists")
            if not new and (p is None or loaded is None or p.etag != loaded.etag):
                raise ConcurrencyConflict("UpdateConditionNotSatisfied")
            target = p or Partition(changes.account, "")
            self._refuse_duplicates(target, changes)
            room = max(0, MAX_BATCH - rows)
            sent_rows = [e for e in sent if e.id in in_rows]  # those in the subscriber row go with it
            for e in [e for e in sent if e.id not in in_rows] + sent_rows[:room]:
                target.outbox.pop(e.id, None)
                target.out_rows.discard(e.id)
            target.out_rows |= {e.id for e in overflow}
            target.account = replace(changes.account, subscriptions={}, credited=())
            target.etag = _tag()
            target.subscriptions |= {s.id: s for s in changes.subscriptions}
            target.outbox |= {e.id: e for e in changes.events}
            target.invoices |= {i.demand_no: i for i in changes.invoices}
            target.ledger |= {e.seq: e for e in changes.ledger}
            target.payments |= {row_id(b.payment): b for b in changes.payments}
            target.reminders |= {r.reminder.demand_no: r for r in changes.reminders}
            target.credit_notes |= {c.number: c for c in changes.credit_notes}
            self.partitions[key] = target
            self.commits += 1
            account = replace(changes.account, credited=()) if changes.account.credited else changes.account
            return Loaded(account, target.etag, [*sent_rows[room:], *changes.events])

    @staticmethod
    def _refuse_duplicates(p: Partition, changes: Changes) -> None:
        """A row created twice fails the whole transaction (the adapter creates these)."""
        clashes = ([i.demand_no for i in changes.invoices if i.demand_no in p.invoices]
                   + [e.seq for e in changes.ledger if e.seq in p.ledger]
                   + [e.id for e in changes.events if e.id in p.outbox]
                   + [row_id(b.payment) for b in changes.payments if row_id(b.payment) in p.payments]
                   + [r.reminder.demand_no for r in changes.reminders if r.reminder.demand_no in p.reminders]
                   + [c.number for c in changes.credit_notes if c.number in p.credit_notes])
        if clashes:
            raise ConcurrencyConflict(f"EntityAlreadyExists: {clashes[0]}")

    def partition_of(self, tenant: str, subscriber_no: int) -> str:
        if not self.layout.bucketed:  # layout 2: a partition per subscriber, as the adapter says
            return f"{tenant}|{subscriber_no}"
        return f"{tenant}||{self.layout.bucket(subscriber_no)}"

    def load_many(self, tenant: str, subscriber_nos: Sequence[int]) -> dict[int, Loaded]:
        """One "query" per bucket (``queries`` counts them), as the adapter reads a bucket's hot rows."""
        self.queries += len({self.partition_of(tenant, n) for n in subscriber_nos})
        return {n: loaded for n in dict.fromkeys(subscriber_nos) if (loaded := self.load(tenant, n)) is not None}

    def commit_many(self, tenant: str, items: Sequence[tuple[Loaded | None, Changes]]) -> list[Loaded | Exception]:
        return commit_each(self, tenant, items)

    def history(self, tenant: str, subscriber_no: int) -> tuple[list[Invoice], list[LedgerEntry]]:
        documents = self.documents(tenant, subscriber_no)
        return documents.invoices, documents.ledger

    def documents(self, tenant: str, subscriber_no: int) -> History:
        self.fault("documents", tenant, subscriber_no)
        with self._lock:
            p = self.partitions.get((tenant, subscriber_no))
            if p is None:
                return History([], [], [], [])
            return copy.deepcopy(_history(p))

    def reminder(self, tenant: str, subscriber_no: int, demand_no: int) -> ReminderDocument | None:
        p = self.partitions.get((tenant, subscriber_no))
        return copy.deepcopy(p.reminders.get(demand_no)) if p else None

    def booked(self, tenant: str, subscriber_no: int, payment_ids: list[str]) -> set[str]:
        p = self.partitions.get((tenant, subscriber_no))
        return {i for i in payment_ids if p is not None and i in p.payments}

    def payments(self, tenant: str, subscriber_no: int) -> list[BookedPayment]:
        p = self.partitions.get((tenant, subscriber_no))
        return copy.deepcopy([b for _k, b in sorted(p.payments.items())]) if p else []

    def invoice(self, tenant: str, subscriber_no: int, demand_no: int) -> Invoice | None:
        self.fault("invoice", tenant, subscriber_no)
        p = self.partitions.get((tenant, subscriber_no))
        return copy.deepcopy(p.invoices.get(demand_no)) if p else None

    def load_with_invoice(self, tenant: str, subscriber_no: int, demand_no: int
                          ) -> tuple[Loaded | None, Invoice | None]:
        return self.load(tenant, subscriber_no), self.invoice(tenant, subscriber_no, demand_no)

    def fence(self, tenant: str, subscriber_no: int) -> bool:
        self.fault("fence", tenant, subscriber_no)
        with self._lock:
            p = self.partitions.get((tenant, subscriber_no))
            if p is None:
                return False
            p.etag = _tag()
            return True

    def scan_tenant(self, tenant: str) -> Iterator[tuple[Loaded, History]]:
        """Every subscriber of the tenant with its documents (in subscriber order; the
        adapter's order is its partition keys', which no caller relies on)."""
        for (t, number) in sorted(k for k in list(self.partitions) if k[0] == tenant):
            loaded = self.load(t, number)
            assert loaded is not None
            history = self.documents(t, number)
            yield with_documents(loaded, history), history


def commit_each(accounts: Any, tenant: str, items: Sequence[tuple[Loaded | None, Changes]]
                ) -> list[Loaded | Exception]:
    """``commit_many`` as ``accounts.commit`` for each item, its failure its own (what the
    adapter promises): for the fake, and for a test's wrapper that injects faults at ``commit``."""
    answers: list[Loaded | Exception] = []
    for loaded, changes in items:
        try:
            answers.append(accounts.commit(tenant, loaded, changes))
        except Exception as exc:  # ConcurrencyConflict, TooManyEntities, an injected fault
            answers.append(exc)
    return answers


def _history(p: Partition) -> History:
    def ordered(items: Mapping[Any, Any]) -> list[Any]:
        return [v for _k, v in sorted(items.items())]

    return History(ordered(p.invoices), ordered(p.ledger), ordered(p.reminders), ordered(p.credit_notes))
