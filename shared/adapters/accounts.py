"""The subscriber partition in Table Storage: load an ``Account``, commit ``Changes``.

Layout of table ``Subscribers``, one partition per subscriber
(``PartitionKey = "{tenant}|{spread}|{subscriber_no}"``; the two hex digits of
``spread`` keep consecutive subscriber numbers in different key ranges so that a burst
of new subscribers does not append to one range server):

| RowKey                 | what                                                   |
|------------------------|--------------------------------------------------------|
| ``0|subscriber``       | profile, balances per organisation, counters; its ETag |
|                        | guards the whole partition (optimistic concurrency)    |
| ``0|agr|{key}``        | a Vipps / card payment agreement (``PaymentAgreement``) |
| ``0|bal|{seq}``        | a balance check due after a stop (``BalanceCheck``)    |
| ``0|chg|{charge id}``  | a provider charge until its outcome is booked          |
| ``0|blk|{org}``        | a manual order blockage (``OrderBlock``)               |
| ``0|cor|{seq}``        | a correction not yet invoiced (``Correction``)         |
| ``0|dem|{demand no}``  | an open demand (``OpenDemand``): deleted when settled  |
| ``0|lgn|{link key}``   | a login linked to the subscriber (``LoginLink``)       |
| ``0|man|{org}``        | an AvtaleGiro mandate (``Mandate``)                    |
| ``0|sea|{id}``         | a group seat offered by e-mail (``Invitation``)        |
| ``0|sub|{id}``         | a subscription                                         |
| ``0|out|{event id}``   | outbox message not yet known to be delivered: the      |
|                        | codec's event envelope (``codec.dump_event``)          |
| ``1|inv|{demand no}``  | an issued invoice (never changed)                      |
| ``1|rem|{demand no}``  | a reminder (a demand of its own, for its invoice)      |
| ``1|crn|{number}``     | a credit note                                          |
| ``1|dlv|...``          | the delivery log (``adapters.deliveries``): not part   |
|                        | of the account; ``_documents`` reads rows by prefix,   |
|                        | so these never count as documents                      |
| ``1|led|{seq}``        | a ledger entry (never changed)                         |
| ``1|pay|{payment id}`` | a booked payment (created, so never booked twice)      |

The subscriber row holds only what is bounded: the profile, the counters and one
balance per organisation of the tenant's catalogue. Everything that grows with the
subscriber's history has rows of its own (``{org}`` is the organisation id, escaped
for a key; ``{seq}`` keeps the order of a sequence: a new item gets a number after the
last). ``Account.credited`` is not stored: it is what the ``1|crn|`` rows say
(``History.credited``), read by the operations that credit, which read the documents.

``load`` reads the ``0|`` rows only (one query, however long the history); ``commit``
writes one entity-group transaction: the subscriber row replaced under ``If-Match`` (so
a concurrent writer fails with ``ConcurrencyConflict`` instead of losing an update),
and of the ``0|`` item rows only those that differ from what was loaded (created,
replaced or deleted; the diff of the loaded rows against ``changes.account``), besides
the new documents, ledger entries and outbox rows. It returns the partition as it now
is, so a caller can go on with another transaction without reading it again. A
subscriber row of the first layout (open demands, mandates, corrections, credited
invoices, balance checks and order blocks as JSON properties of the subscriber row)
still loads; its first commit moves them to rows of their own.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from azure.core import MatchConditions

from ..domain.account import Account, BalanceCheck, Changes, Correction, Mandate, OrderBlock, ReminderDocument
from ..domain.agreements import Charge, PaymentAgreement
from ..domain.demands import OpenDemand
from ..domain.events import Event
from ..domain.identity import Invitation, LoginLink
from ..domain.invoicing import CreditNote, Invoice
from ..domain.ledger import LedgerEntry
from ..domain.payments import BookedPayment, row_id
from ..domain.subscriptions import Subscriber, Subscription
from ..ports import ConcurrencyConflict, History, Loaded, TooManyEntities, with_documents
from .codec import demand_from, dump_demand, dump_event, dumps, load_demand, load_event, loads
from .tables import MAX_BATCH, Operation, Storage, prefix_filter

TABLE = "Subscribers"
HEAD = "0|subscriber"
LAYOUT = 2  # 1: items as JSON in the subscriber row; 2: items in rows of their own
MAX_FENCE_ATTEMPTS = 20
T = TypeVar("T")


def partition_key(tenant: str, subscriber_no: int) -> str:
    spread = zlib.crc32(str(subscriber_no).encode()) & 0xFF
    return f"{tenant}|{spread:02x}|{subscriber_no:010d}"


@dataclass(frozen=True)
class Keyed:
    """Account items in a mapping, one row each under ``prefix`` + its key."""

    prefix: str
    kind: Any
    field: str
    key: Callable[[Any], str]
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class Ordered:
    """Account items in a tuple, one row each under ``prefix`` + a sequence number."""

    prefix: str
    kind: Any
    field: str


KEYED = (Keyed("0|dem|", OpenDemand, "open_demands", lambda n: f"{n:08d}", int),
         Keyed("0|man|", Mandate, "mandates", lambda org: quote(org, safe=""), unquote),
         Keyed("0|blk|", OrderBlock, "order_blocks", lambda org: quote(org, safe=""), unquote),
         Keyed("0|agr|", PaymentAgreement, "agreements", str, str),
         Keyed("0|chg|", Charge, "charges", str, str),
         Keyed("0|lgn|", LoginLink, "logins", str, str),
         Keyed("0|sea|", Invitation, "invitations", str, str))
ORDERED = (Ordered("0|cor|", Correction, "corrections"), Ordered("0|bal|", BalanceCheck, "balance_checks"))
ITEM_PREFIXES = tuple(k.prefix for k in (*KEYED, *ORDERED))



def _head_row(account: Account) -> dict[str, Any]:
    return {"Subscriber": dumps(account.subscriber), "Balances": json.dumps(dict(account.balances)),
            "NextDemandNo": account.next_demand_no, "NextLedgerSeq": account.next_ledger_seq,
            "Name": account.subscriber.name, "Email": account.subscriber.email, "Layout": LAYOUT}


def _item_rows(account: Account, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Every item row ``account`` needs: RowKey -> domain value. An ordered item keeps the
    row it is stored in while its order holds; new ones are numbered after the last."""
    rows: dict[str, Any] = {}
    for k in KEYED:
        rows |= {k.prefix + k.key(key): value for key, value in getattr(account, k.field).items()}
    for o in ORDERED:
        rows |= _ordered_rows(o.prefix, getattr(account, o.field), stored)
    return rows


def _ordered_rows(prefix: str, items: Sequence[Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    before = sorted((k, v) for k, v in stored.items() if k.startswith(prefix))
    rows: dict[str, Any] = {}
    i = j = 0
    while i < len(before) and j < len(items):
        if before[i][1] == items[j]:  # kept in place: same row
            rows[before[i][0]] = items[j]
            j += 1
        i += 1
    last = int(before[-1][0][len(prefix):]) if before else 0
    for n, item in enumerate(items[j:], start=last + 1):
        rows[f"{prefix}{n:010d}"] = item
    return rows


def _item_ops(pk: str, stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[Operation]:
    """Create, replace or delete the item rows that differ; an unchanged row is not written."""
    ops: list[Operation] = []
    for rk, value in wanted.items():
        if rk not in stored:
            ops.append(("create", _item_entity(pk, rk, value)))
        elif stored[rk] is not value and stored[rk] != value:
            ops.append(("update", _item_entity(pk, rk, value), {"mode": "replace"}))
    ops += [("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in stored if rk not in wanted]
    return ops


def _item_entity(pk: str, rk: str, value: Any) -> dict[str, Any]:
    """An open demand keeps its flat form (``codec.demand_json``), the others their dataclass's."""
    body = dump_demand(value) if isinstance(value, OpenDemand) else dumps(value)
    return {"PartitionKey": pk, "RowKey": rk, "Body": body}


def _load_item(kind: Any, body: str) -> Any:
    return load_demand(body) if kind is OpenDemand else loads(kind, body)


def _stored_items(rows: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = {k.prefix: k.kind for k in (*KEYED, *ORDERED)}
    return {r["RowKey"]: _load_item(kinds[r["RowKey"][:6]], r["Body"]) for r in rows if r["RowKey"][:6] in kinds}


def _account(head: dict[str, Any], stored: Mapping[str, Any], subs: dict[str, Subscription]) -> Account:
    items: dict[str, Any] = {}
    for k in KEYED:
        rows = {k.parse(rk[len(k.prefix):]): v for rk, v in stored.items() if rk.startswith(k.prefix)}
        items[k.field] = {**_first_layout(head, k.field), **rows}
    for o in ORDERED:
        ordered = [v for rk, v in sorted(stored.items()) if rk.startswith(o.prefix)]
        items[o.field] = (*_first_layout(head, o.field), *ordered)
    return Account(loads(Subscriber, head["Subscriber"]), subs, json.loads(head["Balances"]),
                   head["NextDemandNo"], head["NextLedgerSeq"], **items)


FIRST_LAYOUT: dict[str, tuple[str, Any, str]] = {  # account field: (column, type, empty)
    "open_demands": ("OpenDemands", list[dict[str, Any]], "[]"), "mandates": ("Mandates", dict[str, Mandate], "{}"),
    "order_blocks": ("OrderBlocks", dict[str, OrderBlock], "{}"),
    "corrections": ("Corrections", tuple[Correction, ...], "[]"),
    "balance_checks": ("BalanceChecks", tuple[BalanceCheck, ...], "[]")}


def _first_layout(head: dict[str, Any], name: str) -> Any:
    """Items a subscriber row of the first layout holds as JSON (none in a row of the second)."""
    if name not in FIRST_LAYOUT:  # items that came after the second layout
        return {}
    column, kind, empty = FIRST_LAYOUT[name]
    value = loads(kind, head.get(column) or empty)
    if name == "open_demands":
        return {d.demand_no: d for d in map(demand_from, value)}
    return value


def _build(rows: list[dict[str, Any]]) -> Loaded | None:
    head = next((r for r in rows if r["RowKey"] == HEAD), None)
    if head is None:
        return None
    subs = {s.id: s for s in (loads(Subscription, r["Body"]) for r in rows if r["RowKey"].startswith("0|sub|"))}
    outbox = [load_event(r["Body"]) for r in rows if r["RowKey"].startswith("0|out|")]
    stored = _stored_items(rows)
    return Loaded(_account(head, stored, subs), head["etag"], outbox, stored)


class AccountRepository:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def load(self, tenant: str, subscriber_no: int) -> Loaded | None:
        pk = partition_key(tenant, subscriber_no)
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk and RowKey lt '1'", {"pk": pk}))
        return _build(rows)

    def load_with_invoice(self, tenant: str, subscriber_no: int, demand_no: int
                          ) -> tuple[Loaded | None, Invoice | None]:
        """``load`` and ``invoice`` in one query (the partition's ``0|`` rows and the one
        ``1|inv|`` row): what delivering an invoice reads, in one round trip instead of two."""
        pk, rk = partition_key(tenant, subscriber_no), f"1|inv|{demand_no:08d}"
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk and (RowKey eq @rk or RowKey lt '1')",
                                       {"pk": pk, "rk": rk}))
        invoice = next((loads(Invoice, r["Body"]) for r in rows if r["RowKey"] == rk), None)
        return _build([r for r in rows if r["RowKey"] < "1"]), invoice

    def operations(self, tenant: str, loaded: Loaded | None, changes: Changes) -> list[Operation]:
        """The entity operations ``commit`` would send for ``changes``, the subscriber row first."""
        return self._plan(tenant, loaded, changes)[0]

    def _plan(self, tenant: str, loaded: Loaded | None, changes: Changes
              ) -> tuple[list[Operation], dict[str, Any], list[Event]]:
        """The operations, the item rows as committed, and the outbox rows left in place.

        Deleting the outbox rows found at load is opportunistic: the work of an operation
        is cut to fit one transaction on its own, so the deletes take only the room it
        leaves; the rest stay, and the next transaction sends them again and deletes them
        (delivery is at least once). Before, a write-off cut to 83 rows after a renewal
        that left 24 events needed 107 and was refused."""
        pk = partition_key(tenant, changes.account.number)
        head = {"PartitionKey": pk, "RowKey": HEAD, **_head_row(changes.account)}
        stored = loaded.stored if loaded is not None else {}
        items = _item_rows(changes.account, stored)
        ops: list[Operation] = []
        sent: list[Event] = []  # outbox rows found at load, to delete
        if loaded is None or loaded.etag is None:
            ops.append(("create", head))
        else:
            ops.append(("update", head, {"mode": "replace", "etag": loaded.etag,
                                         "match_condition": MatchConditions.IfNotModified}))
            again = {e.id for e in changes.events}  # an event raised again is not deleted: its create then
            sent = [e for e in loaded.outbox if e.id not in again]  # conflicts, as a repeat should
        ops += _item_ops(pk, stored, items)
        ops += [("upsert", {"PartitionKey": pk, "RowKey": f"0|sub|{s.id}", "Body": dumps(s)})
                for s in changes.subscriptions]
        ops += [("create", _invoice_row(pk, inv)) for inv in changes.invoices]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|led|{e.seq:08d}", "Body": dumps(e),
                            "Amount": e.amount_minor, "Org": e.organization_id}) for e in changes.ledger]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"0|out|{e.id}", "Body": dump_event(e)})
                for e in changes.events]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|pay|{row_id(b.payment)}", "Body": dumps(b),
                            "Amount": b.payment.amount_minor, "Org": b.payment.organization_id})
                for b in changes.payments]  # create: the same payment can never be booked twice
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|rem|{r.reminder.demand_no:08d}", "Body": dumps(r),
                            "Amount": r.reminder.amount_minor, "Kid": r.reminder.kid, "Org": r.organization_id})
                for r in changes.reminders]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|crn|{c.number:010d}", "Body": dumps(c),
                            "Amount": c.total_minor, "Org": c.organization_id}) for c in changes.credit_notes]
        room = max(0, MAX_BATCH - len(ops))
        ops[1:1] = [("delete", {"PartitionKey": pk, "RowKey": f"0|out|{e.id}"}) for e in sent[:room]]
        return ops, items, sent[room:]

    def commit(self, tenant: str, loaded: Loaded | None, changes: Changes) -> Loaded:
        """Write ``changes`` atomically (the outbox rows already loaded are cleared) and
        return the partition as it is now. ``TooManyEntities`` before anything is sent if
        they need more than one transaction holds."""
        ops, items, kept = self._plan(tenant, loaded, changes)
        if len(ops) > MAX_BATCH:
            raise TooManyEntities(f"subscriber {changes.account.number}: this operation writes {len(ops)} rows, "
                                  f"more than one transaction holds ({MAX_BATCH}); do it in smaller parts")
        result = self.storage.transact(TABLE, ops)
        account = replace(changes.account, credited=()) if changes.account.credited else changes.account
        return Loaded(account, result[0].get("etag"), [*kept, *changes.events], items)

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

    def payments(self, tenant: str, subscriber_no: int) -> list[BookedPayment]:
        """The subscriber's booked payments and reversals (one query of the ``1|pay|`` rows)."""
        pk = partition_key(tenant, subscriber_no)
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge '1|pay|' and RowKey lt '1|pay}'",
                                  {"pk": pk})
        return [loads(BookedPayment, r["Body"]) for r in rows]

    def invoice(self, tenant: str, subscriber_no: int, demand_no: int) -> Invoice | None:
        """One invoice by its demand number (what a KID decodes to): a point read."""
        row = self.storage.get(TABLE, partition_key(tenant, subscriber_no), f"1|inv|{demand_no:08d}")
        return loads(Invoice, row["Body"]) if row else None

    def fence(self, tenant: str, subscriber_no: int) -> bool:
        """Touch the subscriber row under its ETag: every commit based on an earlier load now
        fails with a conflict (used before releasing an invoice number, see numbering.py).
        False if the subscriber has no row yet."""
        pk = partition_key(tenant, subscriber_no)
        for _ in range(MAX_FENCE_ATTEMPTS):
            row = self.storage.get(TABLE, pk, HEAD)
            if row is None:
                return False
            try:
                self.storage.transact(TABLE, [("update", {"PartitionKey": pk, "RowKey": HEAD},
                                               {"mode": "merge", "etag": row["etag"],
                                                "match_condition": MatchConditions.IfNotModified})])
                return True
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"subscriber {subscriber_no} kept changing")

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




def _documents(rows: list[dict[str, Any]]) -> History:
    def of(kind: type[T], prefix: str) -> list[T]:
        return [loads(kind, r["Body"]) for r in rows if r["RowKey"].startswith(prefix)]

    return History(of(Invoice, "1|inv|"), of(LedgerEntry, "1|led|"), of(ReminderDocument, "1|rem|"),
                   of(CreditNote, "1|crn|"))


def _full(rows: list[dict[str, Any]]) -> tuple[Loaded, History]:
    loaded = _build([r for r in rows if r["RowKey"] < "1"])
    if loaded is None:
        raise ValueError(f"partition {rows[0]['PartitionKey']} has no subscriber row")
    history = _documents(rows)
    return with_documents(loaded, history), history
