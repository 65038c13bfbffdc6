"""Booking onto a subscriber's ledger: payments, reversals and AvtaleGiro mandates (P2, P5).

Each subscriber's payments are booked in transactions of up to ``PAYMENTS_PER_COMMIT``
(``account.receive_payment``); a payment's row is *created*, so one booked before (an
import run again) is found, not booked twice. A reversal is booked against the payment it
takes back (``account.reverse_payment``); one whose payment still awaits approval takes
that payment back before it can be approved (``_reverse_awaiting``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta

from ...domain.account import Changes, Event, apply_mandate, receive_payment, reversal_target, reverse_payment
from ...domain.catalogue import Catalogue
from ...domain.demands import OpenDemand
from ...domain.import_report import Outcome, Reason
from ...domain.invoicing import Invoice
from ...domain.limits import ValueOutOfRange
from ...domain.payments import BookedPayment, ReceivedPayment
from ...formats.payments import MandateRecord
from ...ports import ConcurrencyConflict, Handling, Hold, StorageLimit, TooManyEntities
from ..context import Context
from ..unit_of_work import index_next_visit, publish

PAYMENTS_PER_COMMIT = 10  # at most ~7 entities each, with room for the subscriber row and outbox
RESUME_AFTER = timedelta(seconds=60)  # a resolve or approval claimed this long ago and not finished may be redone
Landed = tuple[Outcome, Reason | None, str]  # where a payment landed, why it was set aside


def book(ctx: Context, tenant: str, subscriber_no: int, payments: list[ReceivedPayment], file: str,
         today: date, outbox: list[Event] | None = None) -> dict[str, Landed]:
    """Book one subscriber's payments; where each landed (booked, already booked, or set aside
    because the subscriber does not exist) and why.

    Outbox events are sent at once, or appended to ``outbox`` for the caller to send in
    one batch (list.extend is atomic under the GIL, so threads may share it).
    """
    catalogue = ctx.catalogue.get(tenant)
    landed: dict[str, Landed] = {}
    per_commit = PAYMENTS_PER_COMMIT
    pending = list(payments)
    for _ in range(10 + 2 * len(payments)):
        if not pending:
            break
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return landed | {p.id: (Outcome.SET_ASIDE, Reason.NO_SUCH_SUBSCRIBER, f"KID {p.reference} names "
                                    f"subscriber {subscriber_no}, who does not exist") for p in pending}
        chunk = pending[:per_commit]
        changes = Changes(loaded.account)
        try:
            for p in chunk:
                changes = changes.then(receive_payment(changes.account, p, catalogue, today))
            ctx.accounts.commit(tenant, loaded, changes)
        except (StorageLimit, ValueOutOfRange) as exc:  # nothing was sent: one payment at a time, then set aside
            if len(chunk) > 1:
                per_commit = 1
                continue
            landed[chunk[0].id] = _unbookable(exc)
            pending = pending[1:]
            continue
        except ConcurrencyConflict:
            done = ctx.accounts.booked(tenant, subscriber_no, [p.id for p in chunk])
            landed |= {i: (Outcome.ALREADY_BOOKED, None, "") for i in done}
            pending = [p for p in pending if p.id not in done]
            continue
        events = [*loaded.outbox, *changes.events]
        if outbox is None:
            publish(ctx, tenant, events)
        else:
            outbox.extend(events)
        landed |= {p.id: (Outcome.BOOKED, None, "") for p in chunk}
        pending = pending[len(chunk):]
    if pending:
        raise ConcurrencyConflict(f"payments for subscriber {subscriber_no} kept conflicting")
    return landed


def _unbookable(exc: Exception) -> Landed:
    """Where a payment goes whose booking cannot be written (nothing was sent): set aside with the
    reason, so one payment never stops the others of its file (``book``)."""
    if isinstance(exc, TooManyEntities):
        return (Outcome.SET_ASIDE, Reason.TOO_MANY_DEMANDS, "settles more open invoices at once than one "
                f"transaction can book ({exc}): customer service books it in parts")
    return (Outcome.SET_ASIDE, Reason.CANNOT_BOOK, f"cannot be booked as it is ({exc}): for customer service")


def book_reversal(ctx: Context, tenant: str, catalogue: Catalogue, today: date, subscriber_no: int,
                  reversal: ReceivedPayment) -> tuple[Outcome, str]:
    """Book a reversal against the payment it takes back (same KID and amount), or say why not.
    A payment still awaiting approval is taken back before it is booked (``_reverse_awaiting``)."""
    for attempt in range(10):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return Outcome.SET_ASIDE, f"reversal of a payment we cannot find: subscriber {subscriber_no} does not exist"
        booked = ctx.accounts.payments(tenant, subscriber_no)
        if any(b.payment.id == reversal.id for b in booked):
            return Outcome.ALREADY_BOOKED, ""
        original = reversal_target(booked, reversal.reference, reversal.amount_minor, reversal.id)
        if original is None:
            awaiting = _reverse_awaiting(ctx, tenant, subscriber_no, reversal, {b.payment.id for b in booked})
            if awaiting is None:  # an approval is booking it right now: look again
                time.sleep(0.05 * (attempt + 1))
                continue
            if awaiting:
                return Outcome.REVERSED, ""
            return Outcome.SET_ASIDE, (f"reversal of a payment we cannot find: no payment of {reversal.amount_minor} "
                                       f"by KID {reversal.reference} is booked for subscriber {subscriber_no}")
        reversal = replace(reversal, organization_id=original.payment.organization_id, reverses=original.payment.id)
        invoices = _invoices(ctx, tenant, subscriber_no, loaded.account.open_demands, original)
        changes = reverse_payment(loaded.account, reversal, original, invoices, today)
        index_next_visit(ctx, tenant, catalogue, changes.account, today)
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        publish(ctx, tenant, [*loaded.outbox, *changes.events])
        return Outcome.REVERSED, ""
    raise ConcurrencyConflict(f"reversal for subscriber {subscriber_no} kept conflicting")


def _reverse_awaiting(ctx: Context, tenant: str, subscriber_no: int, reversal: ReceivedPayment,
                      booked: set[str]) -> bool | None:
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


def book_mandate(ctx: Context, tenant: str, subscriber_no: int, organization_id: str, record: MandateRecord,
                   today: date) -> bool:
    for _ in range(10):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return False
        changes = apply_mandate(loaded.account, organization_id, record.kid, record.registration != "deleted",
                                record.notify, today)
        if changes.empty:
            return True
        try:
            ctx.accounts.commit(tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        publish(ctx, tenant, [*loaded.outbox, *changes.events])
        return True
    raise ConcurrencyConflict(f"mandate for subscriber {subscriber_no} kept conflicting")


def claim_stale(ctx: Context, hold: Hold) -> bool:
    """A claim older than ``RESUME_AFTER``: the call that took it died before it finished."""
    return hold.claimed_at is not None and ctx.clock.now() - hold.claimed_at >= RESUME_AFTER
