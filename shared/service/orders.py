"""Place an order from the sales poster (S2; manual 5 "New order", 6.3, 10 "Dataflow").

An order creates (or finds, by e-mail) the subscriber, adds the subscription with its
payment agreement, issues the first period's invoice at once (due per the billing
plan, manual 6.3) and leaves the next period as a draft that the overview computes
from the subscription, so it changes whenever the subscription does.

Idempotent: an order carries ``order_ref`` (the sales poster's form id, or an
``Idempotency-Key``); the subscription id derives from it, so the same order posted
twice finds its subscription and returns the same result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date

from dateutil.relativedelta import relativedelta

from ..adapters.tables import ConcurrencyConflict
from ..domain.account import Account, Changes, issue, subscription_created
from ..domain.catalogue import PaymentType
from ..domain.collection import order_blocked
from ..domain.invoicing import Invoice
from ..domain.subscriptions import StopKind, Subscriber, Subscription
from .context import Context
from .issuing import claim_numbers, commit, index_next_visit, plan

MAX_ATTEMPTS = 10


class OrderRejected(ValueError):
    """The order cannot be accepted (plan not orderable, start date out of range, ...)."""


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


@dataclass(frozen=True)
class OrderPlaced:
    subscriber_no: int
    subscription_id: str
    invoices: tuple[Invoice, ...]
    created: bool  # False when the same order had been placed before


def subscription_id(order: PlaceOrder) -> str:
    if order.order_ref:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"abonno:{order.tenant}:{order.order_ref}").hex[:16]
    return uuid.uuid4().hex[:16]


def place_order(ctx: Context, order: PlaceOrder) -> OrderPlaced:
    catalogue = ctx.catalogue.get(order.tenant)
    plan_ = catalogue.plan(order.plan_id)
    today = ctx.today(catalogue)
    if not plan_.orderable_on(today):
        raise OrderRejected(f"plan {plan_.id} cannot be ordered on {today}")
    start = order.start_date or today
    if not today - relativedelta(years=1) <= start <= today + relativedelta(years=1):
        raise OrderRejected("start date must be within a year of today")
    billing = catalogue.billing_plan_of(plan_)
    sub = Subscription(subscription_id(order), plan_.id, plan_.organization_id, billing.frequency, start,
                       order.payment_type, copies=order.copies)
    if plan_.automatic_stop:  # manual 7.8: ends with its first period unless ordered again
        sub = replace(sub, stop_date=sub.period(0).end, stop_kind=StopKind.AUTOMATIC, stop_reason="Automatic stop")
    subscriber_no = _subscriber_for(ctx, order)
    ctx.due_index.add(order.tenant, sub.cadence, subscriber_no, sub.id)  # write-ahead, see indexes.py
    for _ in range(MAX_ATTEMPTS):
        loaded = ctx.accounts.load(order.tenant, subscriber_no)
        if loaded and sub.id in loaded.account.subscriptions:
            invoices, _ledger = ctx.accounts.history(order.tenant, subscriber_no)
            return OrderPlaced(subscriber_no, sub.id, tuple(i for i in invoices if i.draft.subscription_id == sub.id),
                               created=False)
        account = loaded.account if loaded else Account(_subscriber(order, subscriber_no, today))
        blocked = order_blocked(account, catalogue, plan_.organization_id)
        if blocked:
            raise OrderRejected(f"subscriber {subscriber_no} cannot order: {blocked}")
        account = account.with_subscription(sub)
        drafts = plan(loaded, account, catalogue, today, extra_entities=1)  # + SubscriptionCreated
        numbers = claim_numbers(ctx, order.tenant, catalogue, drafts)
        base = Changes(account, (sub,), events=(subscription_created(subscriber_no, sub),))
        changes = issue(account, drafts, numbers, catalogue, today, base)
        index_next_visit(ctx, order.tenant, catalogue, changes.account, today)  # a first invoice: not by cadence
        try:
            commit(ctx, order.tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        return OrderPlaced(subscriber_no, sub.id, changes.invoices, created=True)
    raise ConcurrencyConflict(f"order for subscriber {subscriber_no} kept conflicting")


def _subscriber_for(ctx: Context, order: PlaceOrder) -> int:
    existing = ctx.emails.find(order.tenant, order.email)
    if existing is not None:
        return existing
    return ctx.emails.claim(order.tenant, order.email, ctx.subscriber_numbers.next(order.tenant))


def _subscriber(order: PlaceOrder, number: int, today: date) -> Subscriber:
    try:
        return Subscriber(number, order.name, order.email.strip(), order.phone, order.address, order.postal_code,
                          order.city, organization_number=order.organization_number, created=today)
    except ValueError as exc:
        raise OrderRejected(str(exc)) from exc

