"""The invoice run (S3; manual 10.1 "How Renewal&Demands work", 7.18 "Billing plan").

Two steps, so the work spreads over many workers:

* ``start_invoice_run`` (the timer): for each day since the last run, and each
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

One bad tenant or subscriber never stops the others (``isolation``): a subscriber that
fails is recorded as needing attention and retried by the next run; the rest of its
batch is billed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from ..adapters.bus import RUN_WORK
from ..domain.account import Changes, issue
from ..domain.calendar import cadence_keys_starting_on
from ..domain.catalogue import Catalogue
from ..ports import TENANT_RUN, BusMessage
from .buckets import grouped
from .context import Context
from .isolation import for_each_subscriber, resolve
from .unit_of_work import NoSuchSubscriber, Seen, change, drafts_that_fit

log = logging.getLogger(__name__)
BATCH = 256  # subscribers per bus message: whole buckets (of up to 64) with their number claims in one go
MAX_CATCH_UP_DAYS = 62
INVOICE_RUN = "invoice"
PARTS = 10  # transactions one subscriber's renewals take when billed alone (a backlog: the rest, next run)


@dataclass(frozen=True)
class RunStarted:
    tenant: str
    through: date
    subscribers: int
    messages: int


@dataclass
class BatchResult:
    subscribers: int = 0
    invoices: int = 0
    conflicts: int = 0
    needs_attention: int = 0


def run_days(last: date | None, today: date) -> list[date]:
    start = today if last is None else max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS))
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]


def cadences_due(catalogue: Catalogue, days: Sequence[date]) -> set[str]:
    keys: set[str] = set()
    for frequency, lead in catalogue.cadences():
        for day in days:
            keys.update(cadence_keys_starting_on(day + timedelta(days=lead), frequency))
    return keys


def batches(tenant: str, today: date, groups: Sequence[Sequence[int]], kind: str = INVOICE_RUN,
            attention: Collection[int] = ()) -> Iterator[BusMessage]:
    """Bus messages of whole partitions (``groups``: subscribers by the bucket they live in,
    ``buckets.grouped``), as many as make up ``BATCH`` subscribers, so a worker reads each
    bucket once and commits its subscribers together. Those of ``attention`` failed before and
    are named in the message, so the worker can clear their rows when they go through."""
    for chunk in _filled(groups, BATCH):
        body = {"kind": kind, "tenant": tenant, "date": today.isoformat(), "subscribers": chunk}
        if held := [n for n in chunk if n in attention]:
            body["attention"] = held
        yield BusMessage(f"{kind}-run.{tenant}.{today}.{chunk[0]}.{chunk[-1]}", body)


def _filled(groups: Sequence[Sequence[int]], size: int) -> Iterator[list[int]]:
    """Consecutive groups into lists of at most ``size`` (a group larger than that alone)."""
    chunk: list[int] = []
    for group in groups:
        if chunk and len(chunk) + len(group) > size:
            yield chunk
            chunk = []
        chunk += group
    if chunk:
        yield chunk


def start_run(ctx: Context, tenant: str, kind: str,
             find: Callable[[Catalogue, list[date]], Sequence[int]]) -> RunStarted:
    """The timer's half of a daily run: the days since the last run (its watermark), the
    subscribers ``find`` names for them and those the run failed before (its attention
    rows, read in the same round trip), sent to the workers in batches; then the new
    watermark, so a second run for the day plans nothing. A failure before the watermark
    is written leaves it on the last day done: the next run catches up."""
    catalogue = ctx.catalogue.get(tenant)
    today = ctx.today(catalogue)
    state = ctx.attention.run_state(tenant, kind)
    days = run_days(state.done_through, today)
    if not days:
        return RunStarted(tenant, today, 0, 0)
    retry = state.attention - {TENANT_RUN}
    subscribers = sorted(set(find(catalogue, days)) | retry)
    messages = list(batches(tenant, today, grouped(ctx, tenant, subscribers), kind, retry))
    ctx.bus.send(RUN_WORK, messages)
    ctx.tenants.set_watermark(tenant, kind, today)
    if TENANT_RUN in state.attention:
        resolve(ctx, tenant, kind, [TENANT_RUN])
    log.info("%s run %s %s: %d subscribers in %d messages", kind, tenant, today, len(subscribers), len(messages))
    return RunStarted(tenant, today, len(subscribers), len(messages))


def start_invoice_run(ctx: Context, tenant: str) -> RunStarted:
    return start_run(ctx, tenant, INVOICE_RUN, lambda catalogue, days: ctx.due_index.subscribers(
        tenant, cadences_due(catalogue, days)))


def renewal(seen: Seen) -> Changes:
    """The invoice run's decision for one subscriber: what is due on the day, cut to one
    transaction (``drafts_that_fit``), issued with the numbers claimed for it."""
    drafts = drafts_that_fit(seen.loaded, seen.account, seen.catalogue, seen.today)
    if not drafts:
        return Changes(seen.account)
    numbers = {d.natural_key: seen.number(d.organization_id, d.natural_key) for d in drafts}
    return issue(seen.account, drafts, numbers, seen.catalogue, seen.today)


def renewal_numbers(seen: Seen) -> list[tuple[str, str]]:
    """The numbers ``renewal`` will ask for, known from the partition: the batch claims them up front."""
    return [(d.organization_id, d.natural_key)
            for d in drafts_that_fit(seen.loaded, seen.account, seen.catalogue, seen.today)]


def bill_subscribers(ctx: Context, tenant: str, today: date, subscribers: Sequence[int],
                     workers: int = 16, attention: Collection[int] = ()) -> BatchResult:
    """Bill a batch (``isolation.for_each_subscriber``): the batch's invoice numbers claimed
    up front, one transaction per subscriber in parallel; a subscriber that fails is recorded
    as needing attention, the rest are billed. ``attention``: subscribers recorded before,
    whose rows go when they succeed. Renewals are not entered in the dunning index: the
    dunning run finds them by cadence."""
    result = BatchResult(subscribers=len(subscribers))

    def done(changes: Changes) -> None:
        result.invoices += len(changes.invoices)

    outcome = for_each_subscriber(ctx, tenant, INVOICE_RUN, today, subscribers, renewal, done,
                                  declare=renewal_numbers, parts=PARTS, visits=False, workers=workers,
                                  attention=attention)
    result.conflicts, result.needs_attention = outcome.conflicts, outcome.needs_attention
    return result


def bill_one(ctx: Context, tenant: str, today: date, subscriber_no: int) -> int:
    """Issue what is due for one subscriber (in up to ``PARTS`` transactions, a backlog
    being cut to fit each); returns invoices issued."""
    try:
        changes = change(ctx, tenant, subscriber_no, renewal, today=today, parts=PARTS, visits=False)
    except NoSuchSubscriber:
        return 0
    return len(changes.invoices)
