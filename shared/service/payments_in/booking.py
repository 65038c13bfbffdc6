"""Booking onto a subscriber's ledger: payments, reversals and AvtaleGiro mandates (P2, P5).

Every booking is one operation of the unit of work (``unit_of_work.UnitOfWork.change``):
read the partition, decide (pure, in the domain), commit with the outbox, retry on a
conflict, publish. Each subscriber's payments are booked in transactions of up to
``PAYMENTS_PER_COMMIT`` (``account.receive_payment``); a payment's row is *created*, so a
retry after a conflict first looks which of its payments a racer booked (an import run
again) and books only the rest. A reversal is booked against the payment it takes back
(``account.reverse_payment``); one whose payment still awaits approval takes that payment
back before it can be approved (``_reverse_awaiting``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

from ...domain.account import Changes, apply_mandate, receive_payment, reversal_target, reverse_payment
from ...domain.demands import OpenDemand
from ...domain.import_report import Outcome, Reason
from ...domain.invoicing import Invoice
from ...domain.limits import ValueOutOfRange
from ...domain.payments import BookedPayment, ReceivedPayment
from ...formats.payments import MandateRecord
from ...ports import ConcurrencyConflict, Handling, Hold, StorageLimit, TooManyEntities
from ..buckets import PartitionOutcome, in_partition
from ..context import Context
from ..unit_of_work import MAX_ATTEMPTS, NoSuchSubscriber, Seen, UnitOfWork

log = logging.getLogger(__name__)
PAYMENTS_PER_COMMIT = 10  # at most ~7 entities each, with room for the subscriber row and outbox
RESUME_AFTER = timedelta(seconds=60)  # a resolve or approval claimed this long ago and not finished may be redone
Landed = tuple[Outcome, Reason | None, str]  # where a payment landed, why it was set aside


def book(uow: UnitOfWork, subscriber_no: int, payments: Sequence[ReceivedPayment],
         raced: bool = False) -> dict[str, Landed]:
    """Book one subscriber's payments; where each landed (booked, already booked, or set aside
    because the subscriber does not exist or the booking cannot be written) and why.

    Threads may share ``uow`` (a chunk of a bank file books its subscribers in parallel);
    with ``collect`` it keeps the events for one ``flush``. ``raced``: a first attempt to book
    them together with others failed (``book_in_partition``), so this goes on as its retry.
    """
    landed: dict[str, Landed] = {}
    per_commit = PAYMENTS_PER_COMMIT
    pending = list(payments)
    while pending:
        chunk = pending[:per_commit]
        try:
            landed |= _book_together(uow, subscriber_no, chunk, raced)
        except NoSuchSubscriber:
            return landed | {p.id: (Outcome.SET_ASIDE, Reason.NO_SUCH_SUBSCRIBER, f"KID {p.reference} names "
                                    f"subscriber {subscriber_no}, who does not exist") for p in pending}
        except (StorageLimit, ValueOutOfRange) as exc:  # nothing was sent: one payment at a time, then set aside
            if len(chunk) > 1:
                per_commit = 1
                continue
            landed[chunk[0].id] = _unbookable(exc)
        pending = pending[len(chunk):]
    return landed


def _book_together(uow: UnitOfWork, subscriber_no: int, payments: Sequence[ReceivedPayment],
                   raced: bool = False) -> dict[str, Landed]:
    """These payments in one transaction; on a retry (``raced``: the first attempt was made
    with the subscriber's bucket), those a racer booked first are left out."""
    before: set[str] = set()

    def decide(seen: Seen) -> Changes:
        if seen.attempt or raced:  # a conflict: perhaps another import of the same file booked some (point reads)
            before.update(uow.ctx.accounts.booked(uow.tenant, subscriber_no, [p.id for p in payments]))
        return _receive(seen, [p for p in payments if p.id not in before])

    uow.change(subscriber_no, decide, visits=False)
    return {p.id: (Outcome.ALREADY_BOOKED if p.id in before else Outcome.BOOKED, None, "") for p in payments}


def _receive(seen: Seen, payments: Sequence[ReceivedPayment]) -> Changes:
    """These payments onto the account as ``seen``, one after the other (pure)."""
    changes = Changes(seen.account)
    for p in payments:
        changes = changes.then(receive_payment(changes.account, p, seen.catalogue, seen.today))
    return changes


def book_in_partition(uow: UnitOfWork, payments: Mapping[int, Sequence[ReceivedPayment]]) -> dict[str, Landed]:
    """Book the payments of subscribers who share one partition (``buckets.grouped``): one read of
    the partition, each subscriber's payments decided at once and committed with the others' in
    as few transactions as the limits allow (``buckets.in_partition``). Whoever that path cannot
    settle is booked alone (``book``), which lands each payment exactly as it always has: a
    subscriber with more than ``PAYMENTS_PER_COMMIT`` payments, one not read (no such
    subscriber), one whose commit conflicted (a racer, customer service, a payment row an import
    of the same file created first) or failed (a limit, a passing storage error). For those two,
    the attempt together was the first attempt: booked alone, they go on as its retry (``raced``),
    which first looks which payments a racer (or the lost answer of that attempt) booked."""
    landed: dict[str, Landed] = {}
    few = [n for n, items in payments.items() if 0 < len(items) <= PAYMENTS_PER_COMMIT]
    alone = {n: False for n in payments if n not in few}
    if few:
        try:
            seen = uow.read_many(few)
        except Exception:  # the partition could not be read: each subscriber alone, as before
            log.warning("%s: subscribers %s could not be read together; each alone", uow.tenant, few, exc_info=True)
            seen = {}
        try:
            outcome = in_partition(uow, seen, lambda n: partial(_receive, payments=payments[n]), visits=False)
        except Exception:  # the commit's outcome unknown: each alone, as a retry
            log.warning("%s: subscribers %s could not be booked together; each alone", uow.tenant, few,
                        exc_info=True)
            outcome = PartitionOutcome(failed=dict.fromkeys(seen, RuntimeError("booked together")))
        for n in outcome.committed:
            landed |= {p.id: (Outcome.BOOKED, None, "") for p in payments[n]}
        alone |= {n: n in outcome.failed or n in outcome.conflicted for n in few if n not in outcome.committed}
    for n, raced in alone.items():
        landed |= book(uow, n, payments[n], raced)
    return landed


def _unbookable(exc: Exception) -> Landed:
    """Where a payment goes whose booking cannot be written (nothing was sent): set aside with the
    reason, so one payment never stops the others of its file (``book``)."""
    if isinstance(exc, TooManyEntities):
        return (Outcome.SET_ASIDE, Reason.TOO_MANY_DEMANDS, "settles more open invoices at once than one "
                f"transaction can book ({exc}): customer service books it in parts")
    return (Outcome.SET_ASIDE, Reason.CANNOT_BOOK, f"cannot be booked as it is ({exc}): for customer service")


@dataclass
class _Reversal:
    """What the decision on a reversal found besides its changes (it is re-run on a conflict)."""

    landed: tuple[Outcome, str] = (Outcome.REVERSED, "")
    booked: frozenset[str] | None = None  # the subscriber's booked payment ids, when none was the target


def book_reversal(uow: UnitOfWork, subscriber_no: int, reversal: ReceivedPayment) -> tuple[Outcome, str]:
    """Book a reversal against the payment it takes back (same KID and amount), or say why not.
    A payment still awaiting approval is taken back before it is booked (``_reverse_awaiting``);
    while an approval is booking it, the reversal waits and looks again."""
    for wait in range(MAX_ATTEMPTS):
        found = _Reversal()
        try:
            uow.change(subscriber_no, partial(_reverse_booked, uow, reversal, found))
        except NoSuchSubscriber:
            return Outcome.SET_ASIDE, f"reversal of a payment we cannot find: subscriber {subscriber_no} does not exist"
        if found.booked is None:
            return found.landed
        taken = _reverse_awaiting(uow.ctx, uow.tenant, subscriber_no, reversal, found.booked)
        if taken is not None:
            return (Outcome.REVERSED, "") if taken else (Outcome.SET_ASIDE, (
                f"reversal of a payment we cannot find: no payment of {reversal.amount_minor} by KID "
                f"{reversal.reference} is booked for subscriber {subscriber_no}"))
        time.sleep(0.05 * (wait + 1))  # an approval is booking it right now: look again
    raise ConcurrencyConflict(f"reversal for subscriber {subscriber_no}: its payment stayed held by an approval")


def _reverse_booked(uow: UnitOfWork, reversal: ReceivedPayment, found: _Reversal, seen: Seen) -> Changes:
    """The reversal against the booked payment it takes back; nothing if it was booked before, or
    if no booked payment is its target (``found`` says which)."""
    subscriber_no = seen.account.number
    booked = uow.ctx.accounts.payments(uow.tenant, subscriber_no)
    found.landed, found.booked = (Outcome.REVERSED, ""), None
    if any(b.payment.id == reversal.id for b in booked):
        found.landed = (Outcome.ALREADY_BOOKED, "")
        return Changes(seen.account)
    original = reversal_target(booked, reversal.reference, reversal.amount_minor, reversal.id)
    if original is None:
        found.booked = frozenset(b.payment.id for b in booked)
        return Changes(seen.account)
    taking_back = replace(reversal, organization_id=original.payment.organization_id, reverses=original.payment.id)
    invoices = _invoices(uow.ctx, uow.tenant, subscriber_no, seen.account.open_demands, original)
    return reverse_payment(seen.account, taking_back, original, invoices, seen.today)


def _reverse_awaiting(ctx: Context, tenant: str, subscriber_no: int, reversal: ReceivedPayment,
                      booked: frozenset[str]) -> bool | None:
    """Take back a payment of the same subscriber, KID and amount that awaits approval: its row
    goes from open to done (``ReversedBy``) under its ETag, so no approval can book it after.

    True if taken back (now or by this reversal before), False if there is none, None if an
    approval holds one (claimed, or done but not yet among ``booked``): the caller looks again.
    Reads the awaiting rows only for a reversal that found no booked payment (rare).
    """
    race = False
    for awaiting in ctx.inbox.awaiting(tenant):
        if awaiting.reversed_by == reversal.id:
            return True
        payment = awaiting.payment
        if (awaiting.subscriber_no != subscriber_no or payment.reference != reversal.reference
                or payment.amount_minor != reversal.amount_minor or awaiting.reversed_by or payment.id in booked):
            continue  # another payment, taken back already, or booked (``reversal_target`` saw it)
        state = awaiting.hold.state
        if state is Handling.CLAIMED and claim_stale(ctx, awaiting.hold):
            state = Handling.OPEN  # the approval died between its claim and the booking: nothing was booked
        if state is not Handling.OPEN:  # being booked, or booked since ``booked`` was read
            race = True
        else:
            try:
                ctx.inbox.take_back(tenant, awaiting, reversal.id)
            except ConcurrencyConflict:
                return None
            return True
    return None if race else False


def _invoices(ctx: Context, tenant: str, subscriber_no: int, open_demands: Mapping[int, OpenDemand],
              original: BookedPayment) -> dict[int, Invoice]:
    """The invoices a reversal may reopen: those the payment paid that are no longer open."""
    found = {}
    for a in original.allocations:
        if a.demand_no not in open_demands:
            invoice = ctx.accounts.invoice(tenant, subscriber_no, a.demand_no)
            if invoice is not None:
                found[a.demand_no] = invoice
    return found


def book_mandate(uow: UnitOfWork, subscriber_no: int, organization_id: str, record: MandateRecord) -> bool:
    """An AvtaleGiro mandate onto the subscriber's payment agreements; False if there is no such subscriber."""
    try:
        uow.change(subscriber_no, lambda seen: apply_mandate(
            seen.account, organization_id, record.kid, record.registration != "deleted", record.notify, seen.today),
            visits=False)
    except NoSuchSubscriber:
        return False
    return True


def claim_stale(ctx: Context, hold: Hold) -> bool:
    """A claim older than ``RESUME_AFTER``: the call that took it died before it finished."""
    return hold.claimed_at is not None and ctx.clock.now() - hold.claimed_at >= RESUME_AFTER
