"""The dunning visit: what the daily dunning run does to one subscriber (D1-D3).

``dun(account, catalogue, today, number)`` looks at every open demand whose
subscription's billing plan has a dunning process, asks ``dunning.evaluate`` what is
due today, and does it:

* a reminder: a demand number and KID of its own (paying it settles the invoice, see
  ``OpenDemand.answers_to``), its fee debited to the ledger and added to the demand,
  and a notice (e-mail, or SMS with e-mail when the phone number is missing);
* "payment stop in N days": a notice, once;
* a payment stop: ``lifecycle.payment_stop`` for the subscription;
* a balance invoice, when a stop's balance check falls due and the subscriber owes at
  least the configured amount that no invoice asks for.

What it did is recorded in the account (the reminders on the demand, the notice flag,
the stop), so a second visit on the same day finds nothing to do: the dunning run is
idempotent by construction. ``next_visit`` says when the subscriber needs looking at
again, for the dunning index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from .account import Account, BalanceCheck, Changes, ReminderDocument, next_kid, process_of
from .catalogue import Catalogue, DunningProcess
from .credit import BalanceInvoice, Number, balance_invoice
from .demands import OpenDemand
from .dunning import (
    DunningCase,
    IssueReminder,
    NoticeChannel,
    PaymentStop,
    Reminder,
    evaluate,
    next_reminder_on,
    stop_check_on,
)
from .events import PaymentStopNotice, ReminderIssued, ReminderPostponed
from .invoicing import DocumentKind, Invoice
from .ledger import EntryKind, LedgerEntry, merge_vat
from .lifecycle import close_ended, ends_unpaid, payment_stop, unfinished
from .subscriptions import Subscription


def _case(d: OpenDemand) -> DunningCase:
    return DunningCase(d.terms.amount_due_minor, d.principal_open_minor, d.terms.due_date, d.dunning.reminders,
                       d.dunning.postponed_to)


def owed(account: Account, organization_id: str) -> int:
    return max(0, -account.balances.get(organization_id, 0))


def dunned_by(account: Account, catalogue: Catalogue, demand: OpenDemand) -> DunningProcess | None:
    """The process that reminds and stops for a demand; none for a balance invoice (7.11:
    it bills what a stop left owing, so it is never reminded nor stops anything again)."""
    return None if demand.terms.kind is DocumentKind.BALANCE else process_of(account, catalogue, demand)


def _closing(account: Account, catalogue: Catalogue, demand: OpenDemand, today: date) -> bool:
    """An invoice of a subscription that has ended, credited by ``close_ended`` (in this
    part or the next): never reminded."""
    sub = account.subscriptions.get(demand.terms.subscription_id)
    return sub is not None and sub.stop_date is not None and sub.stop_date <= today and ends_unpaid(catalogue, sub)


def stoppable(sub: Subscription | None, stop_on: date) -> bool:
    """Can a payment stop on ``stop_on`` still stop this subscription (manual 7.7, 6.19)?

    Not when there is no such subscription, nor when a stop already set ends it on or
    before ``stop_on`` (it has ended, was payment-stopped, or a customer stop, pause or
    automatic stop comes first): a "payment stop in N days" notice would then announce
    a stop that never comes, and the stop itself has nothing left to stop."""
    return sub is not None and (sub.stop_date is None or sub.stop_date > stop_on)


def addressed(account: Account, process: DunningProcess) -> tuple[NoticeChannel, str]:
    """How a notice reaches the subscriber: by SMS where the process says so and there is a
    phone number, else by e-mail (manual 6.19)."""
    s = account.subscriber
    if process.notice_channel is NoticeChannel.SMS and s.phone:
        return NoticeChannel.SMS, s.phone
    return NoticeChannel.EMAIL, s.email


def remind(account: Account, catalogue: Catalogue, demand: OpenDemand, process: DunningProcess,
           reminder: Reminder, today: date) -> Changes:
    org = catalogue.organizations[demand.terms.organization_id]
    demand_no, kid = next_kid(org.kid, account.number, account.next_demand_no)
    reminder = replace(reminder, demand_no=demand_no, kid=kid)
    seq = account.next_ledger_seq
    ledger: tuple[LedgerEntry, ...] = ()
    if reminder.fee_minor:
        ledger = (LedgerEntry(seq, org.id, org.currency, today, EntryKind.REMINDER_FEE, -reminder.fee_minor,
                              str(demand.terms.invoice_number), f"Reminder {reminder.step} fee, invoice "
                              f"{demand.terms.invoice_number}"),)
    updated = replace(demand, open_minor=demand.open_minor + reminder.fee_minor,
                      fees_minor=demand.fees_minor + reminder.fee_minor,
                      dunning=replace(demand.dunning, reminders=(*demand.dunning.reminders, reminder),
                                      postponed_to=None, postpone_reason=""))
    balances = {**account.balances, org.id: account.balances.get(org.id, 0) - reminder.fee_minor}
    new = replace(account, open_demands={**account.open_demands, demand.demand_no: updated}, balances=balances,
                  next_demand_no=demand_no + 1, next_ledger_seq=seq + len(ledger))
    letter = account.letter(org, account.subscriptions.get(demand.terms.subscription_id))
    doc = ReminderDocument(reminder, demand.terms.invoice_number, demand.demand_no, org.id, org.currency,
                           demand.terms.subscription_id, letter)
    channel, to = addressed(account, process)
    event = ReminderIssued(
        f"reminder.{org.id}.{demand.terms.invoice_number}.{reminder.step}", subscriber_no=account.number,
        name=account.subscriber.name, day=today, channel=channel, to=to, organization_id=org.id,
        organization_name=org.name, invoice_number=demand.terms.invoice_number, kid=kid, currency=org.currency,
        bank_account=org.bank_account, step=reminder.step, amount_minor=reminder.amount_minor,
        fee_minor=reminder.fee_minor, due_date=reminder.due_date, demand_no=demand_no)
    return Changes(new, ledger=ledger, events=(event,), reminders=(doc,))


def _stop_notice(account: Account, catalogue: Catalogue, demand: OpenDemand, process: DunningProcess,
                 today: date) -> Changes | None:
    rule, days = process.stop_rule, process.stop_notice_days
    check = stop_check_on(process.reminders, rule, _case(demand))
    if (rule is None or days is None or check is None or demand.dunning.stop_noticed
            or not check - timedelta(days) <= today):
        return None
    if today >= check or owed(account, demand.terms.organization_id) < max(rule.threshold_minor, 1):
        return None
    if not stoppable(account.subscriptions.get(demand.terms.subscription_id), check):
        return None
    org = catalogue.organizations[demand.terms.organization_id]
    updated = replace(demand, dunning=replace(demand.dunning, stop_noticed=True))
    channel, to = addressed(account, process)
    event = PaymentStopNotice(
        f"stop-notice.{org.id}.{demand.terms.invoice_number}", subscriber_no=account.number,
        name=account.subscriber.name, day=today, channel=channel, to=to, organization_id=org.id,
        organization_name=org.name, invoice_number=demand.terms.invoice_number,
        kid=demand.dunning.reminders[-1].kid if demand.dunning.reminders else "",
        currency=org.currency, bank_account=org.bank_account, stop_date=check, owed_minor=owed(account, org.id))
    return Changes(replace(account, open_demands={**account.open_demands, demand.demand_no: updated}),
                   events=(event,))


VISIT_ROWS = 60  # what one part of a visit may write: with the subscriber row and the outbox rows of the
ROWS_PER_STEP = 4  # part before it, inside a 100-entity transaction; a reminder writes 4 rows
ROWS_PER_CREDIT = 5  # a credit note, its demand row, two ledger entries and an event


def rows(changes: Changes) -> int:
    """At most how many rows ``changes`` writes: every document, entry, event and
    subscription, and for each event the demand, check or subscription row it changed."""
    return (2 * len(changes.events) + len(changes.ledger) + len(changes.reminders) + len(changes.invoices)
            + len(changes.credit_notes) + len(changes.subscriptions))


def dun(account: Account, catalogue: Catalogue, today: date, number: Number,
            invoices: Sequence[Invoice] = ()) -> Changes:
    """One part of the visit of ``today``: what fits one transaction (``VISIT_ROWS``).
    What is left is due still: ``dun`` again on the result does the next part (the
    worker does, at once), until it finds nothing to do.

    The unpaid invoices of a subscription that has ended are credited and charged first
    (``lifecycle.close_ended``), so they are never reminded. Credit notes mirror the open
    ``invoices`` given line for line (the service reads them when a dry visit credits:
    ``credited``), others are per VAT rate from their demands."""
    changes = _close_ended(Changes(account), catalogue, today, number, invoices)
    stops: dict[str, str] = {s.id: s.stop_reason for s in account.subscriptions.values() if unfinished(account, s)}
    demands = changes.account.open_demands
    for demand_no in sorted(demands, key=lambda n: (demands[n].terms.due_date, n)):
        if rows(changes) + ROWS_PER_STEP > VISIT_ROWS:
            break  # the rest are due still: the next part
        changes = _dun_demand(changes, catalogue, changes.account.open_demands[demand_no], today, stops)
    for subscription_id, cause in stops.items():
        room = (VISIT_ROWS - rows(changes) - ROWS_PER_STEP) // ROWS_PER_CREDIT  # the stop's own rows
        if room > 0:
            changes = changes.then(payment_stop(changes.account, catalogue, subscription_id, cause, today, number,
                                                limit=room, invoices=invoices))
    while (check := next((c for c in changes.account.balance_checks if c.on <= today), None)) is not None:
        if rows(changes) + ROWS_PER_STEP > VISIT_ROWS:
            break  # the next part
        changes = changes.then(_balance_check(changes.account, catalogue, check, today, number))
    return changes


def _close_ended(changes: Changes, catalogue: Catalogue, today: date, number: Number,
                 invoices: Sequence[Invoice]) -> Changes:
    """Credit and charge the unpaid invoices of the subscriptions that have ended, as many
    as fit beside one dunning step."""
    for subscription_id in sorted({d.terms.subscription_id for d in changes.account.open_demands.values()
                                   if d.terms.kind is DocumentKind.SUBSCRIPTION}):
        room = (VISIT_ROWS - rows(changes) - ROWS_PER_STEP) // ROWS_PER_CREDIT
        if room > 0:
            changes = changes.then(close_ended(changes.account, catalogue, subscription_id, today, number, invoices,
                                               limit=room))
    return changes


CHARGE_GRACE_DAYS = 3  # after a charge's last retry day, how long dunning still waits to hear its outcome


def charge_waits_until(account: Account, demand: OpenDemand) -> date | None:
    """The last day dunning waits for the provider charges out for the demand (P6), if any:
    the provider retries for ``retry_days`` after the due date, and its answer may come a
    little later. The wait is bounded: a charge whose outcome never comes (a reservation
    never captured, a lost charge) does not hold the demand's reminders back for ever; if
    the money comes later it is booked as any late payment."""
    ends = [c.due + timedelta(days=c.retry_days + CHARGE_GRACE_DAYS) for c in account.charges.values()
            if c.demand_no == demand.demand_no]
    return max(ends) if ends else None


def charging(account: Account, demand: OpenDemand, today: date) -> bool:
    """A provider charge is out for the demand and may still be paid: dunning waits; a failure
    (or the end of the wait) leaves the demand to dunning."""
    until = charge_waits_until(account, demand)
    return until is not None and today <= until


def _dun_demand(changes: Changes, catalogue: Catalogue, demand: OpenDemand, today: date,
                stops: dict[str, str]) -> Changes:
    """What dunning does today about one demand: a reminder, a stop notice, or a payment
    stop of its subscription (entered in ``stops``, done after every demand was seen)."""
    process = dunned_by(changes.account, catalogue, demand)
    if (process is None or charging(changes.account, demand, today)
            or _closing(changes.account, catalogue, demand, today)):
        return changes
    action = evaluate(process.reminders, process.stop_rule, process.consume_partial_payments, _case(demand),
                      owed(changes.account, demand.terms.organization_id), today)
    if isinstance(action, IssueReminder):
        return changes.then(remind(changes.account, catalogue, demand, process, action.reminder, today))
    if isinstance(action, PaymentStop):
        if stoppable(changes.account.subscriptions.get(demand.terms.subscription_id), today):
            stops.setdefault(demand.terms.subscription_id, action.cause)
        return changes
    noticed = _stop_notice(changes.account, catalogue, demand, process, today)
    return changes if noticed is None else changes.then(noticed)


def _balance_check(account: Account, catalogue: Catalogue, check: BalanceCheck, today: date,
                   number: Number) -> Changes:
    """A stop's balance check falls due (7.11): a balance invoice if enough is owed that no
    invoice asks for. It bills the charges of every pending check of the organisation (the
    debt is the organisation's); checked and found too little, its charges go on to the
    organisation's next pending check, so a later balance invoice still names their VAT."""
    org = check.organization_id
    rest = [c for c in account.balance_checks if c != check]
    sub = account.subscriptions[check.subscription_id]
    process = catalogue.dunning_of(sub.plan_id)
    rule = process.balance_invoice if process else None
    debt = account.unbilled_debt(org)
    if rule is None or debt <= 0 or debt < rule.min_owed_minor:
        later = next((i for i, c in enumerate(rest) if c.organization_id == org), None)
        if later is not None:
            rest[later] = replace(rest[later], charged=merge_vat((*rest[later].charged, *check.charged)))
        return Changes(replace(account, balance_checks=tuple(rest)))
    charged = merge_vat(p for c in (check, *rest) if c.organization_id == org for p in c.charged)
    rest = [replace(c, charged=()) if c.organization_id == org else c for c in rest]
    terms = catalogue.billing_plan_of(catalogue.plan(sub.plan_id)).terms_days
    command = BalanceInvoice(org, sub.id, terms, f"{sub.id}.{check.on}", charged)
    return balance_invoice(replace(account, balance_checks=tuple(rest)), catalogue, command, today, number)


def credited(changes: Changes) -> list[int]:
    """The demands a visit credited (a payment stop, an ended subscription): the invoices
    the service reads so that the credit notes mirror them."""
    return sorted(c.demand_no for c in changes.credit_notes)


def next_visit(account: Account, catalogue: Catalogue, today: date) -> date | None:
    """The first day after ``today`` on which ``dun`` may have something to do: a
    reminder or balance check left for later by a full visit counts as tomorrow."""
    tomorrow = today + timedelta(days=1)
    days: list[date] = [max(c.on, tomorrow) for c in account.balance_checks]
    days += [tomorrow for s in account.subscriptions.values() if unfinished(account, s)]
    for demand in account.open_demands.values():
        process = dunned_by(account, catalogue, demand)
        if process is None:
            continue
        if charging(account, demand, today):  # a failure indexes the visit it makes necessary (service.charges);
            until = charge_waits_until(account, demand)  # without news, dunning looks again when the wait ends
            assert until is not None
            days.append(until + timedelta(days=1))
            continue
        case = _case(demand)
        when = next_reminder_on(process.reminders, case)
        if when is not None and demand.principal_open_minor > 0:
            when = max(when, tomorrow)
        elif when is None:
            when = stop_check_on(process.reminders, process.stop_rule, case)
            if when is not None and not stoppable(account.subscriptions.get(demand.terms.subscription_id), when):
                when = None  # the subscription ends before: no notice, no stop to check
            if when is not None and process.stop_notice_days is not None and not demand.dunning.stop_noticed:
                days.append(when - timedelta(days=process.stop_notice_days))
        if when is not None:
            days.append(when)
        sub = account.subscriptions.get(demand.terms.subscription_id)
        if sub is not None and sub.stop_date is not None and ends_unpaid(catalogue, sub):
            days.append(max(sub.stop_date, tomorrow))  # unpaid when it ends: credited then (or next part)
    later = [d for d in days if d > today]
    return min(later) if later else None


def postpone(account: Account, demand_no: int, to: date, reason: str, today: date) -> Changes:
    """Manual 7.9 "Postpone reminder": the next reminder waits until ``to``."""
    demand = account.open_demands.get(demand_no)
    if demand is None:
        raise LookupError(f"no open demand {demand_no}")
    if not reason.strip() or to <= today:
        raise ValueError("a postponement needs a reason and a date after today")
    updated = replace(demand, dunning=replace(demand.dunning, postponed_to=to, postpone_reason=reason))
    return Changes(replace(account, open_demands={**account.open_demands, demand_no: updated}),
                   events=(ReminderPostponed(f"reminder-postponed.{demand.terms.invoice_number}.{to}", account.number,
                                             demand.terms.invoice_number, to, reason),))


def order_blocked(account: Account, catalogue: Catalogue, organization_id: str) -> str | None:
    """Why the subscriber may not order from the organisation (manual 6.9), or None."""
    block = account.order_blocks.get(organization_id)
    if block is not None:
        return f"order blockage since {block.since}: {block.reason}"
    threshold = catalogue.organizations[organization_id].order_blockage_minor
    if threshold is not None and owed(account, organization_id) >= threshold > 0:
        return f"owes {owed(account, organization_id)} minor units, at or over the order blockage threshold"
    return None
