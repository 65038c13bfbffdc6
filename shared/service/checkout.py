"""Checkout with Vipps MobilePay Recurring and Swedbank Pay cards (P6; manual 5 "New order",
7.28 "Vipps", 16 "Deactivated paymentagreements").

An order paid by Vipps or card is not placed when it is taken. ``start_checkout`` makes the
agreement at the provider (a Vipps draft agreement with the first period as its initial
charge; a Swedbank Pay payment order that also makes an unscheduled token), its idempotency
key our ``agreement_key``, and then stores it in the subscriber's partition, pending, with
the order on it: nothing else exists yet, so a payer who declines burns no number.

The provider is the truth. Every piece of news (a Vipps webhook, a Swedbank Pay callback,
the provider timer, the payer's return page) re-reads the agreement or payment order at the
provider and hands what it read to ``agreements.vipps_verdict`` / ``card_verdict``, against
the agreement as stored now; the transition that follows is guarded by the stored status, and
the reading is applied again until it decides nothing more (statuses only go forward), so
duplicates, repeats and any order of events end in the same state:

- approved (Vipps ACTIVE, card Paid): the order is placed by ``orders._place`` (numbering,
  indexes, order blockage as any order), the subscription charged on the agreement, and in
  the same transaction the agreement is active and the first payment (the initial charge;
  the card's purchase) is a ``Charge`` for the first invoice's demand, booked as a payment
  if it is captured;
- declined, expired, aborted: the agreement is final and the order dropped, or placed with
  invoice when the organisation says so (``Organization.fallback_to_invoice``);
- an active Vipps agreement stopped by the payer or Vipps: its subscriptions go to invoice
  with KID from their next period, ``AgreementChanged(by=...)``, and customer service is told
  (an attention row of run ``providers``).

A stop in Abonno stops the Vipps agreement at the end of the paid period, never earlier
(``customer_service.stop`` sets ``stop_on`` and a watch; ``stop_agreement_due``). A card's
subscriber is told 30 days before the card expires (``card_expiry_notice``), once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from ..domain.account import Account, Changes
from ..domain.agreements import (
    CARD_CHECKOUT_TRIES,
    VIPPS_MIN_PRICE_MINOR,
    VIPPS_PRODUCT_DESCRIPTION,
    VIPPS_PRODUCT_NAME,
    AgreementStatus,
    Charge,
    ChargeState,
    PaymentAgreement,
    Provider,
    Verdict,
    activated,
    agreement_key,
    card_expired,
    card_reference,
    card_verdict,
    ended,
    initial_charge_id,
    initial_taken,
    interval_of,
    key_of_card_reference,
    notice_due,
    on_invoice,
    parse_agreement_key,
    product_text,
    reusable_card,
    stop_day,
    stop_due,
    stopped_by,
    vipps_verdict,
    watch_days,
)
from ..domain.catalogue import Catalogue, PaymentType
from ..domain.charges import ImplausibleAnswer, Observed, card_state, settle, vipps_state
from ..domain.dunning_visit import order_blocked
from ..domain.events import AgreementChanged
from ..domain.invoicing import DocumentKind, Invoice, InvoiceDraft, draft_invoice, due_period_indexes
from ..domain.subscriptions import Subscription
from ..ports import (
    AgreementDraft,
    CardPaymentOrder,
    CardPurchase,
    NotFound,
    Notice,
    ProviderRefused,
    ProviderUnavailable,
    VippsAgreement,
    Watch,
)
from .context import Context
from .orders import OrderBlocked, OrderRejected, PlaceOrder, _check, _place, _subscriber, subscription_of
from .unit_of_work import Decision, Seen, change

log = logging.getLogger(__name__)

RUN = "providers"  # the attention rows of payment agreements (customer service's list)
MAX_ROUNDS = 4  # pending -> active -> stopped: a reading decides at most this many transitions


@dataclass(frozen=True)
class Checkout:
    """Where the payer approves the order's agreement (``redirect_url``); ``created``: False
    when the same order had started its checkout before (the same agreement, the same URL)."""

    agreement_key: str
    redirect_url: str
    created: bool


@dataclass(frozen=True)
class CheckoutStatus:
    """What the payer's return page shows: the agreement's status (pending | active | rejected |
    expired | stopped) and, once placed, the subscription and how it is paid."""

    agreement_key: str
    status: str
    subscription_id: str | None = None
    payment_type: str | None = None


@dataclass(frozen=True)
class Taken:
    """The first payment as the provider reports it (Vipps' initial charge, the card's purchase)."""

    charge_id: str
    state: ChargeState
    amount_minor: int
    captured_minor: int
    provider_ref: str = ""
    failure_reason: str = ""
    currency: str = ""


# ---- start ---------------------------------------------------------------------------------------


def start_checkout(ctx: Context, order: PlaceOrder, subscriber_no: int, subscription_id: str) -> Checkout:
    """Make the order's agreement at the provider and keep it, pending, with the order on it.
    The same order again (same subscriber and subscription: ``orders`` binds ``order_ref``)
    returns the same agreement; a retry after a failure between the provider call and the
    commit makes nothing twice at the provider (idempotency key: the agreement key)."""
    tenant = order.tenant
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    _check(order, catalogue, today)
    key = agreement_key(subscriber_no, subscription_id)
    loaded = ctx.accounts.load(tenant, subscriber_no)
    known = loaded.account.agreements.get(key) if loaded else None
    if known is not None:
        return Checkout(key, known.confirmation_url, created=False)
    organization_id = catalogue.plan(order.plan_id).organization_id
    if loaded is not None:
        _refuse_blocked(loaded.account, catalogue, organization_id)
    _refuse_back_periods(order, catalogue, today, subscription_id)
    agreement = _open(ctx, order, catalogue, today, subscriber_no, subscription_id)

    stored: list[PaymentAgreement] = []

    def decide(seen: Seen) -> Changes:
        stored[:] = [a for k, a in seen.account.agreements.items() if k == key]
        if stored:  # a racer with the same order stored it: its payment page is the one
            return Changes(seen.account)
        _refuse_blocked(seen.account, catalogue, organization_id)
        return Changes(_with_agreement(seen.account, agreement))

    change(ctx, tenant, subscriber_no, watched(ctx, tenant, decide), today=today,
           new=lambda: Account(_subscriber(order, subscriber_no, today)))
    if stored:
        return Checkout(key, stored[0].confirmation_url, created=False)
    return Checkout(key, agreement.confirmation_url, created=True)


def reusable_agreement(ctx: Context, order: PlaceOrder, subscriber_no: int) -> str | None:
    """The key of the subscriber's valid card agreement with the order's organisation, for a card
    order on the trusted path (customer service, a confirmed pending order): placed on it at once,
    no payment page (manual 16). None for anything else (a Vipps agreement is never reused)."""
    if order.payment_type is not PaymentType.CARD:
        return None
    loaded = ctx.accounts.load(order.tenant, subscriber_no)
    if loaded is None:
        return None
    catalogue = ctx.catalogue.get(order.tenant)
    card = reusable_card(loaded.account.agreements, catalogue.plan(order.plan_id).organization_id,
                         ctx.today(catalogue))
    return card.key if card is not None else None


def _refuse_back_periods(order: PlaceOrder, catalogue: Catalogue, today: date, sub_id: str) -> None:
    """A Vipps or card order takes one first payment, for the first period: a start so far back
    that more periods are due at once would leave the others unpaid under a letter saying they
    are charged. Refused (the order may start later, or be paid by invoice)."""
    sub = subscription_of(order, catalogue, today, sub_id)
    billing = catalogue.billing_plan_of(catalogue.plan(order.plan_id))
    if len(due_period_indexes(sub, billing, today)) > 1:
        raise OrderRejected("a Vipps or card order cannot start so far back that more than one period is due at once")


def _refuse_blocked(account: Account, catalogue: Catalogue, organization_id: str) -> None:
    blocked = order_blocked(account, catalogue, organization_id)
    if blocked:
        raise OrderBlocked(f"subscriber {account.number} cannot order: {blocked}")


def _open(ctx: Context, order: PlaceOrder, catalogue: Catalogue, today: date, subscriber_no: int,
          sub_id: str) -> PaymentAgreement:
    """The agreement made at the provider for the order (nothing stored yet)."""
    first, renewal = _first_and_renewal(order, catalogue, today, sub_id)
    key = agreement_key(subscriber_no, sub_id)
    charge_id = initial_charge_id(subscriber_no, sub_id) if first.total_minor > 0 else ""
    base = PaymentAgreement(key, Provider.VIPPS, first.organization_id, sub_id, AgreementStatus.PENDING, today,
                            renewal.total_minor, first.currency, order=order.to_json(), initial_charge_id=charge_id)
    try:
        if order.payment_type is PaymentType.VIPPS:
            made = ctx.vipps.create_agreement(order.tenant, _draft(ctx, order, catalogue, base, first), key)
            return replace(base, provider_id=made.id, confirmation_url=made.confirmation_url)
        if first.total_minor <= 0:
            raise OrderRejected("a card order needs a first payment above 0")
        po = _card_order(ctx, order, catalogue, key, first)
    except ProviderRefused as exc:
        raise OrderRejected(f"the payment provider refused the order: {exc.detail}") from exc
    return replace(base, provider=Provider.SWEDBANKPAY, price_minor=first.total_minor, provider_id=po.id,
                   confirmation_url=po.redirect_url)


def _first_and_renewal(order: PlaceOrder, catalogue: Catalogue, today: date,
                       sub_id: str) -> tuple[InvoiceDraft, InvoiceDraft]:
    """The first period's invoice and a renewal's, as the catalogue prices them today."""
    plan = catalogue.plan(order.plan_id)
    billing = catalogue.billing_plan_of(plan)
    sub = replace(subscription_of(order, catalogue, today, sub_id), stop_date=None)
    org, products = catalogue.organization_of(plan), catalogue.products_of(plan)
    return (draft_invoice(sub, 0, today, billing, org, products),
            draft_invoice(sub, 1, today, billing, org, products))


def status_url(ctx: Context, tenant: str, key: str) -> str:
    """The payer's return page (the sales poster's checkout status)."""
    return f"{ctx.public_url}/api/salesposter/{tenant}/checkout/{key}"


def _draft(ctx: Context, order: PlaceOrder, catalogue: Catalogue, agreement: PaymentAgreement,
           first: InvoiceDraft) -> AgreementDraft:
    plan = catalogue.plan(order.plan_id)
    if agreement.price_minor < VIPPS_MIN_PRICE_MINOR:  # manual 6.10, 7.28: a Vipps price is at least 1 kr
        raise OrderRejected("a plan paid by Vipps must cost at least 1 kr a period")
    unit, count = interval_of(catalogue.billing_plan_of(plan).frequency)
    products = " + ".join(p.name for p in catalogue.products_of(plan))
    initial = first.total_minor if agreement.initial_charge_id else None
    return AgreementDraft(external_id=agreement.key, product_name=product_text(plan.name, VIPPS_PRODUCT_NAME),
                          product_description=product_text(products, VIPPS_PRODUCT_DESCRIPTION),
                          price_minor=agreement.price_minor, currency=agreement.currency, interval_unit=unit,
                          interval_count=count, merchant_agreement_url=f"{ctx.public_url}/mypage/{order.tenant}",
                          merchant_redirect_url=status_url(ctx, order.tenant, agreement.key),
                          phone=msisdn(order.phone), initial_charge_minor=initial,
                          initial_charge_id=agreement.initial_charge_id,
                          initial_charge_description=product_text(f"{plan.name}, first period", VIPPS_PRODUCT_NAME))


def _card_order(ctx: Context, order: PlaceOrder, catalogue: Catalogue, key: str,
                first: InvoiceDraft) -> CardPaymentOrder:
    """The checkout's payment order. A used payeeReference (409) is a try before this one whose
    answer was lost before anything was stored (else the checkout would have found its
    agreement): nobody was given its payment page, so the next reference makes a new one."""
    for attempt in range(1, CARD_CHECKOUT_TRIES + 1):
        try:
            return ctx.swedbankpay.create_purchase(order.tenant, _purchase(ctx, order, catalogue, key, first,
                                                                           card_reference(key, attempt)))
        except ProviderRefused as exc:
            if exc.status != 409 or attempt == CARD_CHECKOUT_TRIES:
                raise
    raise AssertionError("unreachable")


def _purchase(ctx: Context, order: PlaceOrder, catalogue: Catalogue, key: str, first: InvoiceDraft,
              reference: str) -> CardPurchase:
    back = status_url(ctx, order.tenant, key)
    return CardPurchase(payee_reference=reference, amount_minor=first.total_minor, vat_minor=first.vat_minor,
                        currency=first.currency, description=product_text(catalogue.plan(order.plan_id).name, 40),
                        complete_url=back, cancel_url=back,
                        callback_url=f"{ctx.public_url}/api/swedbankpay/{order.tenant}/callback")


def msisdn(phone: str | None) -> str | None:
    """A phone number as Vipps' MSISDN (country code and number, digits only); an 8-digit number
    is Norwegian. None when it is no such number: the payer types it in Vipps instead.

        >>> msisdn("+47 412 34 567"), msisdn("41234567"), msisdn("12")
        ('4741234567', '4741234567', None)
    """
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 8:
        digits = "47" + digits
    return digits if 10 <= len(digits) <= 15 else None


# ---- reconcile -----------------------------------------------------------------------------------


def reconcile_vipps_agreement(ctx: Context, tenant: str, agreement_id: str) -> None:
    """A Vipps agreement webhook (or any news of one): re-read it at Vipps and apply what it says."""
    remote = ctx.vipps.agreement(tenant, agreement_id)
    subscriber_no = parse_agreement_key(remote.external_id)
    if subscriber_no is None:
        log.warning("Vipps agreement %s of %s is not one of ours (externalId %r)", agreement_id, tenant,
                    remote.external_id)
        return
    found = _apply(ctx, tenant, subscriber_no, remote.external_id, _read(ctx, tenant, remote))
    if not found and remote.status.upper() in ("ACTIVE", "STOPPED"):
        _orphan(ctx, tenant, subscriber_no, remote.external_id)


def reconcile_card_order(ctx: Context, tenant: str, payment_order_id: str) -> None:
    """A Swedbank Pay callback (its body never trusted): re-read the payment order and apply it.
    A renewal's purchase (payee reference a charge id) is the charges' (``service.charges``).

    The callback is anonymous, so the id is anyone's text: one Swedbank Pay does not show this
    tenant (404, 403; or a tenant with no Swedbank Pay) names nothing of ours and is dropped
    with a log line, never an attention row or a retry (a stranger could post any number)."""
    try:
        po = ctx.swedbankpay.payment_order(tenant, payment_order_id)
    except ProviderRefused as exc:
        if exc.status not in (403, 404):
            raise
        log.warning("callback of %s names payment order %s, which Swedbank Pay does not show us (%d): dropped",
                    tenant, payment_order_id[:100], exc.status)
        return
    key = key_of_card_reference(po.payee_reference)
    subscriber_no = parse_agreement_key(key) if key is not None else None
    if key is None or subscriber_no is None:
        log.info("payment order %s of %s is no checkout (%r)", payment_order_id, tenant, po.payee_reference)
        return
    found = _apply(ctx, tenant, subscriber_no, key, _read(ctx, tenant, po))
    if not found and po.status == "Paid":
        _orphan(ctx, tenant, subscriber_no, key)


def reconcile_agreement(ctx: Context, tenant: str, subscriber_no: int, agreement_key: str) -> None:
    """The provider timer's look at one agreement (a ``Watch`` without a charge id): re-read a
    pending or active one at the provider and apply it, then do what is due on it today (its
    stop at Vipps, its card expiry notice). Whatever the watch was for, this is the one call."""
    loaded = ctx.accounts.load(tenant, subscriber_no)
    agreement = loaded.account.agreements.get(agreement_key) if loaded else None
    if agreement is None:
        return
    if agreement.status in (AgreementStatus.PENDING, AgreementStatus.ACTIVE):
        _apply(ctx, tenant, subscriber_no, agreement_key, _read(ctx, tenant))
    today = ctx.today(ctx.catalogue.get(tenant))
    if stop_due(agreement, today):  # each looks again at the agreement as it is now
        stop_agreement_due(ctx, tenant, subscriber_no, agreement_key)
    if notice_due(agreement, today) or card_expired(agreement, today):
        card_expiry_notice(ctx, tenant, subscriber_no, agreement_key)


def _card_ended(ctx: Context, tenant: str, subscriber_no: int, key: str) -> None:
    """The card has expired: the agreement ends and its subscriptions are paid by invoice with
    KID from their next period (the subscriber was told 30 days ahead; a new card is a new order)."""

    def decide(seen: Seen) -> Changes:
        current = seen.account.agreements.get(key)
        if current is None or not card_expired(current, seen.today):
            return Changes(seen.account)
        final = ended(current, Verdict.EXPIRE, seen.today)
        switched = on_invoice(seen.account.subscriptions, key)
        account = _with_agreement(seen.account, final)
        account = replace(account, subscriptions={**account.subscriptions, **{s.id: s for s in switched}})
        return Changes(account, tuple(switched), events=(changed(account, final, final.status, "provider"),))

    change(ctx, tenant, subscriber_no, decide)


@dataclass(frozen=True)
class Reading:
    """What the provider says of an agreement, in our words."""

    status: str  # the provider's agreement / payment order status
    taken: Taken | None  # the first payment, where there is one
    actor: str = ""  # Vipps: who stopped it
    card: tuple[str, str, date | None] = ("", "", None)  # token, mask, expiry


Read = Callable[[Account, PaymentAgreement], Reading]  # (the account as stored, its agreement) -> the provider's word


def _reading(ctx: Context, tenant: str, account: Account, agreement: PaymentAgreement,
             known: VippsAgreement | CardPaymentOrder | None = None) -> Reading:
    """The provider's word on OUR agreement: the resource our row names (``provider_id``),
    never another that merely claims our key as its externalId / payeeReference (a stale
    draft of the same order, a second payment order): ``known`` (what a webhook or callback
    re-read) is used only if it is the one our row names, else ours is read."""
    if known is not None and known.id != agreement.provider_id:
        log.warning("%s %s claims agreement %s, which is %s: ours is read", agreement.provider.value, known.id,
                    agreement.key, agreement.provider_id)
        known = None
    if agreement.provider is Provider.VIPPS:
        remote = known if isinstance(known, VippsAgreement) else ctx.vipps.agreement(tenant, agreement.provider_id)
        return _vipps_reading(ctx, tenant, account, agreement, remote)
    po = known if isinstance(known, CardPaymentOrder) else ctx.swedbankpay.payment_order(tenant, agreement.provider_id)
    return _card_reading(ctx, tenant, agreement, po)


def _read(ctx: Context, tenant: str, known: VippsAgreement | CardPaymentOrder | None = None) -> Read:
    return lambda account, agreement: _reading(ctx, tenant, account, agreement, known)


def _vipps_reading(ctx: Context, tenant: str, account: Account, agreement: PaymentAgreement,
                   remote: VippsAgreement) -> Reading:
    """The agreement at Vipps, and its initial charge while that is still ours to follow."""
    taken = None
    if agreement.initial_charge_id and (agreement.status is AgreementStatus.PENDING
                                        or agreement.initial_charge_id in account.charges):
        try:
            charge = ctx.vipps.charge(tenant, remote.id, agreement.initial_charge_id)
        except ProviderRefused:  # not made (yet): Vipps makes it when the payer approves
            charge = None
        if charge is not None:
            taken = Taken(charge.id, vipps_state(charge.status), charge.amount_minor, charge.captured_minor,
                          failure_reason=charge.failure_reason, currency=charge.currency)
    return Reading(remote.status, taken, remote.stopped_by)


def _card_reading(ctx: Context, tenant: str, agreement: PaymentAgreement, po: CardPaymentOrder) -> Reading:
    """The checkout's payment order; one paid but only authorized is captured first (the first
    period is delivered at once). The card (token, mask, expiry) is the read's: a capture's
    answer does not carry the paid details."""
    card = (po.token, po.card_mask, po.card_expiry)
    if po.status == "Paid" and po.captured_minor == 0 and agreement.status is AgreementStatus.PENDING:
        po = ctx.swedbankpay.capture(tenant, po.id, po.amount_minor, _first_vat(ctx, tenant, agreement),
                                     agreement.initial_charge_id)
    taken = Taken(agreement.initial_charge_id, card_state(po.status, po.captured_minor), po.amount_minor,
                  po.captured_minor, po.id, po.failure_reason, po.currency)
    return Reading(po.status, taken, card=card)


def _first_vat(ctx: Context, tenant: str, agreement: PaymentAgreement) -> int:
    """The VAT of the first period's purchase, as the checkout priced it."""
    assert agreement.order is not None
    order = PlaceOrder.from_json(dict(agreement.order))
    catalogue = ctx.catalogue.get(tenant)
    first, _renewal = _first_and_renewal(order, catalogue, agreement.created, agreement.subscription_id)
    return first.vat_minor


def _apply(ctx: Context, tenant: str, subscriber_no: int, key: str, read: Read) -> bool:
    """Apply the provider's reading to the agreement as stored now, until it decides nothing more.

    Each transition is guarded by the stored status it starts from, so a racer that moved the
    agreement first turns ours into nothing, and the next round decides from where it left it."""
    reading: Reading | None = None
    for _ in range(MAX_ROUNDS):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        agreement = loaded.account.agreements.get(key) if loaded else None
        if loaded is None or agreement is None:
            log.warning("no agreement %s of subscriber %s in %s", key, subscriber_no, tenant)
            return False
        reading = reading or read(loaded.account, agreement)
        verdict = _verdict(agreement, reading)
        if verdict is Verdict.WAIT:
            _watch_pending(ctx, tenant, loaded.account, agreement)
            return True
        if verdict is Verdict.NONE:
            if reading.taken is not None and reading.taken.charge_id in loaded.account.charges:
                _settle_initial(ctx, tenant, subscriber_no, reading.taken)
            return True
        _transition(ctx, tenant, subscriber_no, agreement, verdict, reading)
    log.error("agreement %s of %s did not settle in %d rounds", key, tenant, MAX_ROUNDS)
    return True


def _orphan(ctx: Context, tenant: str, subscriber_no: int, key: str) -> None:
    """News of an agreement we never stored: its checkout's commit failed and the order was never
    posted again, yet the payer may have approved and paid. Customer service looks (once)."""
    log.warning("no agreement %s of subscriber %s in %s", key, subscriber_no, tenant)
    if ctx.attention.find(tenant, RUN, subscriber_no, key) is None:
        ctx.attention.record(tenant, RUN, subscriber_no, ctx.today(ctx.catalogue.get(tenant)),
                             f"News of agreement {key} at the provider, but no order was stored for it: "
                             "check it at the provider and refund what it took", ref=key)


def _verdict(agreement: PaymentAgreement, reading: Reading) -> Verdict:
    if agreement.provider is Provider.VIPPS:
        taken = reading.taken is not None and initial_taken(reading.taken.state)
        return vipps_verdict(agreement, reading.status, taken)
    return card_verdict(agreement, reading.status)


def _transition(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement, verdict: Verdict,
                reading: Reading) -> None:
    if verdict is Verdict.ACTIVATE:
        _activate(ctx, tenant, subscriber_no, agreement, reading)
    elif verdict is Verdict.STOP:
        _stop(ctx, tenant, subscriber_no, agreement, reading)
    else:
        _end_pending(ctx, tenant, subscriber_no, agreement, verdict)


class _Moved(Exception):
    """The agreement is no longer where the decision started from: decide again."""


def _activate(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement, reading: Reading) -> None:
    """Place the agreement's order, charged on it, and in the same transaction activate the
    agreement and take the first payment onto the first invoice. An agreement made for a running
    subscription (no order: ``switch_checkout``) takes the subscription over instead."""
    if agreement.order is None:
        _adopt(ctx, tenant, subscriber_no, agreement, reading)
        return
    order = PlaceOrder.from_json(dict(agreement.order))
    token, mask, expiry = reading.card

    def then(seen: Seen, changes: Changes) -> Changes:
        current = changes.account.agreements.get(agreement.key)
        if current is None or current.status is not AgreementStatus.PENDING:
            raise _Moved(agreement.key)
        account = _with_agreement(changes.account, activated(current, seen.today, token, mask, expiry))
        account = schedule_stops(account, seen.today)  # a plan that stops by itself
        changes = replace(changes, account=account, events=(*changes.events, changed(account, current, "active")))
        first = _first_invoice(changes.invoices, current.subscription_id)
        if reading.taken is not None and first is not None:
            changes = changes.then(first_payment(changes.account, current, first, reading.taken, seen.catalogue,
                                                 seen.today))
        ahead(ctx, tenant, seen.account, changes.account, seen.today)
        return changes

    try:
        _place(ctx, order, subscriber_no, agreement.subscription_id, agreement=agreement.key, then=then,
               extra_entities=8)
    except _Moved:
        return
    except OrderRejected as exc:  # blocked meanwhile (or the plan withdrawn): customer service decides
        _refused(ctx, tenant, subscriber_no, agreement, str(getattr(exc, "reason", exc)))


def _first_invoice(invoices: tuple[Invoice, ...], subscription_id: str) -> Invoice | None:
    return next((i for i in invoices if i.draft.subscription_id == subscription_id and i.draft.period_index == 0
                 and i.draft.kind is DocumentKind.SUBSCRIPTION), None)


def first_payment(account: Account, agreement: PaymentAgreement, invoice: Invoice, taken: Taken,
                  catalogue: Catalogue, day: date) -> Changes:
    """The first payment as a ``Charge`` for the first invoice's demand, settled by what the
    provider says of it through the charges' one rule (``charges.settle``): captured, booked as a
    payment by its external identifier and the row gone; failed, handed to dunning; else kept
    for its outcome (``service.charges`` follows it, as this module's reconcile does). The charge
    is of the first invoice's total (what the checkout asked for), so an answer beyond it
    (``domain.charges.implausible``) places the order but books nothing: the charge stays for
    the worker, whose attention row tells customer service."""
    charge = Charge(taken.charge_id, agreement.provider, agreement.key, agreement.organization_id, invoice.demand_no,
                    invoice.total_minor, agreement.currency, day, 0, 1, changed=day)  # what we asked, not what it says
    account = replace(account, charges={**account.charges, charge.id: charge})
    try:
        return settle(account, charge.id, _observed(taken), catalogue, day)
    except ImplausibleAnswer as exc:  # the order is placed all the same; the charge is kept, unbooked
        log.error("first payment of %s not applied: %s", agreement.key, exc)
        return Changes(account)


def _observed(taken: Taken) -> Observed:
    return Observed(taken.state, taken.captured_minor, failure_reason=taken.failure_reason,
                    provider_ref=taken.provider_ref, currency=taken.currency)


def _settle_initial(ctx: Context, tenant: str, subscriber_no: int, taken: Taken) -> None:
    """An active agreement whose first payment was still open: settle it by what was read."""
    change(ctx, tenant, subscriber_no, lambda seen: settle(seen.account, taken.charge_id, _observed(taken),
                                                           seen.catalogue, seen.today), visits=False)


def _end_pending(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement,
                 verdict: Verdict) -> None:
    """Declined or expired: the agreement final and its order dropped, or placed with invoice if
    the organisation falls back to invoice."""
    catalogue = ctx.catalogue.get(tenant)
    org = catalogue.organizations.get(agreement.organization_id)

    def finish(seen: Seen, changes: Changes) -> Changes:
        current = changes.account.agreements.get(agreement.key)
        if current is None or current.status is not AgreementStatus.PENDING:
            raise _Moved(agreement.key)
        final = ended(current, verdict, seen.today)
        account = _with_agreement(changes.account, final)
        return replace(changes, account=account, events=(*changes.events, changed(account, final, final.status)))

    if org is not None and org.fallback_to_invoice and agreement.order is not None:
        order = replace(PlaceOrder.from_json(dict(agreement.order)), payment_type=PaymentType.INVOICE)
        try:
            _place(ctx, order, subscriber_no, agreement.subscription_id, then=finish, extra_entities=2)
            return
        except _Moved:
            return
        except OrderRejected as exc:
            log.info("fallback to invoice of %s refused (%s): the order is dropped", agreement.key, exc)
    try:
        change(ctx, tenant, subscriber_no, lambda seen: finish(seen, Changes(seen.account)))
    except _Moved:
        return


def _stop(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement, reading: Reading) -> None:
    """An active agreement stopped at the provider: its subscriptions to invoice from their next
    period. By the payer or the provider, customer service is told (written ahead)."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    by = "merchant" if stop_due(agreement, today) else stopped_by(reading.actor)
    if by != "merchant" and ctx.attention.find(tenant, RUN, subscriber_no, agreement.key) is None:
        ctx.attention.record(tenant, RUN, subscriber_no, today, f"Agreement {agreement.key} ({agreement.provider}) "
                             f"stopped by the {by}: its subscriptions are on invoice with KID from their next period",
                             ref=agreement.key)

    def decide(seen: Seen) -> Changes:
        current = seen.account.agreements.get(agreement.key)
        if current is None or not current.active:
            return Changes(seen.account)
        final = ended(current, Verdict.STOP, seen.today, by)
        switched = on_invoice(seen.account.subscriptions, current.key)
        account = _with_agreement(seen.account, final)
        account = replace(account, subscriptions={**account.subscriptions, **{s.id: s for s in switched}})
        return Changes(account, tuple(switched), events=(changed(account, final, final.status, by),))

    change(ctx, tenant, subscriber_no, decide)


def _refused(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement, reason: str) -> None:
    """The payer approved, but the order can no longer be placed (an order blockage set meanwhile):
    the agreement is stopped at the provider and customer service refunds what was taken."""
    today = ctx.today(ctx.catalogue.get(tenant))
    ctx.attention.record(tenant, RUN, subscriber_no, today, f"Order of agreement {agreement.key} approved by the "
                         f"payer but refused: {reason}; refund what the provider took", ref=agreement.key)
    if agreement.provider is Provider.VIPPS:
        ctx.vipps.stop_agreement(tenant, agreement.provider_id, f"stop-{agreement.key}")

    def decide(seen: Seen) -> Changes:
        current = seen.account.agreements.get(agreement.key)
        if current is None or current.status is not AgreementStatus.PENDING:
            return Changes(seen.account)
        final = ended(current, Verdict.STOP, seen.today, "merchant")
        account = _with_agreement(seen.account, final)
        return Changes(account, events=(changed(account, final, final.status, "merchant"),))

    change(ctx, tenant, subscriber_no, decide)


def _watch_pending(ctx: Context, tenant: str, account: Account, agreement: PaymentAgreement) -> None:
    """Still pending: the timer looks again tomorrow (for a week; webhooks get lost)."""
    today = ctx.today(ctx.catalogue.get(tenant))
    for day in watch_days(agreement, today):
        ctx.provider_watch.add(tenant, day, Watch(account.number, agreement.provider.value, agreement.key))


# ---- the return page, the stop, the card expiry --------------------------------------------------


def checkout_status(ctx: Context, tenant: str, agreement_key: str) -> CheckoutStatus:
    """The payer's return page: a pending agreement is reconciled first, so the page tells the
    truth before any webhook has arrived. ``NotFound`` for a key that is no checkout."""
    subscriber_no = parse_agreement_key(agreement_key)
    loaded = ctx.accounts.load(tenant, subscriber_no) if subscriber_no else None
    agreement = loaded.account.agreements.get(agreement_key) if loaded else None
    if subscriber_no is None or agreement is None:
        raise NotFound(f"checkout {agreement_key}")
    if agreement.status is AgreementStatus.PENDING:
        try:
            _apply(ctx, tenant, subscriber_no, agreement_key, _read(ctx, tenant))
        except ProviderUnavailable:  # the page says pending; the webhook or the timer settles it
            log.warning("checkout %s of %s: provider unavailable", agreement_key, tenant)
        except ProviderRefused as exc:  # not readable now (registration gone, unknown there): the stored status
            log.warning("checkout %s of %s: the provider refused the read: %s", agreement_key, tenant, exc.status)
        except ImplausibleAnswer as exc:  # the payer sees where it is; the worker's attention row tells us
            log.error("checkout %s of %s: %s", agreement_key, tenant, exc)
        loaded = ctx.accounts.load(tenant, subscriber_no)
        assert loaded is not None
        agreement = loaded.account.agreements[agreement_key]
    assert loaded is not None
    sub = loaded.account.subscriptions.get(agreement.subscription_id)
    return CheckoutStatus(agreement_key, agreement.status.value, sub.id if sub else None,
                          sub.payment_type.value if sub else None)


def stop_agreement_due(ctx: Context, tenant: str, subscriber_no: int, agreement_key: str) -> None:
    """The provider timer on an agreement's ``stop_on``: stop it at Vipps (never before that
    day: a stopped agreement can never be active again), then apply what Vipps then says."""
    loaded = ctx.accounts.load(tenant, subscriber_no)
    agreement = loaded.account.agreements.get(agreement_key) if loaded else None
    if agreement is None or not stop_due(agreement, ctx.today(ctx.catalogue.get(tenant))):
        return
    try:
        ctx.vipps.stop_agreement(tenant, agreement.provider_id, f"stop-{agreement_key}")
    except ProviderRefused as exc:  # stopped already (by the payer): the reading below says so
        log.info("stop of %s refused by Vipps: %s", agreement_key, exc)
    _apply(ctx, tenant, subscriber_no, agreement_key, _read(ctx, tenant))


def card_expiry_notice(ctx: Context, tenant: str, subscriber_no: int, agreement_key: str) -> None:
    """Tell the subscriber their card expires soon (D3), 30 days ahead, once: the notice's id
    makes a repeat harmless, and the agreement remembers it was sent (``expiry_noticed``). A card
    past its expiry is ended instead (whichever watch of the card the timer finds, this does what
    is due)."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    loaded = ctx.accounts.load(tenant, subscriber_no)
    agreement = loaded.account.agreements.get(agreement_key) if loaded else None
    if loaded is None or agreement is None:
        return
    if card_expired(agreement, today):
        _card_ended(ctx, tenant, subscriber_no, agreement_key)
        return
    if not notice_due(agreement, today):
        return
    ctx.notifier.send(expiry_notice(ctx, tenant, loaded.account, agreement, catalogue, today))

    def decide(seen: Seen) -> Changes:
        current = seen.account.agreements.get(agreement_key)
        if current is None or current.expiry_noticed:
            return Changes(seen.account)
        return Changes(_with_agreement(seen.account, replace(current, expiry_noticed=True, changed=seen.today)))

    change(ctx, tenant, subscriber_no, decide)


def expiry_notice(ctx: Context, tenant: str, account: Account, agreement: PaymentAgreement, catalogue: Catalogue,
                  today: date) -> Notice:
    org = catalogue.organizations.get(agreement.organization_id)
    seller = org.name if org else ""
    sender = (org.branding.contact_email if org else None) or ctx.mail_sender
    expiry = agreement.card_expiry.isoformat() if agreement.card_expiry else ""
    body = (f"Hei {account.subscriber.name},\n\nKortet ditt {agreement.card_mask} som betaler abonnementet hos "
            f"{seller}, utløper {expiry}. Legg inn et nytt kort på Min side før det, så fortsetter abonnementet "
            f"uten avbrudd: {ctx.public_url}/mypage/{tenant}\n\n{seller}\n")
    return Notice(f"card-expiry.{agreement.key}.{expiry}", tenant, "email", account.subscriber.email,
                  f"Kortet ditt utløper snart – {seller}", body, sender, today.isoformat())


# ---- a running subscription to Vipps or card (My page's change of payment) -----------------------


def switch_key(subscriber_no: int, subscription_id: str, attempt: int) -> str:
    """The key of the ``attempt``-th agreement made for a running subscription: ``a{n}-{id}s{k}``
    (an ``agreement_key``, so webhooks, callbacks and watches find it as any other)."""
    return agreement_key(subscriber_no, f"{subscription_id}s{attempt}")


def switch_checkout(ctx: Context, tenant: str, subscriber_no: int, subscription_id: str,
                    payment_type: PaymentType) -> Checkout | None:
    """Have a running subscription paid by Vipps or card from its next invoice on, through the
    checkout's rails: a Vipps agreement at the renewal price with no initial charge (the period
    running is invoiced already), kept pending until Vipps says ACTIVE, when the subscription is
    moved onto it (``_adopt``); a card by the subscriber's valid card agreement with the
    organisation, at once (None: no payment page). The same request again while the agreement is
    pending answers the same checkout. A card never registered is refused (``OrderRejected``):
    Swedbank Pay registers a card with a purchase, which a running subscription has none of."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    loaded = ctx.accounts.load(tenant, subscriber_no)
    sub = loaded.account.subscriptions.get(subscription_id) if loaded else None
    if loaded is None or sub is None:
        raise NotFound(f"subscriber {subscriber_no} has no subscription {subscription_id}")
    account = loaded.account
    if sub.stop_date is not None and sub.stop_date <= today:
        raise OrderRejected(f"subscription {subscription_id} has ended")
    now = account.agreements.get(sub.agreement) if sub.agreement else None
    if sub.payment_type is payment_type and now is not None and now.active:
        return None  # paid so already
    if payment_type is PaymentType.CARD:
        _onto_card(ctx, tenant, account, sub)
        return None
    if payment_type is not PaymentType.VIPPS:
        raise OrderRejected(f"{payment_type.value} is no checkout")
    pending = _pending_switch(account, subscription_id)
    if pending is not None:
        return Checkout(pending.key, pending.confirmation_url, created=False)
    made = sum(1 for k in account.agreements if k.startswith(switch_key(subscriber_no, subscription_id, 0)[:-1]))
    agreement = _open_switch(ctx, tenant, catalogue, account, sub, switch_key(subscriber_no, subscription_id, made + 1),
                             today)
    stored: list[PaymentAgreement] = []

    def decide(seen: Seen) -> Changes:
        racer = _pending_switch(seen.account, subscription_id)
        if racer is not None:  # a racer stored one: its payment page is the one
            stored[:] = [racer]
            return Changes(seen.account)
        return Changes(_with_agreement(seen.account, agreement))

    change(ctx, tenant, subscriber_no, watched(ctx, tenant, decide))
    kept = stored[0] if stored else agreement
    return Checkout(kept.key, kept.confirmation_url, created=not stored)


def _pending_switch(account: Account, subscription_id: str) -> PaymentAgreement | None:
    return next((a for a in account.agreements.values() if a.subscription_id == subscription_id
                 and a.order is None and a.status is AgreementStatus.PENDING), None)


def _open_switch(ctx: Context, tenant: str, catalogue: Catalogue, account: Account, sub: Subscription, key: str,
                 today: date) -> PaymentAgreement:
    """The Vipps agreement made for a running subscription (nothing stored yet)."""
    plan = catalogue.plan(sub.plan_id)
    billing = catalogue.billing_plan_of(plan)
    renewal = draft_invoice(replace(sub, payment_type=PaymentType.VIPPS, stop_date=None), sub.next_period, today,
                            billing, catalogue.organization_of(plan), catalogue.products_of(plan))
    if renewal.total_minor < VIPPS_MIN_PRICE_MINOR:  # manual 6.10, 7.28: a Vipps price is at least 1 kr
        raise OrderRejected("a plan paid by Vipps must cost at least 1 kr a period")
    unit, count = interval_of(billing.frequency)
    products = " + ".join(p.name for p in catalogue.products_of(plan))
    draft = AgreementDraft(external_id=key, product_name=product_text(plan.name, VIPPS_PRODUCT_NAME),
                           product_description=product_text(products, VIPPS_PRODUCT_DESCRIPTION),
                           price_minor=renewal.total_minor, currency=renewal.currency, interval_unit=unit,
                           interval_count=count, merchant_agreement_url=f"{ctx.public_url}/mypage/{tenant}",
                           merchant_redirect_url=status_url(ctx, tenant, key), phone=msisdn(account.subscriber.phone))
    try:
        made = ctx.vipps.create_agreement(tenant, draft, key)
    except ProviderRefused as exc:
        raise OrderRejected(f"the payment provider refused the agreement: {exc.detail}") from exc
    return PaymentAgreement(key, Provider.VIPPS, plan.organization_id, sub.id, AgreementStatus.PENDING, today,
                            renewal.total_minor, renewal.currency, provider_id=made.id,
                            confirmation_url=made.confirmation_url)


def _onto_card(ctx: Context, tenant: str, account: Account, sub: Subscription) -> None:
    card = reusable_card(account.agreements, sub.organization_id, ctx.today(ctx.catalogue.get(tenant)))
    if card is None:
        raise OrderRejected("no card is registered with us: pay an invoice or order by card once, then choose card")

    def decide(seen: Seen) -> Changes:
        current = seen.account.subscriptions.get(sub.id)
        if current is None or current.agreement == card.key:
            return Changes(seen.account)
        moved = replace(current, payment_type=PaymentType.CARD, agreement=card.key)
        return Changes(leave_agreement(seen.account.with_subscription(moved), current.agreement, seen.today),
                       (moved,))

    change(ctx, tenant, account.number, watched(ctx, tenant, decide))


def _adopt(ctx: Context, tenant: str, subscriber_no: int, agreement: PaymentAgreement, reading: Reading) -> None:
    """A running subscription's new agreement approved: active, and the subscription charged on
    it from its next invoice, off the agreement it was on (one transaction). If the subscription
    ended meanwhile, the agreement no subscription uses is stopped at the provider."""
    token, mask, expiry = reading.card

    def decide(seen: Seen) -> Changes:
        current = seen.account.agreements.get(agreement.key)
        if current is None or current.status is not AgreementStatus.PENDING:
            return Changes(seen.account)
        account = _with_agreement(seen.account, activated(current, seen.today, token, mask, expiry))
        events = (changed(account, current, "active"),)
        sub = account.subscriptions.get(current.subscription_id)
        if sub is None or (sub.stop_date is not None and sub.stop_date <= seen.today):
            return Changes(leave_agreement(account, current.key, seen.today), events=events)
        kind = PaymentType.VIPPS if current.provider is Provider.VIPPS else PaymentType.CARD
        moved = replace(sub, payment_type=kind, agreement=current.key)
        return Changes(leave_agreement(account.with_subscription(moved), sub.agreement, seen.today), (moved,),
                       events=events)

    change(ctx, tenant, subscriber_no, watched(ctx, tenant, decide))


def leave_agreement(account: Account, key: str | None, today: date) -> Account:
    """After a subscription left agreement ``key``: a Vipps agreement stops with the
    subscriptions still on it (``schedule_stops``), and one no subscription uses any more is
    stopped at Vipps as soon as the charges still open on it have settled (a card agreement
    stays: the subscriber's other subscriptions may use the card)."""
    account = schedule_stops(account, today)
    agreement = account.agreements.get(key) if key else None
    if (agreement is None or agreement.provider is not Provider.VIPPS or not agreement.active
            or any(s.agreement == key for s in account.subscriptions.values())):
        return account
    still_open = [c for c in account.charges.values()
                  if c.agreement_key == agreement.key and c.demand_no in account.open_demands]
    stopped = replace(agreement, stop_on=stop_day(today, still_open, today), changed=today)
    return _with_agreement(account, stopped)


# ---- helpers -------------------------------------------------------------------------------------


def schedule_stops(account: Account, today: date) -> Account:
    """Each active Vipps agreement stops at the end of the paid period of the subscriptions it
    pays: when all of them have a stop (by customer service, a payment stop, an automatic stop),
    ``stop_on`` is the last of those days, and no earlier than the charges still open on it can
    settle; the provider timer stops it at Vipps that day (never earlier: a stopped agreement can
    never be used again, manual 16). A stop removed, or a pause's restart, takes ``stop_on`` away.
    Pure; the same account again changes nothing."""
    agreements = dict(account.agreements)
    for key, agreement in account.agreements.items():
        if agreement.provider is Provider.VIPPS and agreement.active:
            day = _stop_on(account, agreement, today)
            if day != agreement.stop_on:
                agreements[key] = replace(agreement, stop_on=day, changed=today)
    return account if agreements == account.agreements else replace(account, agreements=agreements)


def _stop_on(account: Account, agreement: PaymentAgreement, today: date) -> date | None:
    paid = [s.stop_date for s in account.subscriptions.values() if s.agreement == agreement.key]
    stops = [d for d in paid if d is not None]
    if not paid:  # every subscription left it (``leave_agreement``): the stop it set stays
        return agreement.stop_on
    if len(stops) < len(paid):  # a subscription on it runs on: no stop
        return None
    if agreement.stop_on is not None and agreement.stop_on <= today:  # due already: stays due for the timer
        return agreement.stop_on
    still_open = [c for c in account.charges.values()
                  if c.agreement_key == agreement.key and c.demand_no in account.open_demands]
    return stop_day(max(stops), still_open, today)


def _with_agreement(account: Account, agreement: PaymentAgreement) -> Account:
    return replace(account, agreements={**account.agreements, agreement.key: agreement})


def changed(account: Account, agreement: PaymentAgreement, status: str, by: str = "") -> AgreementChanged:
    return AgreementChanged(f"agreement.{agreement.key}.{status}", account.number, agreement.key,
                            agreement.provider.value, agreement.organization_id, agreement.subscription_id,
                            str(status), by)


def ahead(ctx: Context, tenant: str, before: Account, after: Account, today: date) -> None:
    """Write the provider watches the changes make necessary, ahead of their commit (a watch that
    finds nothing to do is harmless): a stop day, a card expiry notice, an initial charge open."""
    for key, agreement in after.agreements.items():
        old = before.agreements.get(key)
        days = watch_days(agreement, today) - (watch_days(old, today) if old else set())
        for day in days:
            ctx.provider_watch.add(tenant, day, Watch(after.number, agreement.provider.value, key))
    for charge_id, charge in after.charges.items():
        if charge_id not in before.charges and charge.agreement_key in after.agreements:
            ctx.provider_watch.add(tenant, today + timedelta(days=1),
                                   Watch(after.number, charge.provider.value, charge.agreement_key, charge_id))


def stopping(ctx: Context, tenant: str, decide: Decision) -> Decision:
    """``decide`` of an operation that may stop subscriptions (customer service's stop and change
    of stop, the dunning run's payment stop), then ``schedule_stops`` on what it decided, with
    the watches that needs written ahead (``watched``): a Vipps agreement stops with them."""

    def run(seen: Seen) -> Changes:
        changes = decide(seen)
        return replace(changes, account=schedule_stops(changes.account, seen.today))

    return watched(ctx, tenant, run)


def watched(ctx: Context, tenant: str, decide: Decision) -> Decision:
    """``decide``, with the provider watches its changes need written ahead of the commit."""

    def run(seen: Seen) -> Changes:
        changes = decide(seen)
        ahead(ctx, tenant, seen.account, changes.account, seen.today)
        return changes

    return run
