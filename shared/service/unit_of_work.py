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
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date

from ..adapters.bus import EVENTS, NOTICES
from ..adapters.codec import to_jsonable
from ..adapters.numbering import series_key
from ..adapters.tables import MAX_BATCH
from ..domain.account import Account, Changes, Event, due_drafts
from ..domain.catalogue import Catalogue
from ..domain.credit import Number, credit_note_key
from ..domain.dunning_visit import NOTICE_TYPES, next_visit
from ..domain.invoicing import InvoiceDraft
from ..ports import BusMessage, ConcurrencyConflict, History, Loaded, NotFound, transient, with_documents
from ..ports import NumberClaim as Claim
from .context import Context

log = logging.getLogger(__name__)
ENTITIES_PER_DRAFT = 4  # invoice, its open demand row, ledger entry, outbox event


def claim_key(subscriber_no: int, natural_key: str) -> str:
    """A document's key in its organisation's number series: the subscriber and the
    document's natural key within the account, so no two documents can share a number
    (numbering.py). A subscription id alone is not unique across subscribers."""
    return f"{subscriber_no}.{natural_key}"


def series_of(tenant: str, catalogue: Catalogue, organization_id: str) -> str:
    org = catalogue.organizations[organization_id]
    return series_key(tenant, org.id, org.invoice_series)


Wanted = tuple[int, str, str]  # (subscriber number, organisation id, natural key)


class Claims:
    """The invoice numbers one operation claims, and which of them its commits carried.

    ``close`` (also on the way out of a ``with`` block, exception or not) releases every
    claim no commit carried: a transaction that failed for good, an account that changed
    so the document was no longer due. The release is safe against anyone still holding
    the number (void, fence, verify: numbering.py), so the series keeps no gap. Where
    nothing can be fenced (a new subscriber, no row yet) and the operation ended in a
    failure that leaves its commit in doubt, the claims stay (``release``, ``in_doubt``).
    """

    def __init__(self, ctx: Context, tenant: str, catalogue: Catalogue) -> None:
        self.ctx, self.tenant, self.catalogue = ctx, tenant, catalogue
        self._held: dict[tuple[int, str, str], int] = {}  # (subscriber, organisation, natural key) -> number
        self._used: set[tuple[str, int]] = set()  # (organisation, number) carried by a commit
        self._lock = threading.Lock()

    def numbers(self, wanted: Sequence[Wanted]) -> dict[int, dict[str, int]]:
        """subscriber -> natural key -> number; one claim (one round trip) per series."""
        by_series: dict[str, list[Wanted]] = defaultdict(list)
        for item in wanted:
            by_series[series_of(self.tenant, self.catalogue, item[1])].append(item)
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for pk, items in by_series.items():
            got = self.ctx.invoice_numbers.claim(pk, [claim_key(n, key) for n, _org, key in items])
            with self._lock:
                for n, org, key in items:
                    out[n][key] = self._held[(n, org, key)] = got[claim_key(n, key)]
        return dict(out)

    def for_drafts(self, subscriber_no: int, drafts: Sequence[InvoiceDraft]) -> dict[str, int]:
        wanted = [(subscriber_no, d.organization_id, d.natural_key) for d in drafts]
        return self.numbers(wanted).get(subscriber_no, {})

    def committed(self, changes: Changes) -> None:
        with self._lock:
            self._used |= numbers_of(changes)

    def close(self, failure: BaseException | None = None) -> None:
        """Release what no commit carried; ``failure``: what ended the operation, if anything."""
        with self._lock:
            unused = {k: n for k, n in self._held.items() if (k[1], n) not in self._used}
            self._held.clear()
        by_subscriber: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
        for (subscriber_no, org, key), number in unused.items():
            by_subscriber[subscriber_no][(org, key)] = number
        for subscriber_no, held in by_subscriber.items():
            release(self.ctx, self.tenant, self.catalogue, subscriber_no, held,
                    in_doubt=failure is not None and transient(failure))

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, _type: object, failure: BaseException | None, _tb: object) -> None:
        try:
            self.close(failure)
        except Exception:  # storage away: the sweep (release_unissued) finds them later
            log.exception("could not release unused invoice numbers of %s", self.tenant)


def numbers_of(changes: Changes) -> set[tuple[str, int]]:
    """(organisation, number) of every numbered document in ``changes``."""
    return ({(i.draft.organization_id, i.number) for i in changes.invoices}
            | {(c.organization_id, c.number) for c in changes.credit_notes})


def release(ctx: Context, tenant: str, catalogue: Catalogue, subscriber_no: int,
            held: Mapping[tuple[str, str], int], in_doubt: bool = False) -> None:
    """Release claims of one subscriber ((organisation, natural key) -> number) that no
    commit of ours carried: void them, fence the subscriber partition, and free the
    numbers no document of the subscriber carries (numbering.py, steps 1-4).

    ``in_doubt``: our commit failed in a way that may have committed after all, or may
    still (a timeout, a dropped connection, a 5xx). With a subscriber row the fence stops
    it; a new subscriber has no row to fence, so a transaction still on its way, or a
    racer placing the same order, would land the number after we freed it, and the next
    claim would hand it out again. Then the claims stay: the retry (same claim keys)
    uses them, else the sweep releases them once no commit can be in flight."""
    by_series: dict[str, dict[str, int]] = defaultdict(dict)
    for (org, key), number in held.items():
        by_series[series_of(tenant, catalogue, org)][claim_key(subscriber_no, key)] = number
    voided = {pk: v for pk, keys in by_series.items() if (v := ctx.invoice_numbers.void(pk, keys))}
    finish_release(ctx, tenant, catalogue, subscriber_no, voided, in_doubt)


def finish_release(ctx: Context, tenant: str, catalogue: Catalogue, subscriber_no: int,
                   voided: Mapping[str, Mapping[str, Claim]], in_doubt: bool = False) -> None:
    """Steps 2-4 of a release (fence, verify, free) for claims voided already: by
    ``release``, or by a release cut short that the sweep finishes."""
    if not voided:
        return
    if not ctx.accounts.fence(tenant, subscriber_no) and in_doubt:  # nothing to fence: leave them claimed
        for pk, claims in voided.items():
            ctx.invoice_numbers.restore(pk, claims)
        log.info("kept invoice numbers of new subscriber %s claimed: its commit is in doubt", subscriber_no)
        return
    carried = carried_numbers(ctx, tenant, catalogue, subscriber_no)
    for pk, claims in voided.items():
        ctx.invoice_numbers.restore(pk, {k: c for k, c in claims.items() if (pk, c.number) in carried})
        unused = {k: c for k, c in claims.items() if (pk, c.number) not in carried}
        if unused:
            ctx.invoice_numbers.free(pk, unused)
            log.info("released invoice numbers %s of %s", sorted(c.number for c in unused.values()), pk)


def carried_numbers(ctx: Context, tenant: str, catalogue: Catalogue, subscriber_no: int) -> set[tuple[str, int]]:
    """(series, number) of every invoice and credit note the subscriber has."""
    docs = ctx.accounts.documents(tenant, subscriber_no)
    pairs = [(i.draft.organization_id, i.number) for i in docs.invoices]
    pairs += [(c.organization_id, c.number) for c in docs.credit_notes]
    return {(series_key(tenant, org, catalogue.organizations[org].invoice_series if org in catalogue.organizations
                        else "main"), n) for org, n in pairs}


SWEEP_GRACE_S = 3600  # no commit is in flight for an hour: an older claim with no document is loose


def release_unissued(ctx: Context, tenant: str, grace_s: float = SWEEP_GRACE_S) -> int:
    """The auditor's sweep (an admin scan): release every claim of the tenant's series,
    older than ``grace_s``, that no document carries, such as one left by a process that
    died between its claim and its commit and was never retried. Returns how many."""
    catalogue = ctx.catalogue.get(tenant)
    series = {series_of(tenant, catalogue, org): org for org in catalogue.organizations}
    before = time.time() - grace_s
    found = 0
    for pk, org in series.items():
        by_subscriber: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
        for key, number in ctx.invoice_numbers.claims(pk, older_than=before).items():
            subscriber, _, natural = key.partition(".")
            if subscriber.isdigit():
                by_subscriber[int(subscriber)][(org, natural)] = number
        for subscriber_no, held in by_subscriber.items():
            carried = carried_numbers(ctx, tenant, catalogue, subscriber_no)
            loose = {k: n for k, n in held.items() if (pk, n) not in carried}
            if loose:
                found += len(loose)
                release(ctx, tenant, catalogue, subscriber_no, loose)
        voids: dict[int, dict[str, Claim]] = defaultdict(dict)  # releases cut short after the void
        for key, claim in ctx.invoice_numbers.stale_voids(pk, older_than=before).items():
            subscriber, _, _natural = key.partition(".")
            if subscriber.isdigit():
                voids[int(subscriber)][key] = claim
        for subscriber_no, claims in voids.items():
            found += len(claims)
            finish_release(ctx, tenant, catalogue, subscriber_no, {pk: claims})
    return found


def numbered(ctx: Context, tenant: str, catalogue: Catalogue, operation: Callable[[Number], Changes],
             claims: Claims | None = None) -> Changes:
    """Run a pure ``operation`` that may need invoice numbers (credit notes, balance and
    additional invoices): once to learn which natural keys it asks for, then again with
    the numbers claimed for them. Pure, so both runs decide the same; the claim is by
    claim key, so a retry gets the same numbers. If the second run fails, or asks for
    fewer numbers, what it does not use is released."""
    asked: list[tuple[str, str]] = []

    def record(organization_id: str, key: str) -> int:
        asked.append((organization_id, key))
        return 0

    dry = operation(record)
    if not asked:
        return dry
    subscriber_no = dry.account.number
    own = Claims(ctx, tenant, catalogue) if claims is None else None
    session = claims or own
    assert session is not None
    numbers = session.numbers([(subscriber_no, org, key) for org, key in asked]).get(subscriber_no, {})
    try:
        changes = operation(lambda _org, key: numbers[key])
    except BaseException:
        if own is not None:
            own.close()
        raise
    if own is not None:
        own.committed(changes)  # what the caller will commit: a failed commit releases it (``commit``)
        own.close()
    return changes


def drafts_that_fit(loaded: Loaded | None, account: Account, catalogue: Catalogue, today: date,
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
    with Claims(ctx, tenant, catalogue) as claims:
        for _ in range(MAX_ATTEMPTS):
            loaded = ctx.accounts.load(tenant, subscriber_no)
            if loaded is None:
                raise NotFound(f"subscriber {subscriber_no}")
            history = ctx.accounts.documents(tenant, subscriber_no) if documents else None
            if history is not None:
                loaded = with_documents(loaded, history)  # the credited invoices: the documents say
            account = loaded.account
            changes = numbered(ctx, tenant, catalogue,
                               lambda number, a=account, h=history: operation(a, catalogue, today, number, h), claims)
            if unchanged(loaded, changes):
                return changes
            for sub in changes.subscriptions:
                if sub.id not in loaded.account.subscriptions:  # a restart after a pause: the invoice run must see it
                    ctx.due_index.add(tenant, sub.cadence, subscriber_no, sub.id)
            index_next_visit(ctx, tenant, catalogue, changes.account, today)
            try:
                commit(ctx, tenant, loaded, changes, claims=claims)
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


def commit(ctx: Context, tenant: str, loaded: Loaded | None, changes: Changes, publish_now: bool = True,
           claims: Claims | None = None) -> list[Event]:
    """Commit ``changes``; the outbox to send is this commit's events and any found pending.

    ``publish_now=False`` hands the events back so a batch can send them in one go. The
    invoice numbers the changes carry are marked used in ``claims`` (see ``write``).
    """
    write(ctx, tenant, loaded, changes, claims)
    events = [*(loaded.outbox if loaded else []), *changes.events]
    if publish_now:
        publish(ctx, tenant, events)
    return events


def write(ctx: Context, tenant: str, loaded: Loaded | None, changes: Changes,
          claims: Claims | None = None) -> Loaded:
    """The transaction of ``changes``; returns the partition as it is now. The numbers the
    changes carry are marked used in ``claims``; without ``claims``, a transaction that
    fails for any reason but a conflict (which the caller retries with the same claims)
    releases them here, so a failure leaves no gap in the series."""
    try:
        written = ctx.accounts.commit(tenant, loaded, changes)
    except ConcurrencyConflict:
        raise
    except Exception as exc:
        if claims is None:
            release_documents(ctx, tenant, changes, in_doubt=transient(exc))
        raise
    if claims is not None:
        claims.committed(changes)
    return written


def release_documents(ctx: Context, tenant: str, changes: Changes, in_doubt: bool = False) -> None:
    """Release the numbers of the documents in ``changes``, which did not commit."""
    held = {(i.draft.organization_id, i.draft.natural_key): i.number for i in changes.invoices}
    held |= {(c.organization_id, credit_note_key(c.invoice_number)): c.number for c in changes.credit_notes}
    if not held:
        return
    try:
        release(ctx, tenant, ctx.catalogue.get(tenant), changes.account.number, held, in_doubt)
    except Exception:  # the sweep (release_unissued) finds them later
        log.exception("could not release invoice numbers of subscriber %s", changes.account.number)
