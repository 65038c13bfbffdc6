"""The invoice run (S3; manual 10.1 "How Renewal&Demands work", 7.18 "Billing plan").

Two steps, so the work spreads over many workers:

* ``plan_invoice_run`` (the timer): for each day since the last run, and each
  (frequency, lead days) of the tenant's billing plans, the subscriptions whose period
  starts ``lead`` days later are read from the due index; their subscriber numbers go
  out in batches (one bus message per ``BATCH`` subscribers: Service Bus Standard
  carries about 1,000 operations/s, so one message per subscriber would be far too
  many at millions of subscriptions).
* ``bill_subscribers`` (the worker, per message): reads each subscriber partition,
  lets the domain decide what is due on the day, claims invoice numbers for the whole
  batch in one transaction per series, and commits each subscriber in one
  transaction, concurrently. A subscriber that conflicts (changed meanwhile) is redone
  alone. Nothing is due twice, so a repeated message, a repeated run or two racing
  runs issue each invoice once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from ..adapters.accounts import Loaded
from ..adapters.bus import BILLING_WORK, BusMessage
from ..adapters.tables import ConcurrencyConflict
from ..domain.account import Event, issue
from ..domain.calendar import cadence_keys_starting_on
from ..domain.catalogue import Catalogue
from ..domain.invoicing import InvoiceDraft
from .context import Context
from .issuing import claim_numbers, commit, plan, publish

log = logging.getLogger(__name__)
BATCH = 50
MAX_CATCH_UP_DAYS = 62
RUN = "invoice"


@dataclass(frozen=True)
class RunPlanned:
    tenant: str
    through: date
    subscribers: int
    messages: int


@dataclass
class BatchResult:
    subscribers: int = 0
    invoices: int = 0
    conflicts: int = 0


def run_days(last: date | None, today: date) -> list[date]:
    start = today if last is None else max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS))
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]


def cadences_due(catalogue: Catalogue, days: Sequence[date]) -> set[str]:
    keys: set[str] = set()
    for frequency, lead in catalogue.cadences():
        for day in days:
            keys.update(cadence_keys_starting_on(day + timedelta(days=lead), frequency))
    return keys


def batches(tenant: str, today: date, subscribers: Sequence[int], kind: str = RUN) -> Iterator[BusMessage]:
    for start in range(0, len(subscribers), BATCH):
        chunk = list(subscribers[start : start + BATCH])
        yield BusMessage(f"{kind}-run.{tenant}.{today}.{chunk[0]}.{chunk[-1]}",
                         {"kind": kind, "tenant": tenant, "date": today.isoformat(), "subscribers": chunk})


def plan_run(ctx: Context, tenant: str, kind: str,
             find: Callable[[Catalogue, list[date]], Sequence[int]]) -> RunPlanned:
    """The timer's half of a daily run: the days since the last run (its watermark), the
    subscribers ``find`` names for them, sent to the workers in batches; then the new
    watermark, so a second run for the day plans nothing."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    days = run_days(ctx.tenants.watermark(tenant, kind), today)
    if not days:
        return RunPlanned(tenant, today, 0, 0)
    subscribers = find(catalogue, days)
    messages = list(batches(tenant, today, subscribers, kind))
    ctx.bus.send(BILLING_WORK, messages)
    ctx.tenants.set_watermark(tenant, kind, today)
    log.info("%s run %s %s: %d subscribers in %d messages", kind, tenant, today, len(subscribers), len(messages))
    return RunPlanned(tenant, today, len(subscribers), len(messages))


def plan_invoice_run(ctx: Context, tenant: str) -> RunPlanned:
    return plan_run(ctx, tenant, RUN, lambda catalogue, days: ctx.due_index.subscribers(
        tenant, cadences_due(catalogue, days)))


def bill_subscribers(ctx: Context, tenant: str, today: date, subscribers: Sequence[int],
                     workers: int = 16) -> BatchResult:
    catalogue = ctx.catalogue.get(tenant)
    result = BatchResult(subscribers=len(subscribers))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        loaded = [x for x in pool.map(lambda n: ctx.accounts.load(tenant, n), subscribers) if x is not None]
        work = [(x, plan(x, x.account, catalogue, today)) for x in loaded]
        work = [(x, drafts) for x, drafts in work if drafts]
        numbers = claim_numbers(ctx, tenant, catalogue, [d for _, drafts in work for d in drafts])

        def commit_one(item: tuple[Loaded, list[InvoiceDraft]]) -> tuple[int, list[Event] | None]:
            x, drafts = item
            changes = issue(x.account, drafts, numbers, catalogue, today)
            try:
                return len(changes.invoices), commit(ctx, tenant, x, changes, publish_now=False)
            except ConcurrencyConflict:
                return 0, None

        retry, outbox = [], []
        for (x, _), (count, events) in zip(work, pool.map(commit_one, work), strict=True):
            result.invoices += count
            if events is None:
                retry.append(x.account.number)
            else:
                outbox += events
    publish(ctx, tenant, outbox)  # one bus batch for the whole message
    for number in retry:
        result.conflicts += 1
        result.invoices += bill_one(ctx, tenant, today, number)
    return result


def bill_one(ctx: Context, tenant: str, today: date, subscriber_no: int, attempts: int = 10) -> int:
    """Issue what is due for one subscriber, retrying on conflicts; returns invoices issued."""
    catalogue = ctx.catalogue.get(tenant)
    issued = 0
    for _ in range(attempts):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return issued
        drafts = plan(loaded, loaded.account, catalogue, today)
        if not drafts:
            return issued
        numbers = claim_numbers(ctx, tenant, catalogue, drafts)
        changes = issue(loaded.account, drafts, numbers, catalogue, today)
        try:
            commit(ctx, tenant, loaded, changes)
        except ConcurrencyConflict:
            continue
        issued += len(changes.invoices)
    return issued
