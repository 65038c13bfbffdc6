"""Customer service's lists: records that require processing, and payments awaiting approval (P2).

Resolving a set-aside payment onto a subscriber, or approving an identified one, is a
state transition on its inbox record (open -> claimed -> done) guarded by the record's
ETag: of concurrent calls one wins, the others are a ``ConcurrencyConflict`` (409) and
book nothing. A claim whose call died may be taken again after ``RESUME_AFTER`` by the
same target; a booking refused after the claim leaves the record open again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from ...adapters.codec import to_jsonable
from ...domain.payments import PaymentState
from ...formats.payments import IncomingPayment, RecordKind, UnreadableRecord
from ...ports import AwaitingPayment, ConcurrencyConflict, Handling, NotFound, SetAside
from ..context import Context
from .bank_file import same_payment
from .booking import claim_stale
from .manual import ImportResult, PaymentRefused, assigned, book_one


def requires_processing(ctx: Context, tenant: str) -> list[dict[str, object]]:
    """What customer service must look at: payments, reversals, deductions and unreadable records
    set aside, and AvtaleGiro mandates that match no subscriber, each with its reason."""
    return [{"payment_id": a.id, "kind": a.kind, "reason_code": a.reason_code, "reason": a.reason, "file": a.file,
             "report_id": a.report_id or None, "amount_minor": a.amount_minor, "currency": a.currency or None,
             "raw": a.raw or None, "state": a.hold.state.value, "payment": to_jsonable(a.record)}
            for a in ctx.inbox.set_asides(tenant) if a.hold.state is not Handling.DONE]


def resolve(ctx: Context, tenant: str, payment_id: str, subscriber_no: int, organization_id: str,
            invoice_number: int | None, today: date | None = None) -> ImportResult:
    """Assign a set-aside payment to a subscriber (and invoice), which books it once.

    A state transition on the requires-processing row, guarded by its ETag: of two
    concurrent resolves one wins, the other is a ``ConcurrencyConflict`` (409) and books nothing.
    """
    aside = ctx.inbox.set_aside_record(tenant, payment_id)
    if aside is None:
        raise NotFound(f"no payment {payment_id} requires processing")
    if aside.hold.state is Handling.DONE:
        raise ConcurrencyConflict(f"payment {payment_id} was resolved already")
    today = today or ctx.today(ctx.catalogue.get(tenant))
    incoming = _resolvable(aside, today)
    reversed_by = _set_aside_reversal(ctx, tenant, incoming)
    if reversed_by:
        raise PaymentRefused(f"the bank reversed this payment (reversal {reversed_by}, set aside): there is nothing "
                             "to book")
    payment = assigned(ctx, tenant, payment_id, subscriber_no, organization_id, invoice_number,
                        incoming.amount_minor, incoming.payment_date, incoming.source, incoming.reference)
    if payment.currency != incoming.currency:
        raise PaymentRefused(f"the payment is in {incoming.currency}; {organization_id} keeps its books in "
                             f"{payment.currency}")
    if ctx.accounts.load(tenant, subscriber_no) is None:
        raise NotFound(f"subscriber {subscriber_no}")  # before the claim: a wrong number leaves the row open
    _claim(ctx, tenant, aside, "resolved", f"{subscriber_no}|{organization_id}|{invoice_number or ''}")
    with _released_on_refusal(ctx, tenant, aside):
        result = book_one(ctx, tenant, subscriber_no, payment, aside.file, today)
    ctx.inbox.resolved(tenant, aside, subscriber_no)
    return result


def _set_aside_reversal(ctx: Context, tenant: str, payment: IncomingPayment) -> str | None:
    """A reversal of this payment (same KID, amount, account and currency) set aside because the
    payment was not booked: the bank took the money back, so resolving the payment books nothing.
    One query of the requires-processing rows, on a call customer service makes by hand."""
    if payment.reference is None:
        return None
    for aside in ctx.inbox.set_asides(tenant):
        if aside.kind == "reversal" and aside.hold.state is not Handling.DONE and same_payment(aside.record, payment):
            return aside.id
    return None


def _resolvable(aside: SetAside, today: date) -> IncomingPayment:
    """The payment a requires-processing row holds, for customer service to assign: a payment,
    or an unreadable record of a payment whose amount and currency were read (the person
    resolving it reads the raw line; its date, which may be damaged, becomes today's)."""
    kind, record = aside.kind, aside.record
    if kind == "payment" and isinstance(record, IncomingPayment):
        return record
    if kind == "unreadable" and isinstance(record, UnreadableRecord):
        if record.kind is RecordKind.PAYMENT and record.amount_minor is not None and record.currency:
            return IncomingPayment(record.source, record.line_id, record.amount_minor, record.currency, None, today,
                                   payee_account=record.payee_account, raw=record.raw)
        kind = f"unreadable {record.kind.value}"
    raise PaymentRefused(f"{aside.id} is a {kind} set aside, not a payment; it cannot be resolved onto a "
                         "subscriber as one")


def awaiting_approval(ctx: Context, tenant: str) -> list[dict[str, object]]:
    return [{"payment_id": a.id, "subscriber_no": a.subscriber_no, "file": a.file,
             "amount_minor": a.payment.amount_minor, "currency": a.currency,
             "state": PaymentState.AWAITING_APPROVAL.value}
            for a in ctx.inbox.awaiting(tenant) if a.hold.state is not Handling.DONE]


def approve(ctx: Context, tenant: str, payment_id: str, approved_by: str) -> ImportResult:
    """Approve an identified payment: it is booked once; a second or concurrent approval is a conflict."""
    awaiting = ctx.inbox.awaiting_payment(tenant, payment_id)
    if awaiting is None:
        raise NotFound(f"no payment {payment_id} awaits approval")
    if awaiting.reversed_by:
        raise ConcurrencyConflict(f"payment {payment_id} was reversed by the bank ({awaiting.reversed_by}) before "
                                  "it was approved; there is nothing to book")
    _claim(ctx, tenant, awaiting, "approved", approved_by)
    with _released_on_refusal(ctx, tenant, awaiting):
        result = book_one(ctx, tenant, awaiting.subscriber_no, awaiting.payment, awaiting.file,
                           ctx.today(ctx.catalogue.get(tenant)))
    ctx.inbox.approved(tenant, awaiting, approved_by)
    return result


def _claim(ctx: Context, tenant: str, record: SetAside | AwaitingPayment, what: str, target: str) -> None:
    """Move the row from open to claimed under its ETag (one winner among concurrent calls).

    A claim for the same target that was never finished (the process died between claim
    and booking) may be taken again after ``RESUME_AFTER``; booking is idempotent.
    """
    hold = record.hold
    if hold.state is Handling.DONE:
        raise ConcurrencyConflict(f"payment {record.id} was {what} already")
    if hold.state is Handling.CLAIMED and not (hold.target == target and claim_stale(ctx, hold)):
        raise ConcurrencyConflict(f"payment {record.id} is being {what} by another request")
    ctx.inbox.claim(tenant, record, target, ctx.clock.now())


@contextmanager
def _released_on_refusal(ctx: Context, tenant: str, record: SetAside | AwaitingPayment) -> Iterator[None]:
    """A booking refused after the claim (nothing booked) leaves the record open again."""
    try:
        yield
    except (PaymentRefused, NotFound):
        ctx.inbox.release(tenant, record)
        raise
