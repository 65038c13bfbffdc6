"""Provider charges (P6): create the charges the invoice run requested, follow them to their
outcome, refund them, and poll what no webhook settled.

* ``create_requested`` (the ``charges`` worker, one bus message = ``ChargeRequested`` events
  of one tenant): each charge row still ``requested`` is created at its provider. Vipps: the
  agreement's price is synced first where it differs, then all charges go in one bulk call;
  a charge Vipps refuses ended ``creation_failed`` (handled as any failure); a created one
  gets a ``Watch`` for the day its outcome should be known. Card: an unscheduled purchase
  with the subscriber's token and the charge id as payeeReference, captured at once; the
  synchronous answer and a GET of the payment order are the truth (Swedbank Pay sends no
  callback for these), reconciled right away. A transient failure is raised at the end, so
  the bus delivers the message again (every call is idempotent by the charge id); one
  subscriber's failure never stops the others, and one that is not transient is recorded
  for customer service.
* ``reconcile_charge`` / ``reconcile_vipps_charge`` (webhook worker, poll): one partition
  read, the charge re-read at the provider, and one transaction (``domain.charges.settle``).
* ``refund_charge`` (merchant API) and ``poll`` (the provider timer).

A webhook's body is only a signal: every path re-reads the provider, so duplicates,
replays and reordering end in the same state.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..domain.account import Account, Changes
from ..domain.agreements import (
    CHARGE_ID,
    AgreementStatus,
    Charge,
    ChargeState,
    PaymentAgreement,
    Provider,
    agreement_of_initial_charge,
    notice_due,
    stop_due,
    subscriber_of,
)
from ..domain.charges import (
    Observed,
    captured,
    card_state,
    description,
    kid_of,
    payable,
    pro_rata_vat,
    requested,
    settle,
    vat_share,
    vipps_state,
)
from ..domain.events import ChargeRequested
from ..domain.invoicing import vat_parts
from ..domain.ledger import EntryKind
from ..domain.payments import PaymentKind
from ..ports import CardPaymentOrder, ChargeRequest, NotFound, ProviderRefused, VippsCharge, Watch, transient
from . import checkout
from .context import Context
from .isolation import record
from .payments_in.manual import book_refund
from .unit_of_work import NoSuchSubscriber, Seen, UnitOfWork

log = logging.getLogger(__name__)
RUN = "charges"  # the attention rows' run name of what the charges worker could not do
BULK = 2000  # Vipps: charges per bulk request
REFUND_DAYS = 365  # Vipps: a charge may be refunded this many days after its capture


# ---- creating requested charges ------------------------------------------------------------------


@dataclass
class _Batch:
    """One message's work: the Vipps charges to create in bulk, and what failed per subscriber."""

    vipps: list[tuple[int, Charge, ChargeRequest]] = field(default_factory=list)
    failures: dict[int, Exception] = field(default_factory=dict)


def create_requested(ctx: Context, tenant: str, requests: Sequence[ChargeRequested]) -> None:
    """Create the charges ``requests`` name (see the module's doc)."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    wanted: dict[int, dict[str, None]] = defaultdict(dict)  # subscriber -> charge ids, in order, once
    for r in requests:
        wanted[r.subscriber_no][r.charge_id] = None
    batch = _Batch()
    with UnitOfWork(ctx, tenant, today, catalogue=catalogue) as uow:
        for number, ids in wanted.items():
            try:
                batch.vipps += _prepare(uow, number, list(ids))
            except Exception as exc:  # this subscriber's alone
                batch.failures[number] = exc
        for start in range(0, len(batch.vipps), BULK):
            _create_vipps(uow, batch.vipps[start:start + BULK], batch.failures)
    _finish(ctx, tenant, today, batch.failures)


def _finish(ctx: Context, tenant: str, today: date, failures: dict[int, Exception]) -> None:
    """A transient failure goes back to the bus (the message is delivered again: idempotent);
    any other is recorded for customer service, so it does not come back for ever."""
    again = [e for e in failures.values() if transient(e)]
    for number, exc in sorted(failures.items()):
        if not transient(exc):
            record(ctx, tenant, RUN, number, today, exc)
    if again:
        log.warning("charges of %s: %d subscribers failed transiently; the message is tried again", tenant,
                    len(again))
        raise again[0]


def _prepare(uow: UnitOfWork, number: int, ids: Sequence[str]) -> list[tuple[int, Charge, ChargeRequest]]:
    """One subscriber's requested charges: cards charged now, Vipps charges returned for the bulk call."""
    try:
        first = uow.read(number)
    except NoSuchSubscriber:
        return []
    account = first.account
    seen: Seen | None = first
    out: list[tuple[int, Charge, ChargeRequest]] = []
    for cid in ids:
        charge = account.charges.get(cid)
        if charge is None or not (charge.state is ChargeState.REQUESTED or _card_open(charge)):
            continue  # created before (a message delivered again), or settled
        agreement = account.agreements.get(charge.agreement_key)
        if agreement is None or not agreement.active:
            why = f"agreement {charge.agreement_key} is not active"
            _apply(uow, number, cid, Observed(ChargeState.CREATION_FAILED, failure_reason=why), seen)
        elif not payable(account, charge):
            why = "the demand was paid before the charge was made"
            _apply(uow, number, cid, Observed(ChargeState.CANCELLED, failure_reason=why), seen)
        elif charge.provider is Provider.VIPPS:
            out.append((number, charge, _vipps_request(uow, account, charge, agreement)))
            continue
        elif charge.due > uow.today:  # a card is charged on the due date: the timer does it then
            uow.ctx.provider_watch.add(uow.tenant, charge.due,
                                       Watch(number, charge.provider.value, charge.agreement_key, charge.id))
            continue
        else:
            _card_charge(uow, number, account, charge, agreement, seen)
        seen = None  # committed (or decided nothing): a further decision reads the partition again
    return out


def price_key(charge: Charge) -> str:
    """The Idempotency-Key of the price update made for a charge: the charge's and the price.
    (A key of agreement and price alone would replay the first answer when a price comes
    back to an earlier one, 100 -> 200 -> 100, and leave the agreement at 200.)"""
    key = f"{charge.id}-p{charge.amount_minor}"
    return key if CHARGE_ID.fullmatch(key) else charge.id


def _vipps_request(uow: UnitOfWork, account: Account, charge: Charge, agreement: PaymentAgreement) -> ChargeRequest:
    ctx, tenant = uow.ctx, uow.tenant
    if agreement.price_minor != charge.amount_minor:
        try:  # LEGACY pricing: an agreement's charges in an interval may not exceed five times its price
            ctx.vipps.update_price(tenant, agreement.provider_id, charge.amount_minor, price_key(charge))
        except ProviderRefused as exc:  # the charge is tried all the same: Vipps says whether it fits
            log.warning("charges of %s: price of agreement %s not updated: %s", tenant, agreement.key, exc)
    return ChargeRequest(agreement.provider_id, charge.id, charge.amount_minor, charge.currency,
                         description(account, uow.catalogue, charge), charge.due, charge.retry_days,
                         kid_of(account, uow.catalogue, charge) or "")


def _card_charge(uow: UnitOfWork, number: int, account: Account, charge: Charge, agreement: PaymentAgreement,
                 seen: Seen | None) -> None:
    """Charge a card: purchase with the token, store the authorization's payment order id with
    the charge (a transaction), capture, read the payment order, settle (a transaction).

    Money is taken only once the payment order id is stored: Swedbank Pay cannot be asked for
    a payment order by its payeeReference, so a purchase whose answer was lost cannot be found
    again (its retry is refused as a used reference, and the authorization lapses at the bank;
    the charge then fails, and dunning asks again with the next attempt). A charge whose
    authorization is stored is captured by the next try, never purchased again."""
    pay, tenant = uow.ctx.swedbankpay, uow.tenant
    vat = vat_share(account, charge)
    if charge.provider_ref:
        order = pay.payment_order(tenant, charge.provider_ref)
    else:
        try:
            order = pay.unscheduled_purchase(tenant, agreement.token, charge.id, charge.amount_minor, vat,
                                             charge.currency, description(account, uow.catalogue, charge))
        except ProviderRefused as exc:
            _apply(uow, number, charge.id, Observed(ChargeState.CREATION_FAILED, failure_reason=exc.detail), seen)
            return
        authorized = card_observed(order)
        _apply(uow, number, charge.id, authorized, seen)  # the authorization, stored first
        if authorized.state.final:  # declined: settled as a failure
            return
    if _capturable(card_observed(order).state):
        try:
            pay.capture(tenant, order.id, charge.amount_minor, vat, f"{charge.id}-cap")
        except ProviderRefused as exc:  # the read below says what the order is
            log.warning("charges of %s: capture of %s refused: %s", tenant, charge.id, exc)
        order = pay.payment_order(tenant, order.id)
    observed = card_observed(order)
    if not observed.state.final:  # neither captured nor failed yet: the timer looks again tomorrow
        uow.ctx.provider_watch.add(tenant, uow.today + timedelta(days=1),
                                   Watch(number, charge.provider.value, charge.agreement_key, charge.id))
    _apply(uow, number, charge.id, observed)


def _capturable(state: ChargeState) -> bool:
    """An authorization (``Paid``, nothing captured), or an order the purchase left ``Initialized``."""
    return state in (ChargeState.RESERVED, ChargeState.PROCESSING)


def _card_open(charge: Charge) -> bool:
    """A card charge the charges worker (or the timer on its due date) still has to take:
    not purchased yet, or authorized and not captured."""
    return charge.provider is Provider.SWEDBANKPAY and (
        charge.state is ChargeState.REQUESTED or (bool(charge.provider_ref) and _capturable(charge.state)))


def card_observed(order: CardPaymentOrder) -> Observed:
    return Observed(card_state(order.status, order.captured_minor), order.captured_minor, order.reversed_minor,
                    order.failure_reason, order.id, order.currency)


def vipps_observed(charge: VippsCharge) -> Observed:
    return Observed(vipps_state(charge.status), charge.captured_minor, charge.refunded_minor, charge.failure_reason,
                    currency=charge.currency)


def _create_vipps(uow: UnitOfWork, items: Sequence[tuple[int, Charge, ChargeRequest]],
                  failures: dict[int, Exception]) -> None:
    """One bulk request; a watch for each charge created, the refused ones settled as failed."""
    ctx, tenant = uow.ctx, uow.tenant
    try:
        answers = ctx.vipps.create_charges(tenant, [r for _, _, r in items])
    except Exception as exc:  # the whole batch: tried again by the bus
        for number, _, _ in items:
            failures.setdefault(number, exc)
        return
    for number, charge, _ in items:
        why = answers.get(charge.id, "no answer for this charge")
        try:
            if why:
                log.info("charges of %s: Vipps refused %s: %s", tenant, charge.id, why)
                _apply(uow, number, charge.id, Observed(ChargeState.CREATION_FAILED, failure_reason=why))
            else:
                ctx.provider_watch.add(tenant, charge.due + timedelta(days=charge.retry_days + 1),
                                       Watch(number, charge.provider.value, charge.agreement_key, charge.id))
        except Exception as exc:
            failures.setdefault(number, exc)


def _apply(uow: UnitOfWork, number: int, cid: str, observed: Observed, seen: Seen | None = None) -> Changes:
    """Settle one charge by what was observed: one transaction (``domain.charges.settle``).
    A failure hands the demand to dunning, which waited for the charge: its next visit is
    indexed (one write, failures only); a capture or news on the way writes no index."""
    hand_over = observed.state.final and not captured(observed.state)
    return uow.change(number, lambda s: settle(s.account, cid, observed, s.catalogue, s.today), seen=seen,
                      visits=hand_over)


# ---- following a charge to its outcome -----------------------------------------------------------


def reconcile_vipps_charge(ctx: Context, tenant: str, agreement_id: str, charge_id: str) -> None:
    """A Vipps charge event (webhook worker): the charge named is re-read and settled. An
    initial charge's agreement is reconciled first (helper checkout), so the order it pays
    is placed before the charge is booked on its invoice. ``agreement_id`` is a signal only:
    the agreement is the one our charge row names."""
    number = subscriber_of(charge_id)
    if number is None:
        log.warning("vipps charge event of %s: %s (agreement %s) is no charge of ours", tenant, charge_id,
                    agreement_id)
        return
    initial_of = agreement_of_initial_charge(charge_id)
    if initial_of is not None:
        checkout.reconcile_agreement(ctx, tenant, number, initial_of)
    reconcile_charge(ctx, tenant, number, charge_id)


def reconcile_charge(ctx: Context, tenant: str, subscriber_no: int, charge_id: str) -> None:
    """Re-read the charge at its provider and settle it (poll, webhook worker)."""
    _reconcile(ctx, tenant, subscriber_no, charge_id)


def _reconcile(ctx: Context, tenant: str, subscriber_no: int, charge_id: str) -> ChargeState | None:
    """The charge's state after: None once settled (no row), else where it is still."""
    with UnitOfWork(ctx, tenant) as uow:
        try:
            seen = uow.read(subscriber_no)
        except NoSuchSubscriber:
            return None
        charge = seen.account.charges.get(charge_id)
        if charge is None:  # settled before: its payment booked, or its failure handed to dunning
            return None
        if _card_due(charge, seen.today):  # its due date, or an authorization to capture: the worker's work
            create_requested(ctx, tenant, [requested(subscriber_no, charge)])
            now = ctx.accounts.load(tenant, subscriber_no)
            left = now.account.charges.get(charge_id) if now is not None else None
            return left.state if left is not None else None
        observed = _observe(ctx, tenant, seen.account, charge, seen.today)
        if observed is None:
            return charge.state
        changes = _apply(uow, subscriber_no, charge_id, observed, seen)
        after = changes.account.charges.get(charge_id)
        return after.state if after is not None else None


def _card_due(charge: Charge, today: date) -> bool:
    """A card charge still to be taken whose day has come."""
    return _card_open(charge) and charge.due <= today


def _observe(ctx: Context, tenant: str, account: Account, charge: Charge, today: date) -> Observed | None:
    """The charge as its provider shows it now; None: nothing to learn yet."""
    if charge.provider is Provider.SWEDBANKPAY:
        if not charge.provider_ref:  # not purchased yet: the charges worker does that
            return None
        return card_observed(ctx.swedbankpay.payment_order(tenant, charge.provider_ref))
    agreement = account.agreements.get(charge.agreement_key)
    if agreement is None or not agreement.provider_id:
        return None
    try:
        return vipps_observed(ctx.vipps.charge(tenant, agreement.provider_id, charge.id))
    except ProviderRefused as exc:
        if exc.status == 404 and today > charge.due:  # it should have been made by now: it never was
            return Observed(ChargeState.CREATION_FAILED, failure_reason=f"not found at Vipps: {exc.detail}")
        if exc.status == 404:
            return None
        raise


# ---- refunds -------------------------------------------------------------------------------------


class RefundRefused(ValueError):
    """A refund that cannot be made (above what was captured, too late, unknown id): a 4xx."""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    charge_id: str
    amount_minor: int
    status: str  # booked | already_booked | pending (the provider does not show it yet: ask again)
    refunded_minor: int  # of the charge, booked on the ledger after this call


def refund_charge(ctx: Context, tenant: str, subscriber_no: int, charge_id: str, amount_minor: int,
                  refund_id: str) -> RefundResult:
    """Refund part or all of a captured charge: at the provider (Vipps refund, Swedbank Pay
    reversal; Idempotency-Key the refund id), then, once a re-read shows it, booked on the
    ledger (``account.refund`` through ``payments_in.manual.book_refund``). Asking again with
    the same refund id books nothing more. ``RefundRefused``: not captured, above what was
    captured, older than 365 days, or a bad id; ``NotFound``: no such subscriber or charge."""
    if not CHARGE_ID.fullmatch(refund_id) or amount_minor <= 0:
        raise RefundRefused("a refund id is 1-40 of A-Z a-z 0-9 - and the amount positive")
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    loaded = ctx.accounts.load(tenant, subscriber_no)
    if loaded is None:
        raise NotFound(f"subscriber {subscriber_no}")
    booked = {b.payment.id: b for b in ctx.accounts.payments(tenant, subscriber_no)
              if b.payment.kind is PaymentKind.PAYMENT}
    paid = next((booked[f"{p.value}.{charge_id}"] for p in Provider if f"{p.value}.{charge_id}" in booked), None)
    if paid is None:
        raise NotFound(f"no captured charge {charge_id} of subscriber {subscriber_no}")
    payment = paid.payment
    provider = Provider(payment.source)
    prefix = f"{payment.id}."
    _, ledger = ctx.accounts.history(tenant, subscriber_no)
    refunds = {e.reference[len(prefix):]: -e.amount_minor for e in ledger
               if e.kind is EntryKind.REFUND and e.reference.startswith(prefix)}
    if refund_id in refunds:
        return RefundResult(refund_id, charge_id, refunds[refund_id], "already_booked", sum(refunds.values()))
    if sum(refunds.values()) + amount_minor > payment.amount_minor:
        raise RefundRefused(f"{amount_minor} is more than is left of the {payment.amount_minor} captured")
    if today > payment.payment_date + timedelta(days=REFUND_DAYS):
        raise RefundRefused(f"charge {charge_id} was captured more than {REFUND_DAYS} days ago")
    vat = _refund_vat(ctx, tenant, subscriber_no, payment.demand_no, amount_minor)
    shown = _provider_refund(ctx, tenant, loaded.account, provider, payment.provider_ref, charge_id,
                             amount_minor, vat, refund_id)
    if shown < sum(refunds.values()) + amount_minor:
        log.info("refund %s of %s: not shown by %s yet", refund_id, charge_id, provider.value)
        return RefundResult(refund_id, charge_id, amount_minor, "pending", sum(refunds.values()))
    fresh = book_refund(ctx, tenant, subscriber_no, payment.organization_id, amount_minor, prefix + refund_id,
                        f"Refund of {provider.value} charge {charge_id}")
    total = sum(refunds.values()) + amount_minor
    return RefundResult(refund_id, charge_id, amount_minor, "booked" if fresh else "already_booked", total)


def _refund_vat(ctx: Context, tenant: str, subscriber_no: int, demand_no: int | None, amount_minor: int) -> int:
    """The VAT in a refund of a charge (Swedbank Pay asks for it): its invoice's VAT, pro rata."""
    invoice = ctx.accounts.invoice(tenant, subscriber_no, demand_no) if demand_no else None
    return pro_rata_vat(vat_parts(invoice.draft.lines), amount_minor) if invoice is not None else 0


def _provider_refund(ctx: Context, tenant: str, account: Account, provider: Provider, order_id: str,
                     charge_id: str, amount_minor: int, vat: int, refund_id: str) -> int:
    """Ask the provider to refund; what it shows refunded of the charge afterwards."""
    try:
        if provider is Provider.SWEDBANKPAY:
            ctx.swedbankpay.reversal(tenant, order_id, amount_minor, vat, refund_id)
            return ctx.swedbankpay.payment_order(tenant, order_id).reversed_minor
        agreement_id = _vipps_agreement_of(ctx, tenant, account, charge_id)
        ctx.vipps.refund(tenant, agreement_id, charge_id, amount_minor, f"Refund {refund_id}"[:45], refund_id)
        return ctx.vipps.charge(tenant, agreement_id, charge_id).refunded_minor
    except ProviderRefused as exc:
        if exc.status == 404:
            raise NotFound(f"charge {charge_id}: {exc.detail}") from exc
        raise RefundRefused(f"{provider.value}: {exc.detail}") from exc


def _vipps_agreement_of(ctx: Context, tenant: str, account: Account, charge_id: str) -> str:
    """The Vipps agreement a charge was made on: the subscriber's agreement that has it."""
    candidates = sorted((a for a in account.agreements.values() if a.provider is Provider.VIPPS and a.provider_id),
                        key=lambda a: a.status is not AgreementStatus.ACTIVE)
    for agreement in candidates:
        try:
            ctx.vipps.charge(tenant, agreement.provider_id, charge_id)
            return agreement.provider_id
        except ProviderRefused as exc:
            if exc.status != 404:
                raise
    raise NotFound(f"charge {charge_id} is on none of the subscriber's Vipps agreements")


# ---- the provider timer --------------------------------------------------------------------------


@dataclass(frozen=True)
class PollReport:
    watches: int = 0  # due watches looked at
    charges: int = 0  # charges reconciled
    settled: int = 0  # of them, settled now or before (no row left)
    agreements: int = 0  # agreements reconciled
    stops: int = 0  # agreements stopped on their stop day
    expiry_notices: int = 0  # card expiry notices
    failed: int = 0  # watches that failed: left for the next poll


def poll(ctx: Context, tenant: str, today: date) -> PollReport:
    """The provider timer's work for a tenant: every watch due by ``today`` reconciled (a
    charge through ``reconcile_charge``; an agreement through helper checkout's use cases:
    its stop day, its card's expiry notice, else the agreement's state), then marked done.
    A charge still open gets a watch for tomorrow. One failing watch never stops the others:
    it stays, and the next poll tries it again."""
    counts: dict[str, int] = defaultdict(int)
    for day, watch in ctx.provider_watch.due(tenant, today):
        counts["watches"] += 1
        try:
            kind = _poll_one(ctx, tenant, today, watch)
            ctx.provider_watch.done(tenant, day, watch)
            counts[kind] += 1
        except Exception as exc:  # this watch's alone: it stays for the next poll
            counts["failed"] += 1
            log.warning("provider poll of %s: watch %s of %s failed: %s", tenant, watch, day, exc,
                        exc_info=not transient(exc))
    report = PollReport(**counts)
    log.info("provider poll of %s through %s: %s", tenant, today, report)
    return report


def _poll_one(ctx: Context, tenant: str, today: date, watch: Watch) -> str:
    """One watch; the kind of work it was (a ``PollReport`` field)."""
    if watch.charge_id:
        state = _reconcile(ctx, tenant, watch.subscriber_no, watch.charge_id)
        if state is None:
            return "settled"
        ctx.provider_watch.add(tenant, today + timedelta(days=1), watch)  # still out: look again tomorrow
        return "charges"
    loaded = ctx.accounts.load(tenant, watch.subscriber_no)
    agreement = loaded.account.agreements.get(watch.agreement_key) if loaded is not None else None
    if agreement is None:
        return "agreements"  # nothing (left) to watch: its order was never committed
    if stop_due(agreement, today):
        checkout.stop_agreement_due(ctx, tenant, watch.subscriber_no, agreement.key)
        return "stops"
    if notice_due(agreement, today):
        checkout.card_expiry_notice(ctx, tenant, watch.subscriber_no, agreement.key)
        return "expiry_notices"
    checkout.reconcile_agreement(ctx, tenant, watch.subscriber_no, agreement.key)
    return "agreements"

