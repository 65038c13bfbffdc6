"""The dunning run (D1-D3; manual 7.7, 7.9, 7.11, 7.19): reminders, notices, payment
stops and balance invoices, daily, fanned out like the invoice run.

* ``plan_dunning_run`` (the timer): for each day since the last run it finds the
  subscribers to visit without scanning: those whose *renewal* invoices reach their
  first reminder (or stop check) that day, read from the due index by cadence (a
  renewal falls due on its period's start, so the cadence says when), and those the
  dunning index names for the day (first invoices, later reminders, stop checks,
  balance invoices: written when the step before them was taken). Batches of
  50 subscribers go to ``billing-work`` as messages of kind ``dunning``.
* ``dun_subscribers`` (the worker): reads each subscriber, lets ``collection.collect``
  decide, writes the next visit to the dunning index, and commits each subscriber in
  one transaction. What was done is recorded in the account, so a repeated message or
  a second run for the day does nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from ..adapters.accounts import Loaded
from ..adapters.bus import BILLING_WORK
from ..adapters.tables import ConcurrencyConflict
from ..domain.account import Account, Changes, Event
from ..domain.calendar import cadence_keys_starting_on
from ..domain.catalogue import Catalogue
from ..domain.collection import NOTICE_TYPES, collect, credited
from ..domain.credit import Number
from ..domain.invoicing import Invoice
from .billing import RunPlanned, batches, plan_run
from .context import Context
from .issuing import change_account, commit, index_next_visit, numbered, publish, unchanged
from .queries import NotFound

log = logging.getLogger(__name__)
RUN = "dunning"


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

    def add(self, changes: Changes) -> None:
        self.reminders += len(changes.reminders)
        self.reminder_fees_minor += sum(r.reminder.fee_minor for r in changes.reminders)
        self.payment_stops += sum(1 for e in changes.events if e.type == "SubscriptionStopped")
        self.credit_notes += len(changes.credit_notes)
        self.balance_invoices += len(changes.invoices)
        self.notices += sum(1 for e in changes.events if e.type in NOTICE_TYPES)


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


def plan_dunning_run(ctx: Context, tenant: str) -> RunPlanned:
    def find(catalogue: Catalogue, days: list[date]) -> list[int]:
        found = set(ctx.due_index.subscribers(tenant, renewal_cadences(catalogue, days)))
        return sorted(found | ctx.dunning_index.subscribers(tenant, days))

    return plan_run(ctx, tenant, RUN, find)


def sweep_dunning(ctx: Context, tenant: str) -> RunPlanned:
    """Visit every subscriber with an open demand today, indexed or not: for a dunning
    process attached to a billing plan after its invoices were issued ("Payment stop
    works retroactive", manual 7.7). An admin operation that reads the whole tenant."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    found = sorted(loaded.account.number for loaded, _history in ctx.accounts.scan_tenant(tenant)
                   if loaded.account.open_demands)
    messages = list(batches(tenant, today, found, RUN))
    ctx.bus.send(BILLING_WORK, messages)
    log.info("dunning sweep %s %s: %d subscribers in %d messages", tenant, today, len(found), len(messages))
    return RunPlanned(tenant, today, len(found), len(messages))


Read = dict[int, Invoice | None]  # invoices read by demand number, kept across the runs of one visit


def visit(ctx: Context, tenant: str, account: Account, catalogue: Catalogue, today: date,
          number: Number, read: Read) -> Changes:
    """``collect``; when it credits (a payment stop, an ended subscription's unpaid
    invoices), again with the invoices it credits read (point reads, once per visit), so
    each credit note mirrors its invoice line for line. Only such a visit reads more."""
    changes = collect(account, catalogue, today, number)
    demands = credited(changes)
    if not demands:
        return changes
    for no in demands:
        if no not in read:
            read[no] = ctx.accounts.invoice(tenant, account.number, no)
    return collect(account, catalogue, today, number, [i for no in demands if (i := read[no]) is not None])


def _decide(ctx: Context, tenant: str, catalogue: Catalogue, today: date, loaded: Loaded) -> Changes:
    read: Read = {}
    changes = numbered(ctx, tenant, catalogue,
                       lambda number: visit(ctx, tenant, loaded.account, catalogue, today, number, read))
    index_next_visit(ctx, tenant, catalogue, changes.account, today)
    return changes


def dun_subscribers(ctx: Context, tenant: str, today: date, subscribers: Sequence[int],
                    workers: int = 16) -> DunningResult:
    catalogue = ctx.catalogue.get(tenant)
    result = DunningResult(subscribers=len(subscribers))

    def one(number: int) -> tuple[int, Changes | None, list[Event] | None]:
        """(number, what was done, its outbox); outbox None: it conflicted, redo it alone."""
        loaded = ctx.accounts.load(tenant, number)
        if loaded is None:
            return number, None, []
        changes = _decide(ctx, tenant, catalogue, today, loaded)
        if unchanged(loaded, changes):
            return number, changes, []
        try:
            return number, changes, commit(ctx, tenant, loaded, changes, publish_now=False)
        except ConcurrencyConflict:
            return number, None, None

    outbox: list[Event] = []
    retry: list[int] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for number, changes, events in pool.map(one, subscribers):
            if events is None:
                retry.append(number)
            elif changes is not None:
                result.add(changes)
                outbox += events
    publish(ctx, tenant, outbox)
    for number in retry:
        result.conflicts += 1
        dun_one(ctx, tenant, today, number, result)
    return result


def dun_one(ctx: Context, tenant: str, today: date, subscriber_no: int, result: DunningResult) -> None:
    """One subscriber's visit on its own, as after a conflict in a batch."""
    read: Read = {}
    try:
        changes = change_account(ctx, tenant, subscriber_no,
                                 lambda account, catalogue, day, number, _h: visit(ctx, tenant, account, catalogue,
                                                                                   day, number, read),
                                 today=today)
    except NotFound:
        return
    result.add(changes)
