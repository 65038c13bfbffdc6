"""The subscriber partition in Table Storage: load an ``Account``, commit ``Changes``.

Layout of table ``Subscribers``, one partition per subscriber
(``PartitionKey = "{tenant}|{spread}|{subscriber_no}"``; the two hex digits of
``spread`` keep consecutive subscriber numbers in different key ranges so that a burst
of new subscribers does not append to one range server):

| RowKey                 | what                                                   |
|------------------------|--------------------------------------------------------|
| ``0|subscriber``       | profile, balances per organisation, counters; its ETag |
|                        | guards the whole partition (optimistic concurrency)    |
| ``0|sub|{id}``         | a subscription                                         |
| ``0|out|{event id}``   | outbox message not yet known to be delivered           |
| ``1|inv|{demand no}``  | an issued invoice (never changed)                      |
| ``1|rem|{demand no}``  | a reminder (a demand of its own, for its invoice)      |
| ``1|crn|{number}``     | a credit note                                          |
| ``1|led|{seq}``        | a ledger entry (never changed)                         |

``load`` reads the ``0|`` rows only (one round trip, however long the history);
``commit`` writes everything in one entity-group transaction, replacing the
subscriber row under ``If-Match`` so a concurrent writer fails with
``ConcurrencyConflict`` instead of losing an update.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azure.core import MatchConditions

from ..domain.account import Account, BalanceCheck, Changes, Correction, Event, Mandate, OrderBlock, ReminderDocument
from ..domain.invoicing import CreditNote, Invoice
from ..domain.ledger import LedgerEntry
from ..domain.settlement import OpenDemand
from ..domain.subscriptions import Subscriber, Subscription
from .codec import dumps, loads
from .tables import Operation, Storage, prefix_filter

TABLE = "Subscribers"
T = TypeVar("T")


def partition_key(tenant: str, subscriber_no: int) -> str:
    spread = zlib.crc32(str(subscriber_no).encode()) & 0xFF
    return f"{tenant}|{spread:02x}|{subscriber_no:010d}"


@dataclass
class Loaded:
    account: Account
    etag: str | None  # None: the subscriber is new and not stored yet
    outbox: list[Event] = field(default_factory=list)


def _account_row(account: Account) -> dict[str, Any]:
    return {"Subscriber": dumps(account.subscriber), "Balances": json.dumps(dict(account.balances)),
            "NextDemandNo": account.next_demand_no, "NextLedgerSeq": account.next_ledger_seq,
            "OpenDemands": dumps(list(account.open_demands.values()), list[OpenDemand]),
            "Mandates": dumps(dict(account.mandates), dict[str, Mandate]),
            "Corrections": dumps(account.corrections, tuple[Correction, ...]),
            "Credited": json.dumps(list(account.credited)),
            "BalanceChecks": dumps(account.balance_checks, tuple[BalanceCheck, ...]),
            "OrderBlocks": dumps(dict(account.order_blocks), dict[str, OrderBlock]),
            "Name": account.subscriber.name, "Email": account.subscriber.email}


def _build(rows: list[dict[str, Any]]) -> Loaded | None:
    head = next((r for r in rows if r["RowKey"] == "0|subscriber"), None)
    if head is None:
        return None
    subs = {s.id: s for s in (loads(Subscription, r["Body"]) for r in rows if r["RowKey"].startswith("0|sub|"))}
    outbox = [loads(Event, r["Body"]) for r in rows if r["RowKey"].startswith("0|out|")]
    open_demands = loads(list[OpenDemand], head.get("OpenDemands") or "[]")
    account = Account(loads(Subscriber, head["Subscriber"]), subs, json.loads(head["Balances"]),
                      head["NextDemandNo"], head["NextLedgerSeq"], {d.demand_no: d for d in open_demands},
                      loads(dict[str, Mandate], head.get("Mandates") or "{}"),
                      loads(tuple[Correction, ...], head.get("Corrections") or "[]"),
                      tuple(json.loads(head.get("Credited") or "[]")),
                      loads(tuple[BalanceCheck, ...], head.get("BalanceChecks") or "[]"),
                      loads(dict[str, OrderBlock], head.get("OrderBlocks") or "{}"))
    return Loaded(account, head["etag"], outbox)


class AccountRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def load(self, tenant: str, subscriber_no: int) -> Loaded | None:
        pk = partition_key(tenant, subscriber_no)
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk and RowKey lt '1'", {"pk": pk}))
        return _build(rows)

    def commit(self, tenant: str, loaded: Loaded | None, changes: Changes) -> None:
        """Write ``changes`` atomically; the outbox rows already loaded are cleared."""
        pk = partition_key(tenant, changes.account.number)
        head = {"PartitionKey": pk, "RowKey": "0|subscriber", **_account_row(changes.account)}
        ops: list[Operation] = []
        if loaded is None or loaded.etag is None:
            ops.append(("create", head))
        else:
            ops.append(("update", head, {"mode": "replace", "etag": loaded.etag,
                                         "match_condition": MatchConditions.IfNotModified}))
            again = {e.id for e in changes.events}  # an event raised again is not deleted: its create then
            ops += [("delete", {"PartitionKey": pk, "RowKey": f"0|out|{e.id}"})  # conflicts, as a repeat should
                    for e in loaded.outbox if e.id not in again]
        ops += [("upsert", {"PartitionKey": pk, "RowKey": f"0|sub|{s.id}", "Body": dumps(s)})
                for s in changes.subscriptions]
        ops += [("create", _invoice_row(pk, inv)) for inv in changes.invoices]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|led|{e.seq:08d}", "Body": dumps(e),
                            "Amount": e.amount_minor, "Org": e.organization_id}) for e in changes.ledger]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"0|out|{e.id}", "Body": dumps(e)})
                for e in changes.events]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|pay|{b.payment.id}", "Body": dumps(b),
                            "Amount": b.payment.amount_minor, "Org": b.payment.organization_id})
                for b in changes.payments]  # create: the same payment can never be booked twice
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|rem|{r.reminder.demand_no:08d}", "Body": dumps(r),
                            "Amount": r.reminder.amount_minor, "Kid": r.reminder.kid, "Org": r.organization_id})
                for r in changes.reminders]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|crn|{c.number:010d}", "Body": dumps(c),
                            "Amount": c.total_minor, "Org": c.organization_id}) for c in changes.credit_notes]
        self.storage.transact(TABLE, ops)

    def history(self, tenant: str, subscriber_no: int) -> tuple[list[Invoice], list[LedgerEntry]]:
        documents = self.documents(tenant, subscriber_no)
        return documents.invoices, documents.ledger

    def documents(self, tenant: str, subscriber_no: int) -> History:
        """Everything issued to the subscriber: invoices, reminders, credit notes, ledger."""
        pk = partition_key(tenant, subscriber_no)
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk and RowKey gt '1'", {"pk": pk}))
        return _documents(rows)

    def reminder(self, tenant: str, subscriber_no: int, demand_no: int) -> ReminderDocument | None:
        row = self.storage.get(TABLE, partition_key(tenant, subscriber_no), f"1|rem|{demand_no:08d}")
        return loads(ReminderDocument, row["Body"]) if row else None

    def booked(self, tenant: str, subscriber_no: int, payment_ids: list[str]) -> set[str]:
        """Which of these payments are already on the subscriber's ledger (point reads)."""
        pk = partition_key(tenant, subscriber_no)
        return {i for i in payment_ids if self.storage.get(TABLE, pk, f"1|pay|{i}") is not None}

    def invoice(self, tenant: str, subscriber_no: int, demand_no: int) -> Invoice | None:
        """One invoice by its demand number (what a KID decodes to): a point read."""
        row = self.storage.get(TABLE, partition_key(tenant, subscriber_no), f"1|inv|{demand_no:08d}")
        return loads(Invoice, row["Body"]) if row else None

    def scan_tenant(self, tenant: str) -> Iterator[tuple[Loaded, History]]:
        """Every subscriber of a tenant with history: for reports and search, never a hot path."""
        query, params = prefix_filter(f"{tenant}|")
        current: list[dict[str, Any]] = []
        for row in self.storage.query(TABLE, query, params):
            if current and row["PartitionKey"] != current[0]["PartitionKey"]:
                yield _full(current)
                current = []
            current.append(row)
        if current:
            yield _full(current)


def _invoice_row(pk: str, invoice: Invoice) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": f"1|inv|{invoice.demand_no:08d}", "Body": dumps(invoice),
            "Number": invoice.number, "Kid": invoice.kid, "Total": invoice.total_minor,
            "Org": invoice.draft.organization_id}


@dataclass
class History:
    invoices: list[Invoice]
    ledger: list[LedgerEntry]
    reminders: list[ReminderDocument]
    credit_notes: list[CreditNote]


def _documents(rows: list[dict[str, Any]]) -> History:
    def of(kind: type[T], prefix: str) -> list[T]:
        return [loads(kind, r["Body"]) for r in rows if r["RowKey"].startswith(prefix)]

    return History(of(Invoice, "1|inv|"), of(LedgerEntry, "1|led|"), of(ReminderDocument, "1|rem|"),
                   of(CreditNote, "1|crn|"))


def _full(rows: list[dict[str, Any]]) -> tuple[Loaded, History]:
    loaded = _build([r for r in rows if r["RowKey"] < "1"])
    if loaded is None:
        raise ValueError(f"partition {rows[0]['PartitionKey']} has no subscriber row")
    return loaded, _documents(rows)
