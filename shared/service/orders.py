"""Place an order from the sales poster (S2; manual 5 "New order", 6.3, 6.9, 10 "Dataflow").

An order creates the subscriber, adds the subscription with its payment agreement,
issues the first period's invoice at once (due per the billing plan, manual 6.3) and
leaves the next period as a draft that the overview computes from the subscription, so
it changes whenever the subscription does.

Idempotent: an order carries ``order_ref`` (the sales poster's form id, or an
``Idempotency-Key``). The reference is bound once, atomically, to the fingerprint of the
order's normalised content and to the subscriber and subscription it makes
(``OrderRecords``); the same order posted again finds its subscription and returns the
same result, and the reference reused for a *different* order is refused
(``OrderConflict``, HTTP 409, as Stripe does with a reused idempotency key), never
merged into the first order or placed as a second one.

Two callers. ``take_order`` is the anonymous sales poster: an order whose e-mail
address belongs to an existing subscriber is not attached to that person's account
(manual 5: the sales poster's user *is* the e-mail address, and only that user may
order on it); it is held as a *pending order* for customer service, who confirm it
(``confirm_pending``: placed on that subscriber, with the order blockage checked then)
or reject it. ``place_order`` is the trusted path (customer service, a confirmed
pending order, tests and benchmarks), which finds the subscriber by e-mail.

An order paid by Vipps or card (P6) is not placed at once: both callers hand it to
``checkout.start_checkout``, which makes the agreement at the provider and keeps the order
on it, pending, and answer with where to send the payer (``redirect_url``). The order is
placed by this module's ``_place`` when the provider says the payer approved (``then``:
the agreement's own changes, in the same transaction), so numbering, indexes, order
blockage and idempotency are the same as for any order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta

from ..adapters.indexes import digest
from ..domain.account import Account, Changes, issue, subscription_created
from ..domain.catalogue import Catalogue, Channel, PaymentType
from ..domain.dunning_visit import order_blocked
from ..domain.invoicing import Invoice
from ..domain.letters import receivable
from ..domain.subscriptions import StopKind, Subscriber, Subscription
from ..ports import ConcurrencyConflict, NotFound, OrderRecord, PendingOrder, SubscriberPrincipal, transient
from .context import Context
from .unit_of_work import Seen, change, drafts_that_fit

PENDING, CONFIRMED, REJECTED = "pending", "confirmed", "rejected"
CONFIRMING = "confirming"  # decided, being placed: a reject can no longer win, a retried confirm resumes


class OrderRejected(ValueError):
    """The order cannot be accepted (plan not orderable, start date out of range, ...)."""


class OrderBlocked(OrderRejected):
    """Refused by an order blockage (manual 6.9). ``str()`` is what an anonymous caller may
    read; ``reason`` is customer service's, for the merchant API only."""

    PUBLIC = "The order cannot be accepted. Please contact customer service."

    def __init__(self, reason: str) -> None:
        super().__init__(self.PUBLIC)
        self.reason = reason


class OrderConflict(Exception):
    """The order reference was used before for a different order, or the pending order has
    been decided already."""


@dataclass(frozen=True)
class PlaceOrder:
    tenant: str
    plan_id: str
    payment_type: PaymentType
    name: str
    email: str
    phone: str | None = None
    address: str | None = None
    postal_code: str | None = None
    city: str | None = None
    organization_number: str | None = None
    start_date: date | None = None
    copies: int = 1
    order_ref: str | None = None
    delivery: Channel | None = None  # how its documents go; None: the organisation's default
    buyer_reference: str = ""  # the buyer's own reference, on its invoices (EHF BuyerReference)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self) | {"payment_type": self.payment_type.value,
                               "start_date": self.start_date.isoformat() if self.start_date else None,
                               "delivery": self.delivery.value if self.delivery else None}
        # fields added later are left out while unset, so an order's fingerprint (and a
        # pending order as stored) is the same as before they existed
        return {k: v for k, v in data.items() if k not in LATER or v != LATER[k]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlaceOrder:
        start = data.get("start_date")
        delivery = data.get("delivery")
        return cls(**data | {"payment_type": PaymentType(data["payment_type"]),
                             "start_date": date.fromisoformat(start) if start else None,
                             "delivery": Channel(delivery) if delivery else None})


LATER: dict[str, Any] = {"delivery": None, "buyer_reference": ""}  # fields added to PlaceOrder, with their defaults


@dataclass(frozen=True)
class OrderPlaced:
    subscriber_no: int
    subscription_id: str
    invoices: tuple[Invoice, ...]
    created: bool  # False when the same order had been placed before
    redirect_url: str | None = None  # a Vipps / card order: placed once the payer approves there


@dataclass(frozen=True)
class Payment:
    """What the person who ordered must pay for this order: its first invoice."""

    amount_minor: int
    currency: str
    due_date: date
    kid: str
    account: str | None


@dataclass(frozen=True)
class OrderTaken:
    """The sales poster's answer: accepted with what to pay, or pending confirmation."""

    accepted: bool
    created: bool
    payment: Payment | None = None
    redirect_url: str | None = None  # a Vipps / card order: where the payer approves it (nothing placed yet)


def fingerprint(order: PlaceOrder) -> str:
    """The order's content, normalised (trimmed, e-mail lower-cased), without its reference."""
    data = order.to_json() | {"order_ref": None, "email": order.email.strip().lower()}
    data = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def subscription_id(order: PlaceOrder) -> str:
    if order.order_ref:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"abonno:{order.tenant}:{order.order_ref}").hex[:16]
    return uuid.uuid4().hex[:16]


def _erased_owner(ctx: Context, tenant: str, email: str, owner: int | None) -> bool:
    """Whether the index names an erased subscriber for ``email`` (a claim its erasure could not
    release); if so the claim is released (only while it still names that subscriber)."""
    if owner is None:
        return False
    loaded = ctx.accounts.load(tenant, owner)
    if loaded is None or loaded.account.subscriber.erased is None:
        return False
    ctx.emails.release(tenant, email, owner)
    return True


def find_email(ctx: Context, tenant: str, email: str) -> int | None:
    """The subscriber the e-mail address belongs to; an erased subscriber owns no address."""
    owner = ctx.emails.find(tenant, email)
    return None if _erased_owner(ctx, tenant, email, owner) else owner


def claim_email(ctx: Context, tenant: str, email: str, subscriber_no: int) -> int:
    """Claim the address for ``subscriber_no`` (the owner if it is someone's already); an
    erased subscriber's claim left behind is released and the address claimed afresh. The
    extra read is paid only when the address is someone else's."""
    owner = ctx.emails.claim(tenant, email, subscriber_no)
    if owner != subscriber_no and _erased_owner(ctx, tenant, email, owner):
        owner = ctx.emails.claim(tenant, email, subscriber_no)
    return owner


def place_order(ctx: Context, order: PlaceOrder, subscriber_no: int | None = None) -> OrderPlaced:
    """The trusted path: the subscriber given, else the one the e-mail belongs to, else a new
    one. A reference reused for another order is refused before anything is written."""
    owner = subscriber_no or find_email(ctx, order.tenant, order.email)
    record = OrderRecord(fingerprint(order), owner or ctx.subscriber_numbers.next(order.tenant),
                         subscription_id(order))
    if order.order_ref:
        record = _bind(ctx, order, record)
    number = subscriber_no or owner or claim_email(ctx, order.tenant, order.email, record.subscriber_no)
    if order.payment_type in CHECKOUT:
        from .checkout import reusable_agreement, start_checkout  # checkout places through ``_place``

        card = reusable_agreement(ctx, order, number)  # manual 16: a valid card pays other subscriptions too
        if card is not None:
            return _place(ctx, order, number, record.subscription_id, agreement=card)
        started = start_checkout(ctx, order, number, record.subscription_id)
        return OrderPlaced(number, record.subscription_id, (), started.created, started.redirect_url)
    return _place(ctx, order, number, record.subscription_id)


def take_order(ctx: Context, order: PlaceOrder, buyer: SubscriberPrincipal | None = None) -> OrderTaken:
    """The sales poster: a new subscriber places the order; an e-mail that is an existing
    subscriber's holds it for customer service. Answers only what the caller needs:
    accepted and what to pay for this order, or pending.

    ``buyer``: the order came with a subscriber's login (token or My page's session). An
    e-mail of a subscriber the login is linked to is that subscriber's own order, placed
    at once; a new subscriber the order makes is linked to the login in the order's own
    transaction (a Vipps / card order: as its checkout is stored)."""
    catalogue = ctx.catalogue.get(order.tenant)
    _check(order, catalogue, ctx.today(catalogue))
    if buyer is not None:
        mine, room = _linked_owner(ctx, order, buyer)
        if not room:  # the login acts for as many subscribers as one may: the order is taken, nothing linked
            buyer = None
        if mine is not None:
            placed = place_order(ctx, order, subscriber_no=mine)
            return OrderTaken(accepted=True, created=placed.created, payment=_payment(placed, catalogue),
                              redirect_url=placed.redirect_url)
    record = OrderRecord(fingerprint(order), ctx.subscriber_numbers.next(order.tenant), subscription_id(order))
    if order.order_ref:
        record = _bind(ctx, order, record)
    owner = claim_email(ctx, order.tenant, order.email, record.subscriber_no)
    if owner != record.subscriber_no and not _checkouts_only(ctx, order.tenant, owner, record.subscription_id):
        _hold(ctx, order, owner)
        return OrderTaken(accepted=False, created=True)
    link = buyer if buyer is not None and owner == record.subscriber_no else None  # a subscriber this order makes
    from . import identity  # identity -> self_service -> checkout -> orders: imported when used
    if order.payment_type in CHECKOUT:
        from .checkout import start_checkout  # checkout places through ``_place``: imported when used

        started = start_checkout(ctx, order, owner, record.subscription_id)
        if link is not None:
            _link_buyer(ctx, order, owner, link)
        return OrderTaken(accepted=True, created=started.created, redirect_url=started.redirect_url)
    if link is None:
        placed = _place(ctx, order, owner, record.subscription_id)
    else:
        placed = _place(ctx, order, owner, record.subscription_id, then=identity.link_changes(link, order.email),
                        extra_entities=1)
        identity.refresh_links(ctx, link, owner)
    return OrderTaken(accepted=True, created=placed.created, payment=_payment(placed, catalogue))


def _linked_owner(ctx: Context, order: PlaceOrder, buyer: SubscriberPrincipal) -> tuple[int | None, bool]:
    """The subscriber the order's e-mail belongs to, if the buyer's login acts for it; and
    whether the login may be linked to one more (``identity.has_room``)."""
    from . import identity  # identity -> self_service -> checkout -> orders: imported when used
    from .self_service import record_of

    record = record_of(ctx, buyer)
    owner = ctx.emails.find(order.tenant, order.email)
    mine = owner if owner is not None and record.acts_for(owner) else None
    return mine, mine is not None or identity.has_room(record)


def _link_buyer(ctx: Context, order: PlaceOrder, subscriber_no: int, buyer: SubscriberPrincipal) -> None:
    """Link the buyer's login to the subscriber its Vipps / card order made (stored with the checkout)."""
    from . import identity  # identity -> self_service -> checkout -> orders: imported when used

    change(ctx, order.tenant, subscriber_no,
           lambda seen: Changes(identity.linked(seen.account, buyer.login, order.email, seen.today)))
    identity.refresh_links(ctx, buyer, subscriber_no)


def _checkouts_only(ctx: Context, tenant: str, owner: int, sub_id: str) -> bool:
    """The e-mail's account holds nothing but checkouts (a Vipps or card order declined, expired
    or still pending) and no login is linked to it, or there is none: no subscription, no
    invoice, no one's login, nothing to protect. Not yet
    a subscriber, so the next order on it is taken as the first was (a payer who declined Vipps
    and then orders with invoice is not held for customer service); and that order posted again
    (``sub_id`` placed on it, or its checkout started) gets the same answer."""
    loaded = ctx.accounts.load(tenant, owner)
    if loaded is None:  # claimed by an order that was refused (or is still on its way): nothing stored
        return True
    acc = loaded.account
    if sub_id in acc.subscriptions or any(a.subscription_id == sub_id for a in acc.agreements.values()):
        return True
    if acc.logins:  # a login is linked to it (a checkout begun signed in): someone's, though nothing is bought;
        return False  # taking this order on it would show it to that login, whose e-mail no one proved: held
    return not acc.subscriptions and acc.next_ledger_seq == 1


def pending_orders(ctx: Context, tenant: str, state: str = PENDING) -> list[PendingOrder]:
    if state == PENDING:  # one whose confirmation was cut short is still to be confirmed
        return ctx.pending.list(tenant, PENDING) + ctx.pending.list(tenant, CONFIRMING)
    return ctx.pending.list(tenant, state)


def confirm_pending(ctx: Context, tenant: str, order_id: str) -> OrderPlaced:
    """Customer service confirms a pending order: placed on the subscriber whose e-mail it
    gave (the order blockage is checked now). Confirming again conflicts.

    The decision is taken (``CONFIRMING``, under the row's ETag) *before* the order is
    placed, so a reject racing the confirm either wins before anything is placed or
    conflicts; before, the confirm placed the order and then lost the decision to the
    reject: billed, and shown as rejected. A refusal (the order blockage) puts it back
    to pending; a confirm cut short (the process died) is resumed by confirming again,
    the order reference making the placement once."""
    pending = ctx.pending.get(tenant, order_id)
    if pending is None:
        raise NotFound(f"pending order {order_id}")
    if pending.state not in (PENDING, CONFIRMING):
        raise OrderConflict(f"pending order {order_id} is {pending.state} already")
    if pending.state == PENDING:
        pending = _decide(ctx, tenant, pending, CONFIRMING)
    order = PlaceOrder.from_json(pending.order)
    order = replace(order, order_ref=order.order_ref or f"pending.{pending.id}")  # a retried confirm: one order
    try:
        placed = place_order(ctx, order, subscriber_no=pending.subscriber_no)
    except Exception as exc:
        if not transient(exc):  # refused: customer service may still reject it
            _decide(ctx, tenant, pending, PENDING)
        raise
    _decide(ctx, tenant, pending, CONFIRMED)
    return placed


def reject_pending(ctx: Context, tenant: str, order_id: str) -> None:
    _decide(ctx, tenant, _undecided(ctx, tenant, order_id), REJECTED)


def _undecided(ctx: Context, tenant: str, order_id: str) -> PendingOrder:
    pending = ctx.pending.get(tenant, order_id)
    if pending is None:
        raise NotFound(f"pending order {order_id}")
    if pending.state != PENDING:
        raise OrderConflict(f"pending order {order_id} is {pending.state} already")
    return pending


def _decide(ctx: Context, tenant: str, pending: PendingOrder, state: str) -> PendingOrder:
    try:
        return ctx.pending.decide(tenant, pending, state)
    except ConcurrencyConflict as exc:
        raise OrderConflict(f"pending order {pending.id} was decided meanwhile") from exc


def _hold(ctx: Context, order: PlaceOrder, owner: int) -> PendingOrder:
    order_id = digest(f"ref:{order.order_ref}")[:24] if order.order_ref else uuid.uuid4().hex[:24]
    received = ctx.clock.now().isoformat(timespec="seconds")
    return ctx.pending.add(order.tenant, PendingOrder(order_id, owner, order.to_json(), received))


def _bind(ctx: Context, order: PlaceOrder, record: OrderRecord) -> OrderRecord:
    assert order.order_ref
    bound = ctx.orders.bind(order.tenant, order.order_ref, record)
    if bound.fingerprint != record.fingerprint:
        raise OrderConflict("this order reference (order_ref or Idempotency-Key) was used for a different order")
    return bound


def _check(order: PlaceOrder, catalogue: Catalogue, today: date) -> None:
    plan_ = catalogue.plan(order.plan_id)
    if not plan_.orderable_on(today):
        raise OrderRejected(f"plan {plan_.id} cannot be ordered on {today}")
    start = order.start_date or today
    if not today - relativedelta(years=1) <= start <= today + relativedelta(years=1):
        raise OrderRejected("start date must be within a year of today")
    subscriber = _subscriber(order, 1, today)  # the details make a valid subscriber
    if order.delivery is not None:  # and one that can receive the channel asked for
        try:
            receivable(order.delivery, subscriber, catalogue.organizations.get(plan_.organization_id))
        except ValueError as exc:
            raise OrderRejected(str(exc)) from exc


Then = Callable[[Seen, Changes], Changes]  # what else the placing transaction does (a checkout's agreement)
CHECKOUT = (PaymentType.VIPPS, PaymentType.CARD)  # paid at a provider: placed once the payer approves there


def subscription_of(order: PlaceOrder, catalogue: Catalogue, today: date, sub_id: str,
                    agreement: str | None = None) -> Subscription:
    """The subscription an order makes (``agreement``: the key of the agreement it is charged on)."""
    plan_ = catalogue.plan(order.plan_id)
    billing = catalogue.billing_plan_of(plan_)
    sub = Subscription(sub_id, plan_.id, plan_.organization_id, billing.frequency, order.start_date or today,
                       order.payment_type, copies=order.copies, delivery=order.delivery,
                       buyer_reference=order.buyer_reference, agreement=agreement)
    if plan_.automatic_stop:  # manual 7.8: ends with its first period unless ordered again
        sub = replace(sub, stop_date=sub.period(0).end, stop_kind=StopKind.AUTOMATIC, stop_reason="Automatic stop")
    return sub


def _place(ctx: Context, order: PlaceOrder, subscriber_no: int, sub_id: str, agreement: str | None = None,
           then: Then | None = None, extra_entities: int = 0) -> OrderPlaced:
    """Place ``order`` (once: a subscription placed before is found, nothing more happens).
    ``then``: what else the same transaction does with what the placing made (``extra_entities``:
    the rows it adds), such as a checkout's agreement activated and its first payment booked."""
    catalogue = ctx.catalogue.get(order.tenant)
    today = ctx.today(catalogue)
    _check(order, catalogue, today)
    plan_ = catalogue.plan(order.plan_id)
    sub = subscription_of(order, catalogue, today, sub_id, agreement)

    def decide(seen: Seen) -> Changes:
        if sub.id in seen.account.subscriptions:  # placed before: nothing to do
            return Changes(seen.account)
        if seen.account.subscriber.erased is not None:  # whoever found its number before the erasure
            raise OrderRejected(f"subscriber {subscriber_no}'s personal data were erased: order as a new customer")
        blocked = order_blocked(seen.account, catalogue, plan_.organization_id)
        if blocked:
            raise OrderBlocked(f"subscriber {subscriber_no} cannot order: {blocked}")
        account = seen.account.with_subscription(sub)
        drafts = drafts_that_fit(seen.loaded, account, catalogue, today,  # + SubscriptionCreated
                                 extra_entities=1 + extra_entities)
        numbers = {d.natural_key: seen.number(d.organization_id, d.natural_key) for d in drafts}
        base = Changes(account, (sub,), events=(subscription_created(subscriber_no, sub),))
        changes = issue(account, drafts, numbers, catalogue, today, base)
        return then(seen, changes) if then is not None else changes

    # the subscription goes into the due index and a first invoice into the dunning index (not by
    # cadence) ahead of the commit; numbers no commit carried are released (``unit_of_work``)
    changes = change(ctx, order.tenant, subscriber_no, decide, today=today,
                     new=lambda: Account(_subscriber(order, subscriber_no, today)))
    if sub.id not in {s.id for s in changes.subscriptions}:
        invoices, _ledger = ctx.accounts.history(order.tenant, subscriber_no)
        return OrderPlaced(subscriber_no, sub.id, tuple(i for i in invoices if i.draft.subscription_id == sub.id),
                           created=False)
    return OrderPlaced(subscriber_no, sub.id, changes.invoices, created=True)


def _payment(placed: OrderPlaced, catalogue: Catalogue) -> Payment | None:
    first = min(placed.invoices, key=lambda i: i.number, default=None)
    if first is None:
        return None
    org = catalogue.organizations[first.draft.organization_id]
    return Payment(first.amount_due_minor, first.draft.currency, first.draft.due_date, first.kid, org.bank_account)


def _subscriber(order: PlaceOrder, number: int, today: date) -> Subscriber:
    try:
        return Subscriber(number, order.name, order.email.strip(), order.phone, order.address, order.postal_code,
                          order.city, organization_number=order.organization_number, created=today)
    except ValueError as exc:
        raise OrderRejected(str(exc)) from exc
