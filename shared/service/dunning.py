"""The dunning run (D1-D3; manual 7.7, 7.9, 7.11, 7.19): reminders, notices, payment
stops and balance invoices, daily, fanned out like the invoice run.

* ``start_dunning_run`` (the timer): for each day since the last run it finds the
  subscribers to visit without scanning: those whose *renewal* invoices reach their
  first reminder (or stop check) that day, read from the due index by cadence (a
  renewal falls due on its period's start, so the cadence says when), and those the
  dunning index names for the day (first invoices, later reminders, stop checks,
  balance invoices: written when the step before them was taken). Batches of
  50 subscribers go to ``run-work`` as messages of kind ``dunning``.
* ``dun_subscribers`` (the worker): reads each subscriber, lets ``dunning_visit.dun``
  decide, writes the next visit to the dunning index, and commits each subscriber in
  one transaction. What was done is recorded in the account, so a repeated message or
  a second run for the day does nothing more. A subscriber whose visit fails is
  recorded as needing attention and visited again by the next run; the rest of the
  batch is visited (``isolation``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from ..adapters.bus import RUN_WORK
from ..domain.account import Account, Changes
from ..domain.calendar import cadence_keys_starting_on
from ..domain.catalogue import Catalogue
from ..domain.credit import Number
from ..domain.dunning_visit import credited, dun
from ..domain.events import SubscriberNotice, SubscriptionStopped
from ..domain.invoicing import Invoice
from .billing import RunStarted, batches, start_run
from .buckets import grouped
from .checkout import stopping
from .context import Context
from .isolation import for_each_subscriber
from .unit_of_work import MAX_PARTS, Decision, Seen

log = logging.getLogger(__name__)
DUNNING_RUN = "dunning"


@dataclass
class DunningResult:
    subscribers: int = 0
    reminders: int = 0
    reminder_fees_minor: int = 0
    payment_stops: int = 0
    credit_notes: int = 0
    balance_invoices: int = 0
    notices: int = 0
    conflicts: int = 0
    needs_attention: int = 0

    def add(self, changes: Changes) -> None:
        self.reminders += len(changes.reminders)
        self.reminder_fees_minor += sum(r.reminder.fee_minor for r in changes.reminders)
        self.payment_stops += sum(1 for e in changes.events if isinstance(e, SubscriptionStopped))
        self.credit_notes += len(changes.credit_notes)
        self.balance_invoices += len(changes.invoices)
        self.notices += sum(1 for e in changes.events if isinstance(e, SubscriberNotice))


def renewal_cadences(catalogue: Catalogue, days: Sequence[date]) -> set[str]:
    """Cadence keys of renewals whose invoice reaches its first dunning step on one of ``days``.

    A renewal invoice falls due on its period's start (or ``due_days - lead_days`` later),
    and its first step is the first reminder's delay after that (or the stop rule's).
    """
    keys: set[str] = set()
    for billing in catalogue.billing_plans.values():
        process = catalogue.dunning_processes.get(billing.dunning_process_id or "")
        if process is None:
            continue
        offsets = []
        if process.reminders:
            offsets.append(process.reminders[0].delay_days)
        elif process.stop_rule is not None:
            offsets.append(process.stop_rule.delay_days)
            if process.stop_notice_days:
                offsets.append(process.stop_rule.delay_days - process.stop_notice_days)
        late = max(0, billing.terms_days - billing.lead_days)
        for day in days:
            for offset in offsets:
                keys.update(cadence_keys_starting_on(day - timedelta(days=offset + late), billing.frequency))
    return keys


def start_dunning_run(ctx: Context, tenant: str) -> RunStarted:
    def find(catalogue: Catalogue, days: list[date]) -> list[int]:
        found = set(ctx.due_index.subscribers(tenant, renewal_cadences(catalogue, days)))
        return sorted(found | ctx.dunning_index.subscribers(tenant, days))

    return start_run(ctx, tenant, DUNNING_RUN, find)


def sweep_dunning(ctx: Context, tenant: str) -> RunStarted:
    """Visit every subscriber with an open demand today, indexed or not: for a dunning
    process attached to a billing plan after its invoices were issued ("Payment stop
    works retroactive", manual 7.7). An admin operation that reads the whole tenant."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    found = sorted(loaded.account.number for loaded, _history in ctx.accounts.scan_tenant(tenant)
                   if loaded.account.open_demands)
    messages = list(batches(tenant, today, grouped(ctx, tenant, found), DUNNING_RUN))
    ctx.bus.send(RUN_WORK, messages)
    log.info("dunning sweep %s %s: %d subscribers in %d messages", tenant, today, len(found), len(messages))
    return RunStarted(tenant, today, len(found), len(messages))


Read = dict[int, Invoice | None]  # invoices read by demand number, kept across the runs of one visit


def visit(ctx: Context, tenant: str, account: Account, catalogue: Catalogue, today: date,
          number: Number, read: Read) -> Changes:
    """``dun``; when it credits (a payment stop, an ended subscription's unpaid
    invoices), again with the invoices it credits read (point reads, once per visit), so
    each credit note mirrors its invoice line for line. Only such a visit reads more."""
    changes = dun(account, catalogue, today, number)
    demands = credited(changes)
    if not demands:
        return changes
    for no in demands:
        if no not in read:
            read[no] = ctx.accounts.invoice(tenant, account.number, no)
    return dun(account, catalogue, today, number, [i for no in demands if (i := read[no]) is not None])


def visitor(ctx: Context, tenant: str) -> Decision:
    """The dunning run's decision for one subscriber (``visit``), each subscriber's invoices
    read once across the runs and parts of its visit."""
    reads: dict[int, Read] = {}

    def decide(seen: Seen) -> Changes:
        read = reads.setdefault(seen.account.number, {})
        return visit(ctx, tenant, seen.account, seen.catalogue, seen.today, seen.number, read)

    return stopping(ctx, tenant, decide)  # a payment stop stops a Vipps agreement too


def dun_subscribers(ctx: Context, tenant: str, today: date, subscribers: Sequence[int],
                    workers: int = 16, attention: Collection[int] = ()) -> DunningResult:
    """Visit a batch (``isolation.for_each_subscriber``): each visit claims the numbers it
    needs, commits in as many parts as it takes and indexes its next day (even when it does
    nothing: ``touch``). A subscriber that fails is recorded as needing attention, the rest
    are visited. ``attention``: subscribers recorded before, whose rows go when they succeed.
    Invoice numbers claimed for the batch that no commit carried (a visit that lost its race
    and, redone alone, no longer needed them: the debt was paid meanwhile) are released when
    it ends (``unit_of_work.Claims``), as in the invoice run."""
    result = DunningResult(subscribers=len(subscribers))
    outcome = for_each_subscriber(ctx, tenant, DUNNING_RUN, today, subscribers, visitor(ctx, tenant), result.add,
                                  parts=MAX_PARTS, touch=True, workers=workers, attention=attention)
    result.conflicts, result.needs_attention = outcome.conflicts, outcome.needs_attention
    return result
