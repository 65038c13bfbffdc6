"""Issue due invoices for one account and commit: the step orders and renewals share.

1. the pure domain says which demands are due (``account.due_drafts``);
2. invoice numbers are claimed for their natural keys (``InvoiceNumbers``);
3. ``account.issue`` builds invoices, ledger entries and outbox events;
4. one entity-group transaction commits it all; then the outbox is published.

A ``ConcurrencyConflict`` at step 4 means someone changed the partition since it was
read: the caller reloads and runs the steps again, and finds the demand issued.
``change_account`` does the same for any other operation on one subscriber
(customer service, a dunning visit redone alone).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date

from ..adapters.accounts import History, Loaded, with_documents
from ..adapters.bus import EVENTS, NOTICES, BusMessage
from ..adapters.codec import to_jsonable
from ..adapters.numbering import series_key
from ..adapters.tables import MAX_BATCH, ConcurrencyConflict
from ..domain.account import Account, Changes, Event, due_drafts
from ..domain.catalogue import Catalogue
from ..domain.collection import NOTICE_TYPES, next_visit
from ..domain.credit import Number
from ..domain.invoicing import InvoiceDraft
from .context import Context
from .queries import NotFound

log = logging.getLogger(__name__)
ENTITIES_PER_DRAFT = 4  # invoice, its open demand row, ledger entry, outbox event


def claim_numbers(ctx: Context, tenant: str, catalogue: Catalogue, drafts: Sequence[InvoiceDraft]) -> dict[str, int]:
    return claim_keys(ctx, tenant, catalogue, [(d.organization_id, d.natural_key) for d in drafts])


def claim_keys(ctx: Context, tenant: str, catalogue: Catalogue, wanted: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Invoice numbers for (organisation, natural key) pairs, one claim per number series."""
    by_series: dict[str, list[str]] = defaultdict(list)
    for organization_id, key in wanted:
        org = catalogue.organizations[organization_id]
        by_series[series_key(tenant, org.id, org.invoice_series)].append(key)
    numbers: dict[str, int] = {}
    for pk, keys in by_series.items():
        numbers |= ctx.invoice_numbers.claim(pk, keys)
    return numbers


def numbered(ctx: Context, tenant: str, catalogue: Catalogue, operation: Callable[[Number], Changes]) -> Changes:
    """Run a pure ``operation`` that may need invoice numbers (credit notes, balance and
    additional invoices): once to learn which natural keys it asks for, then again with
    the numbers claimed for them. Pure, so both runs decide the same; the claim is by
    natural key, so a retry gets the same numbers."""
    asked: list[tuple[str, str]] = []

    def record(organization_id: str, key: str) -> int:
        asked.append((organization_id, key))
        return 0

    dry = operation(record)
    if not asked:
        return dry
    numbers = claim_keys(ctx, tenant, catalogue, asked)
    return operation(lambda _org, key: numbers[key])


def plan(loaded: Loaded | None, account: Account, catalogue: Catalogue, today: date,
         extra_entities: int = 0) -> list[InvoiceDraft]:
    """What is due, cut to what fits one transaction with everything else it writes.

    The rest is due still, and is issued by the next transaction (the caller loops, or the
    next run catches up).
    """
    fixed = (1 + len(account.subscriptions) + len(account.corrections)  # corrections invoiced: rows deleted
             + (len(loaded.outbox) if loaded else 0) + extra_entities)
    room = (MAX_BATCH - fixed) // ENTITIES_PER_DRAFT
    return due_drafts(account, catalogue, today)[: max(room, 0)]


def unchanged(loaded: Loaded, changes: Changes) -> bool:
    """Nothing to commit: no rows added and the account as it was loaded (an operation may
    change only the subscriber row, such as a balance check done with or an order block)."""
    return changes.empty and changes.account == loaded.account


MAX_ATTEMPTS = 10
Operation = Callable[[Account, Catalogue, date, Number, History | None], Changes]


def change_account(ctx: Context, tenant: str, subscriber_no: int, operation: Operation, documents: bool = False,
                   today: date | None = None) -> Changes:
    """One business operation on one subscriber: load the partition (and its documents, if
    the operation needs the issued invoices), run the pure ``operation`` with invoice
    numbers claimed (``numbered``), index what the invoice and dunning runs must see,
    commit; a conflict reloads and runs it again. ``today`` defaults to the tenant's."""
    catalogue = ctx.catalogue.get(tenant)
    today = today or ctx.today(catalogue)
    for _ in range(MAX_ATTEMPTS):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            raise NotFound(f"subscriber {subscriber_no}")
        history = ctx.accounts.documents(tenant, subscriber_no) if documents else None
        if history is not None:
            loaded = with_documents(loaded, history)  # the credited invoices: the documents say
        account = loaded.account
        changes = numbered(ctx, tenant, catalogue,
                           lambda number, a=account, h=history: operation(a, catalogue, today, number, h))
        if unchanged(loaded, changes):
            return changes
        for sub in changes.subscriptions:
            if sub.id not in loaded.account.subscriptions:  # a restart after a pause: the invoice run must see it
                ctx.due_index.add(tenant, sub.cadence, subscriber_no, sub.id)
        index_next_visit(ctx, tenant, catalogue, changes.account, today)
        try:
            commit(ctx, tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        return changes
    raise ConcurrencyConflict(f"subscriber {subscriber_no} kept changing")



def index_next_visit(ctx: Context, tenant: str, catalogue: Catalogue, account: Account, today: date) -> None:
    """Enter the day the dunning run must next look at this subscriber, if any, in the
    dunning index: ahead of the commit that makes the visit necessary (see indexes.py)."""
    visit = next_visit(account, catalogue, today)
    if visit is not None:
        ctx.dunning_index.add(tenant, visit, account.number)


def publish(ctx: Context, tenant: str, events: Sequence[Event]) -> None:
    """Send outbox events; a failure is logged, the rows stay and go out on the next touch."""
    if not events:
        return
    messages = [BusMessage(e.id, {"tenant": tenant, "type": e.type, "payload": to_jsonable(dict(e.payload))})
                for e in events]
    try:
        ctx.bus.send(EVENTS, messages)
        ctx.bus.send(NOTICES, [m for m in messages if m.body["type"] in NOTICE_TYPES])
    except Exception:
        log.exception("outbox: %d events for %s not sent; kept for the next attempt", len(events), tenant)


def commit(ctx: Context, tenant: str, loaded: Loaded | None, changes: Changes, publish_now: bool = True) -> list[Event]:
    """Commit ``changes``; the outbox to send is this commit's events and any found pending.

    ``publish_now=False`` hands the events back so a batch can send them in one go.
    """
    ctx.accounts.commit(tenant, loaded, changes)
    events = [*(loaded.outbox if loaded else []), *changes.events]
    if publish_now:
        publish(ctx, tenant, events)
    return events

