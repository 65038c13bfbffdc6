"""The subscriber's rows in Table Storage: load an ``Account``, commit ``Changes``.

Where they are depends on the tenant's layout (``domain.placement``, decision 0012): in
layout 3 a bucket partition of up to 64 subscribers (``PartitionKey =
"{tenant}||{spread}|{bucket}"``), each row key carrying the subscriber number after the
hot/history mark (``Place``: ``0|subscriber`` is stored as ``0|{subscriber:010d}|subscriber``);
in layout 2 a partition per subscriber (``PartitionKey = "{tenant}|{spread}|{subscriber_no}"``)
with the keys below as they are. The two hex digits of ``spread`` keep consecutive numbers
in different key ranges so that a burst of new subscribers does not append to one range
server. A subscriber's own keys (layout 2's, below) are what the rest of this module reads:

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
|                        | codec's event envelope (``codec.dump_event``); only    |
|                        | those a commit's subscriber row has no room for (its   |
|                        | ``Outbox`` property holds 16: ``head_events``)         |
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
import time
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
from ..domain.placement import Layout
from ..domain.subscriptions import Subscriber, Subscription
from ..ports import ConcurrencyConflict, History, Loaded, StorageLimit, TooManyEntities, with_documents
from .codec import demand_from, dump_demand, dump_event, dumps, event_from, load_demand, load_event, loads
from .layouts import Layouts
from .tables import MAX_BATCH, Operation, Storage, _to_table, check_entity

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



def _head_row(account: Account, outbox: Sequence[str] = ()) -> dict[str, Any]:
    return {"Subscriber": dumps(account.subscriber), "Balances": json.dumps(dict(account.balances)),
            "NextDemandNo": account.next_demand_no, "NextLedgerSeq": account.next_ledger_seq,
            "Name": account.subscriber.name, "Email": account.subscriber.email, "Layout": LAYOUT,
            "Outbox": f"[{','.join(outbox)}]" if outbox else ""}


OUTBOX = "0|out|"
HEAD_OUTBOX_EVENTS = 16  # events a commit keeps in the subscriber row (the rest: rows of their own)
HEAD_OUTBOX_CHARS = 12_000  # of its Outbox property (a property holds 32 Ki UTF-16 characters)


def head_events(events: Sequence[Event]) -> tuple[list[str], list[Event]]:
    """The outbox of a commit: the envelopes of the first events, kept in the subscriber row's
    ``Outbox`` property (no row to create now, none to delete when the next commit replaces
    the row: a renewal's event costs no entity), and the events after them that do not fit
    (``HEAD_OUTBOX_EVENTS``, ``HEAD_OUTBOX_CHARS``), which get rows of their own as before."""
    texts: list[str] = []
    size = 2
    for i, event in enumerate(events):
        text = dump_event(event)
        size += len(text) + 1
        if i >= HEAD_OUTBOX_EVENTS or size > HEAD_OUTBOX_CHARS:
            return texts, list(events[i:])
        texts.append(text)
    return texts, []


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


def _item_ops(place: Place, stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[Operation]:
    """Create, replace or delete the item rows that differ; an unchanged row is not written."""
    ops: list[Operation] = []
    for rk, value in wanted.items():
        if rk not in stored:
            ops.append(("create", _item_entity(place.pk, place.rk(rk), value)))
        elif stored[rk] is not value and stored[rk] != value:
            ops.append(("update", _item_entity(place.pk, place.rk(rk), value), {"mode": "replace"}))
    ops += [("delete", {"PartitionKey": place.pk, "RowKey": place.rk(rk)}) for rk in stored if rk not in wanted]
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


def _build(place: Place, stored_rows: list[dict[str, Any]]) -> tuple[Loaded | None, bool]:
    """The subscriber from its hot rows as stored at ``place``; and whether its head says it
    has moved to its bucket (a partition of the first shape left behind by ``abonno layout``)."""
    rows = [r | {"RowKey": place.local(r["RowKey"])} for r in stored_rows] if place.bucketed else stored_rows
    head = next((r for r in rows if r["RowKey"] == HEAD), None)
    if head is None:
        return None, False
    if head.get("Moved"):
        return None, True
    subs = {s.id: s for s in (loads(Subscription, r["Body"]) for r in rows if r["RowKey"].startswith("0|sub|"))}
    in_rows = {r["RowKey"]: load_event(r["Body"]) for r in rows if r["RowKey"].startswith(OUTBOX)}
    in_head = [event_from(e) for e in json.loads(head["Outbox"])] if head.get("Outbox") else []
    stored = _stored_items(rows)
    return Loaded(_account(head, stored, subs), head["etag"], [*in_head, *in_rows.values()], stored | in_rows,
                  place.pk), False


@dataclass(frozen=True)
class Place:
    """Where one subscriber's rows are: its partition and how its row keys are written.

    In a partition of its own (layout 2) a row key is the item's own (``0|sub|{id}``); in
    a bucket (layout 3) the subscriber number follows the hot/history mark
    (``0|{subscriber:010d}|sub|{id}``), so the bucket's hot rows are one range, ahead of
    every history row, and each subscriber's hot rows (and its history) are one prefix.
    ``local`` turns a stored key back into the item's own, which is what the rest of this
    module reads."""

    pk: str
    number: int
    bucketed: bool

    @property
    def prefix(self) -> str:
        return f"{self.number:010d}|" if self.bucketed else ""

    def rk(self, local: str) -> str:
        return f"{local[:2]}{self.prefix}{local[2:]}" if self.bucketed else local

    def local(self, rk: str) -> str:
        return f"{rk[:2]}{rk[13:]}" if self.bucketed else rk

    def span(self, side: str) -> tuple[str, str]:
        """The row-key range of the subscriber's hot rows (``"0"``) or history (``"1"``)."""
        lo = f"{side}|{self.prefix}"
        return lo, lo[:-1] + chr(ord(lo[-1]) + 1)

    def within(self, local_lo: str, local_hi: str) -> tuple[str, str]:
        """A range of the subscriber's own keys (``1|pay|`` to ``1|pay}``; ``1|`` to ``1}``: all
        its history), as stored: a bound past the hot/history mark ends the subscriber's side."""
        hi = self.rk(local_hi) if local_hi[:2] == local_lo[:2] else self.span(local_lo[0])[1]
        return self.rk(local_lo), hi


def first_shape_key(tenant: str, subscriber_no: int) -> str:
    return partition_key(tenant, subscriber_no)


def bucket_key(tenant: str, bucket: int) -> str:
    """A bucket partition: ``{tenant}||{spread}|{bucket}``. The double bar keeps every bucket
    of the tenant in one key range apart from its partitions of the first shape
    (``{tenant}|{spread}|...``: a hex digit follows the bar), so either is found by a range."""
    spread = zlib.crc32(str(bucket).encode()) & 0xFF
    return f"{tenant}||{spread:02x}|{bucket:09d}"


def subscriber_of(pk: str) -> int:
    """The subscriber a partition of the first shape belongs to."""
    return int(pk.rsplit("|", 1)[1])


def first_shape(tenant: str, subscriber_no: int) -> Place:
    return Place(first_shape_key(tenant, subscriber_no), subscriber_no, False)


def placed(tenant: str, subscriber_no: int, layout: Layout) -> Place:
    """Where ``layout`` puts the subscriber: its bucket (layout 3) or its own partition (2)."""
    if layout.bucketed:
        return Place(bucket_key(tenant, layout.bucket(subscriber_no)), subscriber_no, True)
    return first_shape(tenant, subscriber_no)


MOVE_WAITS = 10  # loads that find a subscriber mid-move look again this many times (50 ms, 100 ms, ...)
BATCH_BYTES = 3 * 1024 * 1024  # what we put in one transaction: the 4 MiB limit less the multipart framing
OP_FRAMING = 600  # bytes of multipart headers around each operation of a transaction


class AccountRepository:
    def __init__(self, storage: Storage, layouts: Layouts | None = None) -> None:
        self.storage = storage
        self.layouts = layouts or Layouts(storage)

    # ---- where ---------------------------------------------------------------------------------
    def place(self, tenant: str, subscriber_no: int) -> Place:
        """Where the subscriber's rows are now. Only during a move does this read (the head in
        the bucket: moved there yet?); otherwise the tenant's layout says."""
        layout = self.layouts.get(tenant)
        where = placed(tenant, subscriber_no, layout)
        if layout.moving and self.storage.get(TABLE, where.pk, where.rk(HEAD)) is None:
            return first_shape(tenant, subscriber_no)
        return where

    def partition_of(self, tenant: str, subscriber_no: int) -> str:
        return placed(tenant, subscriber_no, self.layouts.get(tenant)).pk

    def _home(self, tenant: str, loaded: Loaded | None, subscriber_no: int) -> Place:
        """Where a commit goes: where ``loaded`` was read, else (a new subscriber) where the
        tenant's layout puts new subscribers."""
        if loaded is not None and loaded.where:
            return Place(loaded.where, subscriber_no, "||" in loaded.where)
        return placed(tenant, subscriber_no, self.layouts.get(tenant))

    # ---- reads ---------------------------------------------------------------------------------
    def load(self, tenant: str, subscriber_no: int) -> Loaded | None:
        layout = self.layouts.get(tenant)
        if not layout.bucketed:
            loaded, moved = self._load_at(first_shape(tenant, subscriber_no))
            if not moved:
                return loaded
            self.layouts.forget(tenant)  # moved since we read the layout: read it again
            layout = self.layouts.get(tenant)
            if not layout.bucketed:
                raise ConcurrencyConflict(f"subscriber {subscriber_no} moved, but layout 2 is recorded")
        bucketed = placed(tenant, subscriber_no, layout)
        loaded, _ = self._load_at(bucketed)
        if loaded is not None or not layout.moving:
            return loaded
        return self._load_moving(tenant, subscriber_no, bucketed)

    def _load_moving(self, tenant: str, subscriber_no: int, bucketed: Place) -> Loaded | None:
        """A tenant moving to buckets: the subscriber is in its partition of the first shape,
        or mid-move (its old head marked ``Moved``, its bucket rows being written): wait."""
        for wait in range(MOVE_WAITS):
            loaded, moved = self._load_at(first_shape(tenant, subscriber_no))
            if not moved:
                return loaded
            time.sleep(0.05 * (wait + 1))
            loaded, _ = self._load_at(bucketed)
            if loaded is not None:
                return loaded
        raise ConcurrencyConflict(f"subscriber {subscriber_no} is being moved to its bucket; try again")

    def _load_at(self, place: Place) -> tuple[Loaded | None, bool]:
        lo, hi = place.span("0")
        rows = list(self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                       {"pk": place.pk, "lo": lo, "hi": hi}))
        return _build(place, rows)

    def load_many(self, tenant: str, subscriber_nos: Sequence[int]) -> dict[int, Loaded]:
        """The hot rows of many subscribers: one query per bucket (layout 3), each bucket's
        hot rows being one range; elsewhere (layout 2, a move under way) one load each."""
        layout = self.layouts.get(tenant)
        if not layout.bucketed or layout.moving:
            return {n: loaded for n in dict.fromkeys(subscriber_nos) if (loaded := self.load(tenant, n)) is not None}
        wanted: dict[int, set[int]] = {}
        for n in subscriber_nos:
            wanted.setdefault(layout.bucket(n), set()).add(n)
        found: dict[int, Loaded] = {}
        for bucket, numbers in wanted.items():
            pk = bucket_key(tenant, bucket)
            rows: dict[int, list[dict[str, Any]]] = {}
            for row in self.storage.query(TABLE, "PartitionKey eq @pk and RowKey lt '1'", {"pk": pk}):
                n = int(row["RowKey"][2:12])
                if n in numbers:
                    rows.setdefault(n, []).append(row)
            for n, own in rows.items():
                loaded, _ = _build(Place(pk, n, True), own)
                if loaded is not None:
                    found[n] = loaded
        return found

    def load_with_invoice(self, tenant: str, subscriber_no: int, demand_no: int
                          ) -> tuple[Loaded | None, Invoice | None]:
        """``load`` and ``invoice`` in one query (the subscriber's hot rows and the one
        ``1|inv|`` row): what delivering an invoice reads, in one round trip instead of two."""
        place = self.place(tenant, subscriber_no)
        lo, hi = place.span("0")
        rk = place.rk(f"1|inv|{demand_no:08d}")
        rows = list(self.storage.query(
            TABLE, "PartitionKey eq @pk and (RowKey eq @rk or (RowKey ge @lo and RowKey lt @hi ) )",
            {"pk": place.pk, "rk": rk, "lo": lo, "hi": hi}))
        invoice = next((loads(Invoice, r["Body"]) for r in rows if r["RowKey"] == rk), None)
        loaded, moved = _build(place, [r for r in rows if r["RowKey"] < "1"])
        if moved:  # moved between our look and this read
            return self.load(tenant, subscriber_no), self.invoice(tenant, subscriber_no, demand_no)
        return loaded, invoice

    def history_rows(self, tenant: str, subscriber_no: int, local_lo: str = "1|", local_hi: str = "1}"
                     ) -> list[dict[str, Any]]:
        """The subscriber's rows with own keys in [local_lo, local_hi), keys made local."""
        place = self.place(tenant, subscriber_no)
        lo, hi = place.within(local_lo, local_hi)
        rows = self.storage.query(TABLE, "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                                  {"pk": place.pk, "lo": lo, "hi": hi})
        return [r | {"RowKey": place.local(r["RowKey"])} for r in rows]

    def row(self, tenant: str, subscriber_no: int, local: str) -> dict[str, Any] | None:
        """One of the subscriber's rows by its own key (a point read)."""
        place = self.place(tenant, subscriber_no)
        found = self.storage.get(TABLE, place.pk, place.rk(local))
        return found | {"RowKey": local} if found else None

    # ---- writes --------------------------------------------------------------------------------
    def operations(self, tenant: str, loaded: Loaded | None, changes: Changes) -> list[Operation]:
        """The entity operations ``commit`` would send for ``changes``, the subscriber row first."""
        return self._plan(self._home(tenant, loaded, changes.account.number), loaded, changes)[0]

    def _plan(self, place: Place, loaded: Loaded | None, changes: Changes
              ) -> tuple[list[Operation], dict[str, Any], list[Event]]:
        """The operations, the item rows as committed, and the outbox rows left in place.

        Deleting the outbox rows found at load is opportunistic: the work of an operation
        is cut to fit one transaction on its own, so the deletes take only the room it
        leaves; the rest stay, and the next transaction sends them again and deletes them
        (delivery is at least once). Before, a write-off cut to 83 rows after a renewal
        that left 24 events needed 107 and was refused."""
        pk, rk = place.pk, place.rk
        texts, overflow = head_events(changes.events)
        head = {"PartitionKey": pk, "RowKey": rk(HEAD), **_head_row(changes.account, texts)}
        stored = loaded.stored if loaded is not None else {}
        in_rows = {k: v for k, v in stored.items() if k.startswith(OUTBOX)}  # events with rows of their own
        items = _item_rows(changes.account, stored)
        ops: list[Operation] = []
        sent: list[str] = []  # outbox rows found at load, to delete (those in the subscriber row go with it)
        if loaded is None or loaded.etag is None:
            ops.append(("create", head))
        else:
            ops.append(("update", head, {"mode": "replace", "etag": loaded.etag,
                                         "match_condition": MatchConditions.IfNotModified}))
            again = {e.id for e in changes.events} & {e.id for e in loaded.outbox}
            if again:  # an event raised again while still in the outbox: a repeat, refused as a created row was
                raise ConcurrencyConflict(f"EntityAlreadyExists: event {sorted(again)[0]} is in the outbox")
            sent = list(in_rows)
        ops += _item_ops(place, {k: v for k, v in stored.items() if not k.startswith(OUTBOX)}, items)
        ops += [("upsert", {"PartitionKey": pk, "RowKey": rk(f"0|sub|{s.id}"), "Body": dumps(s)})
                for s in changes.subscriptions]
        ops += [("create", _invoice_row(place, inv)) for inv in changes.invoices]
        ops += [("create", {"PartitionKey": pk, "RowKey": rk(f"1|led|{e.seq:08d}"), "Body": dumps(e),
                            "Amount": e.amount_minor, "Org": e.organization_id}) for e in changes.ledger]
        ops += [("create", {"PartitionKey": pk, "RowKey": rk(f"{OUTBOX}{e.id}"), "Body": dump_event(e)})
                for e in overflow]
        ops += [("create", {"PartitionKey": pk, "RowKey": rk(f"1|pay|{row_id(b.payment)}"), "Body": dumps(b),
                            "Amount": b.payment.amount_minor, "Org": b.payment.organization_id})
                for b in changes.payments]  # create: the same payment can never be booked twice
        ops += [("create", {"PartitionKey": pk, "RowKey": rk(f"1|rem|{r.reminder.demand_no:08d}"), "Body": dumps(r),
                            "Amount": r.reminder.amount_minor, "Kid": r.reminder.kid, "Org": r.organization_id})
                for r in changes.reminders]
        ops += [("create", {"PartitionKey": pk, "RowKey": rk(f"1|crn|{c.number:010d}"), "Body": dumps(c),
                            "Amount": c.total_minor, "Org": c.organization_id}) for c in changes.credit_notes]
        room = max(0, MAX_BATCH - len(ops))
        ops[1:1] = [("delete", {"PartitionKey": pk, "RowKey": rk(key)}) for key in sent[:room]]
        kept = {key: in_rows[key] for key in sent[room:]}
        return ops, items | kept | {f"{OUTBOX}{e.id}": e for e in overflow}, list(kept.values())

    def commit(self, tenant: str, loaded: Loaded | None, changes: Changes) -> Loaded:
        """Write ``changes`` atomically (the outbox rows already loaded are cleared) and
        return the partition as it is now. ``TooManyEntities`` before anything is sent if
        they need more than one transaction holds."""
        place = self._home(tenant, loaded, changes.account.number)
        ops, items, kept = self._plan(place, loaded, changes)
        if len(ops) > MAX_BATCH:
            raise TooManyEntities(f"subscriber {changes.account.number}: this operation writes {len(ops)} rows, "
                                  f"more than one transaction holds ({MAX_BATCH}); do it in smaller parts")
        result = self.storage.transact(TABLE, ops)
        return _committed(place, changes, result[0].get("etag"), kept, items)

    def commit_many(self, tenant: str, items: Sequence[tuple[Loaded | None, Changes]]) -> list[Loaded | Exception]:
        """Commit many subscribers' changes in as few transactions as the limits allow (100
        rows, ``BATCH_BYTES``), each subscriber's rows whole in one of them. A transaction
        refused for one subscriber's ETag (or a row it creates twice) is sent again without
        that subscriber, whose answer is the ``ConcurrencyConflict``; one refused for a reason
        the service does not pin on an operation is sent again a subscriber at a time, so
        every answer is that subscriber's own."""
        answers: list[Loaded | Exception | None] = [None] * len(items)
        plans: dict[str, list[_Planned]] = {}
        for i, (loaded, changes) in enumerate(items):
            try:
                place = self._home(tenant, loaded, changes.account.number)
                ops, rows, kept = self._plan(place, loaded, changes)
                if len(ops) > MAX_BATCH:
                    raise TooManyEntities(f"subscriber {changes.account.number}: this operation writes {len(ops)} "
                                          f"rows, more than one transaction holds ({MAX_BATCH})")
                size = sum(OP_FRAMING + (_wire_bytes(op[1]) if op[0] != "delete" else 0) for op in ops)
                if size > BATCH_BYTES:
                    raise StorageLimit(f"subscriber {changes.account.number}: this operation writes about {size} "
                                       f"bytes, more than one transaction carries ({BATCH_BYTES})")
            except (TooManyEntities, StorageLimit, ConcurrencyConflict) as exc:
                answers[i] = exc
                continue
            plans.setdefault(place.pk, []).append(_Planned(i, place, changes, ops, rows, kept, size))
        for planned in plans.values():
            for group in _packed(planned):
                self._send(group, answers)
        return [a if a is not None else RuntimeError("not committed") for a in answers]

    def _send(self, group: list[_Planned], answers: list[Loaded | Exception | None]) -> None:
        pending = list(group)
        while pending:
            ops = [op for p in pending for op in p.ops]
            try:
                result = self.storage.transact(TABLE, ops)
            except ConcurrencyConflict as conflict:
                culprit = _owner(pending, conflict.at)
                answers[culprit.index] = conflict
                pending = [p for p in pending if p is not culprit]
                continue
            except Exception as exc:
                if len(pending) == 1:
                    answers[pending[0].index] = exc
                    return
                for one in pending:  # whose fault? each alone
                    self._send([one], answers)
                return
            at = 0
            for p in pending:
                answers[p.index] = _committed(p.place, p.changes, result[at].get("etag"), p.kept, p.rows)
                at += len(p.ops)
            return

    def history(self, tenant: str, subscriber_no: int) -> tuple[list[Invoice], list[LedgerEntry]]:
        documents = self.documents(tenant, subscriber_no)
        return documents.invoices, documents.ledger

    def documents(self, tenant: str, subscriber_no: int) -> History:
        """Everything issued to the subscriber: invoices, reminders, credit notes, ledger."""
        return _documents(self.history_rows(tenant, subscriber_no))

    def reminder(self, tenant: str, subscriber_no: int, demand_no: int) -> ReminderDocument | None:
        row = self.row(tenant, subscriber_no, f"1|rem|{demand_no:08d}")
        return loads(ReminderDocument, row["Body"]) if row else None

    def booked(self, tenant: str, subscriber_no: int, payment_ids: list[str]) -> set[str]:
        """Which of these payments are already on the subscriber's ledger (point reads)."""
        place = self.place(tenant, subscriber_no)
        return {i for i in payment_ids if self.storage.get(TABLE, place.pk, place.rk(f"1|pay|{i}")) is not None}

    def payments(self, tenant: str, subscriber_no: int) -> list[BookedPayment]:
        """The subscriber's booked payments and reversals (one query of the ``1|pay|`` rows)."""
        return [loads(BookedPayment, r["Body"]) for r in self.history_rows(tenant, subscriber_no, "1|pay|", "1|pay}")]

    def invoice(self, tenant: str, subscriber_no: int, demand_no: int) -> Invoice | None:
        """One invoice by its demand number (what a KID decodes to): a point read."""
        row = self.row(tenant, subscriber_no, f"1|inv|{demand_no:08d}")
        return loads(Invoice, row["Body"]) if row else None

    def fence(self, tenant: str, subscriber_no: int) -> bool:
        """Touch the subscriber row under its ETag: every commit based on an earlier load now
        fails with a conflict (used before releasing an invoice number, see numbering.py).
        False if the subscriber has no row yet."""
        for _ in range(MAX_FENCE_ATTEMPTS):
            place = self.place(tenant, subscriber_no)
            row = self.storage.get(TABLE, place.pk, place.rk(HEAD))
            if row is None:
                return False
            try:
                self.storage.transact(TABLE, [("update", {"PartitionKey": place.pk, "RowKey": place.rk(HEAD)},
                                               {"mode": "merge", "etag": row["etag"],
                                                "match_condition": MatchConditions.IfNotModified})])
                return True
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"subscriber {subscriber_no} kept changing")

    def scan_tenant(self, tenant: str) -> Iterator[tuple[Loaded, History]]:
        """Every subscriber of a tenant with history: for reports and search, never a hot path.
        Subscribers moved to a bucket are read there, not from the first shape they left."""
        for number, rows in self.scan_rows(tenant):
            yield _full(number, rows)

    def scan_rows(self, tenant: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Every subscriber's rows (keys made local), a subscriber at a time: an admin scan.

        In buckets for good (layout 3, not moving) only the buckets are read: every partition
        of the first shape was moved (``abonno layout`` verified it). During a move a subscriber
        is read where it is: a head of the first shape marked ``Moved`` whose bucket head is not
        written yet is a subscriber mid-copy, read whole from its first shape (frozen since the
        fence), and its rows already in the bucket, having no head there, are not read."""
        layout = self.layouts.get(tenant)
        ranges = [(f"{tenant}|0", f"{tenant}|g", False), (f"{tenant}||", f"{tenant}|}}", True)]
        for lo, hi, bucketed in ranges[1:] if layout.bucketed and not layout.moving else ranges:
            current: list[dict[str, Any]] = []
            for row in self.storage.query(TABLE, "PartitionKey ge @lo and PartitionKey lt @hi", {"lo": lo, "hi": hi}):
                if current and row["PartitionKey"] != current[0]["PartitionKey"]:
                    yield from self._scanned(tenant, current, bucketed)
                    current = []
                current.append(row)
            if current:
                yield from self._scanned(tenant, current, bucketed)

    def _scanned(self, tenant: str, rows: list[dict[str, Any]], bucketed: bool
                 ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        for number, own in _subscribers(rows, bucketed):
            head = next((r for r in own if r["RowKey"] == HEAD), None)
            if head is None and bucketed and self.layouts.get(tenant).moving:
                continue  # mid-move: read from its first shape
            if head is not None and head.get("Moved"):
                layout = self.layouts.get(tenant)
                if not layout.bucketed:  # moved since the layout was read: read it again
                    self.layouts.forget(tenant)
                    layout = self.layouts.get(tenant)
                if not layout.moving:
                    continue
                if self.storage.get(TABLE, bucket_key(tenant, layout.bucket(number)),
                                    Place("", number, True).rk(HEAD)) is not None:
                    continue  # in its bucket now: read there
                own = [r | {"Moved": False} if r is head else r for r in own]
            yield number, own


@dataclass(frozen=True)
class _Planned:
    index: int
    place: Place
    changes: Changes
    ops: list[Operation]
    rows: dict[str, Any]
    kept: list[Event]
    size: int


def _wire_bytes(entity: Mapping[str, Any]) -> int:
    """An entity's bytes in a transaction's body, at most (``check_entity`` checks it first).
    The 4 MiB limit is on the request, which the SDK writes as JSON with every character
    outside printable ASCII escaped (``\\u00f8``: 6 bytes, 12 for one beyond the BMP): a
    string with any is counted at three times its UTF-16 size, the rest as the service does
    (two bytes a character, twice what JSON takes for them)."""
    size = check_entity(_to_table(entity))  # what ``Storage.transact`` sends: an int past Int32 as Int64
    for value in entity.values():
        if isinstance(value, str) and not (value.isascii() and value.isprintable()):
            size += 2 * len(value.encode("utf-16-le"))
    return size


def _packed(planned: list[_Planned]) -> Iterator[list[_Planned]]:
    """Consecutive subscribers' operations into transactions of at most ``MAX_BATCH`` rows and
    ``BATCH_BYTES``, each subscriber whole in one."""
    group: list[_Planned] = []
    rows = size = 0
    for p in planned:
        if group and (rows + len(p.ops) > MAX_BATCH or size + p.size > BATCH_BYTES):
            yield group
            group, rows, size = [], 0, 0
        group.append(p)
        rows, size = rows + len(p.ops), size + p.size
    if group:
        yield group


def _owner(pending: list[_Planned], at: int | None) -> _Planned:
    """The subscriber whose operation ``at`` failed (the first, if the service did not say)."""
    if at is not None:
        for p in pending:
            if at < len(p.ops):
                return p
            at -= len(p.ops)
    return pending[0]


def _committed(place: Place, changes: Changes, etag: str | None, kept: list[Event], items: dict[str, Any]) -> Loaded:
    account = replace(changes.account, credited=()) if changes.account.credited else changes.account
    return Loaded(account, etag, [*kept, *changes.events], items, place.pk)


def _subscribers(rows: list[dict[str, Any]], bucketed: bool) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A partition's rows, a subscriber at a time (keys made local)."""
    pk = rows[0]["PartitionKey"]
    if not bucketed:
        yield subscriber_of(pk), rows
        return
    by: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        n = int(r["RowKey"][2:12])
        by.setdefault(n, []).append(r | {"RowKey": f"{r['RowKey'][:2]}{r['RowKey'][13:]}"})
    yield from sorted(by.items())


def _invoice_row(place: Place, invoice: Invoice) -> dict[str, Any]:
    return {"PartitionKey": place.pk, "RowKey": place.rk(f"1|inv|{invoice.demand_no:08d}"), "Body": dumps(invoice),
            "Number": invoice.number, "Kid": invoice.kid, "Total": invoice.total_minor,
            "Org": invoice.draft.organization_id}




def _documents(rows: list[dict[str, Any]]) -> History:
    def of(kind: type[T], prefix: str) -> list[T]:
        return [loads(kind, r["Body"]) for r in rows if r["RowKey"].startswith(prefix)]

    return History(of(Invoice, "1|inv|"), of(LedgerEntry, "1|led|"), of(ReminderDocument, "1|rem|"),
                   of(CreditNote, "1|crn|"))


def _full(number: int, rows: list[dict[str, Any]]) -> tuple[Loaded, History]:
    """A subscriber from all its rows (keys local)."""
    loaded, _ = _build(Place(rows[0]["PartitionKey"], number, False), [r for r in rows if r["RowKey"] < "1"])
    if loaded is None:
        raise ValueError(f"subscriber {number} in {rows[0]['PartitionKey']} has no subscriber row")
    history = _documents(rows)
    return with_documents(loaded, history), history
