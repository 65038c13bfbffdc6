"""The unit of work: every business operation on one subscriber goes through it.

    with UnitOfWork(ctx, tenant) as uow:                     # or: change(ctx, tenant, n, decide)
        changes = uow.change(subscriber_no, decide, documents=True)

``decide(seen: Seen) -> Changes`` is the pure decision: it gets the partition as read
(``seen.account``, ``seen.loaded``, ``seen.history`` with ``documents=True``), the
catalogue, the day, and ``seen.number(organisation, natural key)`` for the invoice number
of a document it issues. ``UnitOfWork.change`` then:

1. reads the subscriber partition (``NoSuchSubscriber`` if none, unless ``new`` gives the
   account a new subscriber starts with);
2. runs the decision, twice if it asks for invoice numbers (``numbered``): once to learn
   the natural keys, then with the numbers claimed for them in the session's ``Claims``
   (gapless: what no commit carried is released when the session ends, numbering.py);
3. indexes what the runs must find, ahead of the commit (a new subscription in the due
   index, the next dunning visit in the dunning index);
4. commits in one entity-group transaction with the outbox events, and publishes them
   after (``collect=True``: kept for one ``flush`` per batch);
5. on a ``ConcurrencyConflict`` reads again and decides again, at most ``MAX_ATTEMPTS``
   times in a row (the one retry limit; a commit of a part counts anew), then raises ``Conflicted``.

``parts=n``: a decision too big for one transaction goes on in further transactions, on
what the last committed (the dunning visit, a backlog of renewals). ``numbers``: claimed
up front for a batch (one claim per series, ``isolation.for_each_subscriber``). ``touch``:
a visit that changes nothing still indexes its next day and sends the outbox it found.

The batch runner ("do this to each of these subscribers", with the fast path, set-aside,
redo alone and attention rows) is ``isolation.for_each_subscriber``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from ..adapters.bus import ACCESS, CHARGES, EVENTS, NOTICES, event_message
from ..adapters.numbering import series_key
from ..adapters.tables import MAX_BATCH
from ..domain.account import Account, Changes, due_drafts
from ..domain.catalogue import Catalogue
from ..domain.credit import Number, credit_note_key
from ..domain.dunning_visit import next_visit
from ..domain.events import Event
from ..domain.identity import needs_access
from ..domain.invoicing import InvoiceDraft
from ..ports import ConcurrencyConflict, History, Loaded, NotFound, transient, with_documents
from ..ports import NumberClaim as Claim
from .access import marked
from .context import Context

log = logging.getLogger(__name__)
ENTITIES_PER_DRAFT = 4  # invoice, its open demand row, ledger entry, outbox event
ENTITIES_PER_CHARGE = 2  # a subscriber with a Vipps / card agreement: the charge row and its ChargeRequested (P6)


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
             + (len(loaded.outbox) if loaded else 0) + extra_entities
             + (1 if needs_access(account) else 0))  # its AccessChanged (access.marked)
    per_draft = ENTITIES_PER_DRAFT + (ENTITIES_PER_CHARGE if account.agreements else 0)
    room = (MAX_BATCH - fixed) // per_draft
    return due_drafts(account, catalogue, today)[: max(room, 0)]


def unchanged(loaded: Loaded, changes: Changes) -> bool:
    """Nothing to commit: no rows added and the account as it was loaded (an operation may
    change only the subscriber row, such as a balance check done with or an order block)."""
    return changes.empty and changes.account == loaded.account


MAX_ATTEMPTS = 10  # the one retry limit: transactions one operation tries before a conflict is the caller's
MAX_PARTS = 100  # transactions one decision may take in parts (a payment stop crediting 500 invoices takes ~50)


class NoSuchSubscriber(NotFound):
    """The subscriber has no partition, and the operation gave no account to start one (``new``)."""


class Conflicted(ConcurrencyConflict):
    """The partition kept changing under the operation (``attempts`` conflicts). ``done``: what
    committed before the conflict, for a decision taken in parts (None: nothing did)."""

    def __init__(self, message: str, done: Changes | None = None) -> None:
        super().__init__(message)
        self.done = done


@dataclass(frozen=True)
class Seen:
    """What a decision is given: the subscriber's partition as read, and what it may ask for.

    ``number(organisation id, natural key)`` gives the invoice number of a document the
    decision issues (see ``numbered``). ``loaded`` is None for a new subscriber (``new``);
    ``history`` holds the documents if the operation asked for them (``documents=True``).
    ``attempt`` counts the conflicts since the last commit (a retry may look at what raced it); ``part`` is
    0 until the operation has committed a transaction, then how many it has (a decision
    taken in parts). Fields may be added; decisions read the ones they need by name."""

    account: Account
    catalogue: Catalogue
    today: date
    number: Number
    loaded: Loaded | None = None
    history: History | None = None
    attempt: int = 0
    part: int = 0


Decision = Callable[[Seen], Changes]
Declare = Callable[[Seen], Iterable[tuple[str, str]]]  # (organisation, natural key) a decision will number


def _no_number(organization_id: str, key: str) -> int:
    raise RuntimeError(f"no invoice number may be asked for here ({organization_id}, {key})")


class UnitOfWork:
    """One tenant's session of business operations: its catalogue, its day, the invoice
    numbers claimed (``Claims``: released on the way out if no commit carried them) and,
    for a batch (``collect=True``), the outbox events its commits raised, sent in one go
    by ``flush`` (also on the way out). Use it as a context manager::

        with UnitOfWork(ctx, tenant) as uow:
            changes = uow.change(subscriber_no, lambda seen: lifecycle.pause(seen.account, ...))

    or, for one operation, the module function ``change(ctx, tenant, subscriber_no, decide)``.
    Threads may share one (a batch does): ``change`` keeps no state of its own on it.
    """

    def __init__(self, ctx: Context, tenant: str, today: date | None = None, *, claims: Claims | None = None,
                 collect: bool = False, catalogue: Catalogue | None = None) -> None:
        self.ctx, self.tenant = ctx, tenant
        self.catalogue = catalogue or (claims.catalogue if claims else ctx.catalogue.get(tenant))
        self.today = today or ctx.today(self.catalogue)
        self._own = claims is None
        self.claims = claims or Claims(ctx, tenant, self.catalogue)
        self.outbox: list[Event] | None = [] if collect else None
        self._lock = threading.Lock()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, kind: object, failure: BaseException | None, tb: object) -> None:
        self.flush()
        if self._own:
            self.claims.__exit__(kind, failure, tb)

    def alone(self) -> UnitOfWork:
        """A session sharing this one's day and claims that sends each commit's events at once:
        a batch's redo of one subscriber after its fast path."""
        return UnitOfWork(self.ctx, self.tenant, self.today, claims=self.claims, catalogue=self.catalogue)

    def read(self, subscriber_no: int, documents: bool = False, new: Callable[[], Account] | None = None) -> Seen:
        """The subscriber's partition (and documents) as a decision sees it; ``NoSuchSubscriber``
        if there is none and ``new`` does not give the account to start one."""
        loaded = self.ctx.accounts.load(self.tenant, subscriber_no)
        history = self.ctx.accounts.documents(self.tenant, subscriber_no) if documents and loaded else None
        if loaded is not None and history is not None:
            loaded = with_documents(loaded, history)  # the credited invoices: the documents say
        if loaded is not None:
            account = loaded.account
        elif new is not None:
            account = new()
        else:
            raise NoSuchSubscriber(f"subscriber {subscriber_no}")
        return Seen(account, self.catalogue, self.today, _no_number, loaded, history)

    def read_many(self, subscriber_nos: Sequence[int]) -> dict[int, Seen]:
        """Many subscribers' partitions as decisions see them, in one query per bucket
        (``Accounts.load_many``); those with no partition are left out."""
        loaded = self.ctx.accounts.load_many(self.tenant, subscriber_nos)
        return {n: Seen(one.account, self.catalogue, self.today, _no_number, one) for n, one in loaded.items()}

    def decide(self, seen: Seen, decide: Decision, numbers: Mapping[str, int] | None = None) -> Changes:
        """``decide`` once, with the numbers claimed up front (``numbers``) or claimed now."""
        return self._decide(seen, decide, numbers)

    def change(self, subscriber_no: int, decide: Decision, *, documents: bool = False,
               new: Callable[[], Account] | None = None, parts: int = 1, attempts: int = MAX_ATTEMPTS,
               seen: Seen | None = None, numbers: Mapping[str, int] | None = None, touch: bool = False,
               visits: bool = True) -> Changes:
        """One business operation on one subscriber, in one transaction (or ``parts``):

        1. read the partition (``read``; ``seen``: already read, for the first attempt);
        2. ``decide`` (pure) what changes, with invoice numbers claimed for what it issues
           (``numbered``; ``numbers``: claimed up front for the first attempt, as a batch does);
        3. index what the runs must see (a new subscription in the due index, the next dunning
           visit), ahead of the commit;
        4. commit in one entity-group transaction with the outbox, then publish it (or collect
           it, ``collect``); a ``ConcurrencyConflict`` reads again and decides again, at most
           ``attempts`` times in a row without a commit between (then ``Conflicted``).

        Nothing to commit returns the unchanged ``Changes``. ``parts`` > 1: a decision too big
        for one transaction goes on, on what the last one committed, until it decides nothing
        more or has taken ``parts`` transactions; the ``Changes`` returned are all of them.
        ``touch``: a visit that decides nothing still indexes its next day and sends the
        outbox rows it found (the dunning run). ``visits=False``: the dunning index is not
        written (renewal invoices: the dunning run finds them by cadence in the due index)."""
        done: Changes | None = None
        tries, attempt = 0, 0  # attempt: conflicts since the last commit (each part had the whole limit before)
        while attempt < attempts:
            first = seen if seen is not None and tries == 0 else self.read(subscriber_no, documents, new)
            try:
                return self._parts(replace(first, attempt=attempt), decide, done,
                                   _How(parts, numbers if tries == 0 else None, touch, visits))
            except _Conflict as conflict:
                attempt = 1 if conflict.done is not done else attempt + 1  # a part committed: count anew
                done, tries = conflict.done, tries + 1
        raise Conflicted(f"subscriber {subscriber_no} kept changing", done)

    def _parts(self, seen: Seen, decide: Decision, done: Changes | None, how: _How) -> Changes:
        loaded = seen.loaded
        pending: list[Event] = list(loaded.outbox) if loaded else []  # sent after the commit that clears them
        part = 0 if done is None else 1  # a retry goes on from what the attempts before committed
        seen = replace(seen, part=part)
        wrote = False
        while True:
            changes = self._decide(seen, decide, how.numbers if part == 0 else None)
            if part and unchanged_or_new(loaded, changes):
                if not wrote:  # a retry finding the rest done by its racer: the outbox is the racer's to send
                    return done if done is not None else changes
                break  # done: found in memory, at no cost
            if how.touch or not unchanged_or_new(loaded, changes):
                self.index(loaded, changes, how.visits)
            if unchanged_or_new(loaded, changes):
                if how.touch:
                    self.publish(pending)
                return changes if done is None else done
            if part:  # the part before left its events in the outbox, which this commit clears: send first
                publish(self.ctx, self.tenant, pending)
                pending = []
            changes = marked(loaded, changes)  # AccessChanged, for an account with logins or IP ranges only
            try:
                loaded = write(self.ctx, self.tenant, loaded, changes, self.claims)
            except ConcurrencyConflict:
                raise _Conflict(done) from None
            pending += changes.events
            wrote = True
            done = changes if done is None else done.then(changes)
            part += 1
            if part >= how.parts:
                break
            seen = replace(seen, account=loaded.account, loaded=loaded, part=part)
        self.publish(pending)
        return done if done is not None else changes

    def _decide(self, seen: Seen, decide: Decision, numbers: Mapping[str, int] | None) -> Changes:
        if numbers is not None:  # claimed up front: one run, unless it asks for a number not claimed
            asked: list[str] = []

            def given(_organization_id: str, key: str) -> int:
                if key not in numbers:
                    asked.append(key)
                return numbers.get(key, 0)

            changes = decide(replace(seen, number=given))
            if not asked:
                return changes
        return numbered(self.ctx, self.tenant, self.catalogue, lambda number: decide(replace(seen, number=number)),
                        self.claims)

    def index(self, loaded: Loaded | None, changes: Changes, visits: bool = True) -> None:
        """Enter what the runs must find before the commit that makes it so: a subscription
        new to the partition in the due index (an order, a restart after a pause), and the
        day of the next dunning visit (indexes.py: written ahead)."""
        known = loaded.account.subscriptions if loaded else {}
        for sub in changes.subscriptions:
            if sub.id not in known:
                self.ctx.due_index.add(self.tenant, sub.cadence, changes.account.number, sub.id)
        if visits:
            index_next_visit(self.ctx, self.tenant, self.catalogue, changes.account, self.today)

    def publish(self, events: Sequence[Event]) -> None:
        """Send committed events now, or keep them for ``flush`` (``collect``)."""
        if self.outbox is None:
            publish(self.ctx, self.tenant, events)
            return
        with self._lock:
            self.outbox += events

    def flush(self) -> None:
        """Send the events collected so far, in one bus batch."""
        if self.outbox:
            with self._lock:
                events, self.outbox = self.outbox, []
            publish(self.ctx, self.tenant, events)


@dataclass(frozen=True)
class _How:
    parts: int
    numbers: Mapping[str, int] | None
    touch: bool
    visits: bool


class _Conflict(Exception):
    def __init__(self, done: Changes | None) -> None:
        super().__init__("conflict")
        self.done = done


def unchanged_or_new(loaded: Loaded | None, changes: Changes) -> bool:
    """Nothing to commit (``unchanged``); a new subscriber always has its row to write."""
    return loaded is not None and unchanged(loaded, changes)


def change(ctx: Context, tenant: str, subscriber_no: int, decide: Decision, *, today: date | None = None,
           documents: bool = False, new: Callable[[], Account] | None = None, parts: int = 1,
           touch: bool = False, visits: bool = True) -> Changes:
    """One business operation on one subscriber through its own ``UnitOfWork`` (see
    ``UnitOfWork.change``); ``today`` defaults to the tenant's."""
    with UnitOfWork(ctx, tenant, today) as uow:
        return uow.change(subscriber_no, decide, documents=documents, new=new, parts=parts, touch=touch,
                          visits=visits)


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
    try:
        ctx.bus.send(EVENTS, [event_message(tenant, e) for e in events])
        ctx.bus.send(NOTICES, [event_message(tenant, e) for e in events if e.NOTICE])
        ctx.bus.send(CHARGES, [event_message(tenant, e) for e in events if e.CHARGE])
        ctx.bus.send(ACCESS, [event_message(tenant, e) for e in events if e.ACCESS])
    except Exception:
        log.exception("outbox: %d events for %s not sent; kept for the next attempt", len(events), tenant)


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
