"""Stopping, pausing and restarting subscriptions (S4, S5; manual 6.4 "Subscription
stop", 6.5 "Change stop", 6.6 "Subscription pause", 6.13 "Stop codes", 7.7 "Payment
stop", 7.8 "Automatic stop").

A stop has a date ``D``, the first day without delivery. Every invoice of the
subscription that covers days from ``D`` on and is not credited yet is credited in
full, and the days before ``D`` that it covered are charged to the ledger ("If a stop
is made mid-delivery the invoice is credited and ... Ledger will be updated with the
remaining amount to be paid or credited"). The five cases of 6.4 follow:

1. *before the invoice is issued*: nothing to credit; active until ``D``;
2. *invoice issued, not paid*: credited; active until ``D``. This holds for the invoice
   of the period running until ``D`` too: an unpaid invoice of a period begun by today
   and ending by ``D`` is credited and its days charged (its reminder fees stay owed),
   as a payment stop does, so the debt is on the ledger for the balance invoice and
   nothing of a stopped subscription is reminded after it ends (without a balance
   invoice configured the invoice stays open: nothing else would ask for the debt);
3. *invoice issued and paid*: a stop at the period's end moves ``D`` to the end of the
   paid period, so nothing is credited ("active until enddate"); a stop on a date
   mid-period credits it and charges the delivered days, leaving credit;
4. *invoice credited already*: nothing more to credit; active until ``D``;
5. *after the end date*: the subscription has ended; no action (refused). An invoice
   issued after the stop was set (for the days a period the stop cuts short still
   delivers) and unpaid when it ends is credited then and its days charged, for the
   balance invoice (``close_ended``, run by the dunning visit of the end date).

A payment stop (7.7) stops today and credits every open invoice of the subscription,
charging what was delivered: the debt moves from the invoices and their reminders to
the ledger, where the balance invoice (7.11) asks for it.

VAT is kept throughout: a credit note carries the credited invoice's lines negated, a
charge carries the invoice's gross per rate pro-rated to the delivered days
(``invoicing.prorate``), and the stop's balance check keeps the charges per rate for
the balance invoice to bill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from .account import Account, BalanceCheck, Changes
from .catalogue import Catalogue
from .credit import CreditInvoice, Number, charge, credit_invoice
from .demands import OpenDemand
from .dunning import BalanceInvoiceRule
from .events import SubscriptionPaused, SubscriptionStopChanged, SubscriptionStopped
from .invoicing import DocumentKind, Invoice, InvoiceLine, prorate, summary_lines, vat_parts
from .ledger import EntryKind, VatPart, merge_vat
from .subscriptions import StopKind, Subscription


class StopRefused(ValueError):
    """The stop, pause or change cannot be made as asked."""


class UnknownSubscription(KeyError):
    """The subscriber has no such subscription."""


@dataclass(frozen=True, slots=True)
class Billed:
    """An issued invoice of a subscription, as a stop sees it."""

    invoice_number: int
    demand_no: int
    total_minor: int
    start: date
    end: date
    lines: tuple[InvoiceLine, ...]  # what a credit note negates and a charge pro-rates


def billed_of(invoices: Sequence[Invoice]) -> list[Billed]:
    out = []
    for inv in invoices:
        span = inv.draft.span
        if inv.draft.kind is DocumentKind.SUBSCRIPTION and span is not None:
            out.append(Billed(inv.number, inv.demand_no, inv.total_minor, *span, inv.draft.lines))
    return out


def billed_of_demand(d: OpenDemand) -> Billed | None:
    """An open invoice as the account alone knows it (a dunning visit reads no documents):
    its lines are its VAT breakdown, one per rate. A demand stored before it had one is
    taken as one line without VAT, which is all that was known of it."""
    t = d.terms
    if t.kind is not DocumentKind.SUBSCRIPTION or t.period_start is None or t.period_end is None:
        return None
    lines = summary_lines(t.vat, f"Invoice {t.invoice_number}") if t.vat else (
        InvoiceLine(f"Invoice {t.invoice_number}", 1, t.total_minor, 0, t.total_minor, 0),)
    return Billed(t.invoice_number, d.demand_no, t.total_minor, t.period_start, t.period_end, lines)


def _subscription(account: Account, subscription_id: str) -> Subscription:
    sub = account.subscriptions.get(subscription_id)
    if sub is None:
        raise UnknownSubscription(f"no subscription {subscription_id}")
    return sub


def check_stop_reason(catalogue: Catalogue, sub: Subscription, code: str | None, reason: str) -> None:
    codes = catalogue.organizations[sub.organization_id].stop_codes
    if codes and code not in codes:
        raise StopRefused(f"stop code must be one of {', '.join(codes)}")
    if not codes and not (code or reason.strip()):
        raise StopRefused("a stop needs a reason")


def covering(billed: Sequence[Billed], day: date) -> list[Billed]:
    """The invoices that cover days from ``day`` on."""
    return [b for b in billed if b.end > day]


def delivered_vat(b: Billed, stop_on: date) -> tuple[VatPart, ...]:
    """What of an invoice was delivered before ``stop_on``, per VAT rate (rounded down)."""
    days = (b.end - b.start).days
    return prorate(vat_parts(b.lines), min(max((stop_on - b.start).days, 0), days), days)


def _cut(account: Account, catalogue: Catalogue, sub: Subscription, stop_on: date, billed: Sequence[Billed],
         today: date, number: Number, why: str, keep_fees: bool = False) -> Changes:
    """Credit every invoice given that is not credited yet; charge the days before
    ``stop_on`` that each covered, per VAT rate."""
    currency = catalogue.organizations[sub.organization_id].currency
    changes = Changes(account)
    for b in sorted(billed, key=lambda b: b.start):
        if b.invoice_number in changes.account.credited:
            continue
        command = CreditInvoice(b.invoice_number, b.demand_no, sub.organization_id, currency, sub.id, b.total_minor,
                                DocumentKind.SUBSCRIPTION, b.lines, why, keep_fees)
        changes = changes.then(credit_invoice(changes.account, command, today, number))
        changes = changes.then(charge(changes.account, sub.organization_id, currency, delivered_vat(b, stop_on),
                                      str(b.invoice_number), f"Delivered {b.start} to {stop_on - timedelta(days=1)}"
                                      f" of invoice {b.invoice_number}", today))
    return changes


def charged(changes: Changes) -> tuple[VatPart, ...]:
    """The charges for delivered days among ``changes``, per VAT rate."""
    return merge_vat(p for e in changes.ledger if e.kind is EntryKind.CHARGE for p in e.vat)


def _stopped(changes: Changes, catalogue: Catalogue, sub: Subscription, stop_on: date, kind: StopKind,
             code: str | None, reason: str, today: date) -> Changes:
    stopped = replace(sub, stop_date=stop_on, stop_kind=kind, stop_code=code, stop_reason=reason)
    account = changes.account.with_subscription(stopped)
    process = catalogue.dunning_of(sub.plan_id)
    if process is not None and process.balance_invoice is not None and kind is not StopKind.PAUSE:
        check = BalanceCheck(sub.organization_id, sub.id,
                             max(stop_on, today) + timedelta(days=process.balance_invoice.days_after_stop),
                             charged(changes))
        account = replace(account, balance_checks=(*account.balance_checks, check))
    event = SubscriptionStopped(f"subscription-stopped.{sub.id}.{stop_on}", account.number, sub.id, stop_on, kind,
                                code, reason)
    return replace(changes, account=account, subscriptions=(*changes.subscriptions, stopped),
                   events=(*changes.events, event))


def _paid(account: Account, billed: Billed) -> bool:
    return billed.invoice_number not in account.credited and billed.demand_no not in account.open_demands


def _unpaid_delivered(account: Account, catalogue: Catalogue, sub: Subscription, billed: Sequence[Billed],
                      stop_on: date, today: date) -> list[Billed]:
    """Case 2 for the current period: its unpaid invoice, when the period ends by the stop,
    which the stop credits and charges for the balance invoice to bill (older unpaid ones
    are credited when the subscription ends, ``close_ended``, in parts if many); none
    when no balance invoice is configured (7.11), as nothing would then ask for the debt:
    the invoice stays open and asks for it itself."""
    if balance_rule(catalogue, sub) is None:
        return []
    return [b for b in billed if b.start <= today < b.end <= stop_on and b.demand_no in account.open_demands]


@dataclass(frozen=True, slots=True)
class StopSubscription:
    """Manual 6.4: stop at the end of the period (``at_period_end``) or from ``stop_on``,
    with a stop code (6.13) or a reason."""

    subscription_id: str
    at_period_end: bool
    stop_on: date | None
    code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ChangeStop:
    """Manual 6.5: move a stop still in the future to ``stop_on``, or remove it (None)."""

    subscription_id: str
    stop_on: date | None
    reason: str


@dataclass(frozen=True, slots=True)
class PauseSubscription:
    """Manual 6.6: pause until ``restart_on``; the restart is subscription ``new_id``, of
    the same plan or ``plan_id``."""

    subscription_id: str
    restart_on: date
    new_id: str
    plan_id: str | None = None


def stop(account: Account, catalogue: Catalogue, command: StopSubscription, invoices: Sequence[Invoice],
         today: date, number: Number) -> Changes:
    """Stop a subscription at the end of its period, or from ``stop_on`` (manual 6.4)."""
    sub = _subscription(account, command.subscription_id)
    code, reason, stop_on = command.code, command.reason, command.stop_on
    if sub.stop_date is not None and sub.stop_date <= today:
        raise StopRefused(f"subscription {sub.id} ended on {sub.stop_date}: no action")  # case 5
    check_stop_reason(catalogue, sub, code, reason)
    billed = billed_of(invoices)
    if command.at_period_end:
        day = sub.renewal_on(today)
        by_start = {b.start: b for b in billed}
        while day in by_start and _paid(account, by_start[day]):  # case 3: paid, so delivered to its end
            day = by_start[day].end
    else:
        if stop_on is None or stop_on < today:
            raise StopRefused("a stop on a date needs a date from today on")
        day = stop_on
    if sub.stop_date is not None and day >= sub.stop_date:
        raise StopRefused(f"subscription {sub.id} stops on {sub.stop_date} already; change that stop instead")
    why = f"Subscription stopped from {day}"
    changes = _cut(account, catalogue, sub, day, _unpaid_delivered(account, catalogue, sub, billed, day, today),
                   today, number, why, keep_fees=True)
    changes = changes.then(_cut(changes.account, catalogue, sub, day, covering(billed, day), today, number, why))
    return _stopped(changes, catalogue, sub, day, StopKind.CUSTOMER, code, reason, today)


def change_stop(account: Account, catalogue: Catalogue, command: ChangeStop, invoices: Sequence[Invoice],
                today: date, number: Number) -> Changes:
    """Move or remove a stop still in the future (manual 6.5; a reason is required). An
    invoice credited by the stop stays credited: restarted, "the subscription will be
    active without invoice to be paid"."""
    sub = _subscription(account, command.subscription_id)
    stop_on, reason = command.stop_on, command.reason
    if not reason.strip():
        raise StopRefused("a reason for the change is required")
    if sub.stop_date is None or sub.stop_date <= today:
        raise StopRefused(f"subscription {sub.id} has no stop in the future to change")
    if stop_on is not None and stop_on < today:
        raise StopRefused("a stop cannot be moved into the past")
    changes = Changes(account)
    if stop_on is not None and stop_on < sub.stop_date:
        changes = _cut(account, catalogue, sub, stop_on, covering(billed_of(invoices), stop_on), today, number,
                       f"Stop moved to {stop_on}")
    changed = replace(sub, stop_date=stop_on, stop_reason=reason,
                      stop_kind=sub.stop_kind if stop_on is not None else None,
                      stop_code=sub.stop_code if stop_on is not None else None)
    more = charged(changes)  # the moved stop's charges are billed with the stop's
    balance_checks = tuple(replace(c, charged=merge_vat((*c.charged, *more))) if c.subscription_id == sub.id else c
                           for c in changes.account.balance_checks  # removed: charges made stay billed
                           if c.subscription_id != sub.id or stop_on is not None or c.charged)
    account = replace(changes.account.with_subscription(changed), balance_checks=balance_checks)
    event = SubscriptionStopChanged(f"stop-changed.{sub.id}.{sub.stop_date}.{stop_on}", account.number, sub.id,
                                    sub.stop_date, stop_on, reason)
    return replace(changes, account=account, subscriptions=(*changes.subscriptions, changed),
                   events=(*changes.events, event))


def pause(account: Account, catalogue: Catalogue, command: PauseSubscription, invoices: Sequence[Invoice],
          today: date, number: Number) -> Changes:
    """Pause from the renewal date of the ongoing period to ``restart_on`` (manual 6.6).

    The restart is a new subscription (of the same plan, or ``plan_id``) anchored on the
    restart date, so it starts "as it was before" by itself; its first invoice comes
    ``lead_days`` ahead like a renewal's. Invoices of periods inside the pause are
    credited, paid or not: nothing is delivered then.
    """
    sub = _subscription(account, command.subscription_id)
    restart_on, new_id = command.restart_on, command.new_id
    if sub.stop_date is not None and sub.stop_date <= today:
        raise StopRefused(f"subscription {sub.id} has ended")
    day = sub.renewal_on(today)
    if restart_on <= day:
        raise StopRefused(f"the restart date must be after the pause begins on {day}")
    plan = catalogue.plan(command.plan_id or sub.plan_id)
    billing = catalogue.billing_plan_of(plan)
    changes = _cut(account, catalogue, sub, day, covering(billed_of(invoices), day), today, number,
                   f"Paused from {day}")
    changes = _stopped(changes, catalogue, sub, day, StopKind.PAUSE, None, f"Paused until {restart_on}", today)
    restart = Subscription(new_id, plan.id, plan.organization_id, billing.frequency, restart_on, sub.payment_type,
                           sub.copies, scheduled_start=True, resumes=sub.id,
                           delivery=sub.delivery, buyer_reference=sub.buyer_reference)  # "as it was before"
    event = SubscriptionPaused(f"subscription-paused.{sub.id}", account.number, sub.id, day, restart_on, new_id)
    return replace(changes, account=changes.account.with_subscription(restart),
                   subscriptions=(*changes.subscriptions, restart), events=(*changes.events, event))


def _open_billed(account: Account, sub: Subscription, invoices: Sequence[Invoice]) -> list[Billed]:
    """The subscription's open invoices: the ``invoices`` given where there, else as their
    demands know them (per VAT rate)."""
    issued = {b.demand_no: b for b in billed_of(invoices)}
    return [b for d in account.open_demands.values() if d.terms.subscription_id == sub.id
            and (b := issued.get(d.demand_no) or billed_of_demand(d)) is not None]


def payment_stop(account: Account, catalogue: Catalogue, subscription_id: str, cause: str, today: date,
                 number: Number, limit: int | None = None, invoices: Sequence[Invoice] = ()) -> Changes:
    """Manual 7.7: stop today, credit the open invoices and charge what was delivered. The
    credit notes mirror the ``invoices`` given line for line; an open invoice not given is
    credited per VAT rate, from its demand.

    ``limit`` credits at most that many (the oldest) at once, so that one part fits a
    transaction; called again, a payment stop with open invoices left credits the next
    ones, from the day it stopped (``unfinished``), their charges added to its balance check."""
    sub = account.subscriptions[subscription_id]
    billed = sorted(_open_billed(account, sub, invoices), key=lambda b: b.start)
    part = billed[:limit] if limit is not None else billed
    if sub.stop_date is not None and sub.stop_date <= today:
        if not unfinished(account, sub):
            return Changes(account)  # stopped already: nothing more to do
        more = _cut(account, catalogue, sub, sub.stop_date, part, today, number, sub.stop_reason, keep_fees=True)
        return _with_charges(more, sub, today)
    changes = _cut(account, catalogue, sub, today, part, today, number, cause, keep_fees=True)
    return _stopped(changes, catalogue, sub, today, StopKind.PAYMENT, None, cause, today)


def unfinished(account: Account, sub: Subscription) -> bool:
    """A payment stop made in parts with open invoices of the subscription still to credit."""
    return sub.stop_kind is StopKind.PAYMENT and any(
        d.terms.subscription_id == sub.id and d.terms.kind is DocumentKind.SUBSCRIPTION
        and d.terms.period_start is not None and d.terms.period_end is not None for d in account.open_demands.values())


def balance_rule(catalogue: Catalogue, sub: Subscription) -> BalanceInvoiceRule | None:
    """The balance invoice (7.11) that asks for what a stop of this subscription leaves."""
    process = catalogue.dunning_of(sub.plan_id)
    return process.balance_invoice if process is not None else None


def ends_unpaid(catalogue: Catalogue, sub: Subscription | None) -> bool:
    """A subscription stopped by customer service or automatically (a pause goes on; a
    payment stop credits its own, ``unfinished``) whose unpaid invoices go to the balance
    invoice when it ends (6.4 case 2: "not paid before enddate: invoice credited"): only
    where a balance invoice is configured to ask for the debt."""
    return (sub is not None and sub.stop_date is not None
            and sub.stop_kind not in (StopKind.PAUSE, StopKind.PAYMENT) and balance_rule(catalogue, sub) is not None)


def _with_charges(changes: Changes, sub: Subscription, today: date, rule: BalanceInvoiceRule | None = None) -> Changes:
    """Charges made after a stop go to its pending balance check (or, ``rule``, a new one)."""
    more = charged(changes)
    if not more:
        return changes
    checks = changes.account.balance_checks
    mine = next((i for i, c in enumerate(checks) if c.subscription_id == sub.id), None)
    if mine is not None:
        checks = (*checks[:mine], replace(checks[mine], charged=merge_vat((*checks[mine].charged, *more))),
                  *checks[mine + 1:])
    elif rule is not None:
        checks = (*checks, BalanceCheck(sub.organization_id, sub.id, today + timedelta(days=rule.days_after_stop),
                                        more))
    return replace(changes, account=replace(changes.account, balance_checks=checks))


def close_ended(account: Account, catalogue: Catalogue, subscription_id: str, today: date, number: Number,
                invoices: Sequence[Invoice] = (), limit: int | None = None) -> Changes:
    """A subscription has ended with invoices unpaid (issued after its stop was set, for
    the days it still delivered, or older ones): credit them (at most ``limit``, the
    oldest), charge what they delivered (their reminder fees stay owed) and have a balance
    invoice bill it, as a payment stop does, so nothing of an ended subscription is
    reminded after it ends."""
    sub = account.subscriptions[subscription_id]
    rule = balance_rule(catalogue, sub)
    if sub.stop_date is None or sub.stop_date > today or not ends_unpaid(catalogue, sub) or rule is None:
        return Changes(account)
    billed = sorted(_open_billed(account, sub, invoices), key=lambda b: b.start)
    changes = _cut(account, catalogue, sub, sub.stop_date, billed[:limit] if limit is not None else billed, today,
                   number, f"Unpaid when the subscription ended on {sub.stop_date}", keep_fees=True)
    return _with_charges(changes, sub, today, rule)
