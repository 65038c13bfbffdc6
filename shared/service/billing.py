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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from ..adapters.bus import RUN_WORK
from ..domain.account import Event, issue
from ..domain.calendar import cadence_keys_starting_on
from ..domain.catalogue import Catalogue
from ..domain.invoicing import InvoiceDraft
from ..ports import TENANT_RUN, BusMessage, ConcurrencyConflict, Loaded
from .context import Context
from .isolation import attempt, each, resolve, settle
from .unit_of_work import Claims, commit, drafts_that_fit, publish

log = logging.getLogger(__name__)
BATCH = 50
MAX_CATCH_UP_DAYS = 62
INVOICE_RUN = "invoice"


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


def batches(tenant: str, today: date, subscribers: Sequence[int], kind: str = INVOICE_RUN,
            attention: Collection[int] = ()) -> Iterator[BusMessage]:
    """Bus messages of ``BATCH`` subscribers; those of ``attention`` failed before and are
    named in the message, so the worker can clear their rows when they go through."""
    for start in range(0, len(subscribers), BATCH):
        chunk = list(subscribers[start : start + BATCH])
        body = {"kind": kind, "tenant": tenant, "date": today.isoformat(), "subscribers": chunk}
        if held := [n for n in chunk if n in attention]:
            body["attention"] = held
        yield BusMessage(f"{kind}-run.{tenant}.{today}.{chunk[0]}.{chunk[-1]}", body)


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
    messages = list(batches(tenant, today, subscribers, kind, retry))
    ctx.bus.send(RUN_WORK, messages)
    ctx.tenants.set_watermark(tenant, kind, today)
    if TENANT_RUN in state.attention:
        resolve(ctx, tenant, kind, [TENANT_RUN])
    log.info("%s run %s %s: %d subscribers in %d messages", kind, tenant, today, len(subscribers), len(messages))
    return RunStarted(tenant, today, len(subscribers), len(messages))


def start_invoice_run(ctx: Context, tenant: str) -> RunStarted:
    return start_run(ctx, tenant, INVOICE_RUN, lambda catalogue, days: ctx.due_index.subscribers(
        tenant, cadences_due(catalogue, days)))


def bill_subscribers(ctx: Context, tenant: str, today: date, subscribers: Sequence[int],
                     workers: int = 16, attention: Collection[int] = ()) -> BatchResult:
    """Bill a batch; a subscriber that fails is recorded as needing attention, the rest
    are billed. ``attention``: subscribers recorded before, whose rows go when they succeed.
    Invoice numbers claimed for the batch that no commit carried (a failed subscriber's)
    are released when it ends (``unit_of_work.Claims``)."""
    catalogue = ctx.catalogue.get(tenant)
    result = BatchResult(subscribers=len(subscribers))
    failures: dict[int, Exception] = {}

    def prepare(number: int) -> tuple[Loaded, list[InvoiceDraft]] | None:
        loaded = ctx.accounts.load(tenant, number)
        return None if loaded is None else (loaded, drafts_that_fit(loaded, loaded.account, catalogue, today))

    retry: list[int] = []  # conflicted: redone alone
    alone: list[int] = []  # the batch's number claim failed: each billed alone
    outbox: list[Event] = []
    with Claims(ctx, tenant, catalogue) as claims:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            work = [w for _, w in each(pool, prepare, subscribers, failures, int) if w is not None and w[1]]
            try:
                numbers = claims.numbers([(x.account.number, d.organization_id, d.natural_key)
                                          for x, drafts in work for d in drafts])
            except Exception:  # one subscriber's drafts may break the shared claim
                log.warning("invoice run %s %s: the batch's number claim failed; each subscriber alone", tenant,
                            today, exc_info=True)
                numbers, alone, work = {}, [x.account.number for x, _ in work], []

            def commit_one(item: tuple[Loaded, list[InvoiceDraft]]) -> tuple[int, list[Event] | None]:
                x, drafts = item
                changes = issue(x.account, drafts, numbers[x.account.number], catalogue, today)
                try:
                    return len(changes.invoices), commit(ctx, tenant, x, changes, publish_now=False, claims=claims)
                except ConcurrencyConflict:
                    return 0, None

            for (x, _), (count, events) in each(pool, commit_one, work, failures, lambda w: w[0].account.number):
                result.invoices += count
                if events is None:
                    retry.append(x.account.number)
                else:
                    outbox += events
        publish(ctx, tenant, outbox)  # one bus batch for the whole message

        def redo(number: int) -> None:
            result.invoices += bill_one(ctx, tenant, today, number, claims=claims)

        result.conflicts = len(retry)
        for number in retry + alone:
            attempt(failures, redo, number)
        recorded = settle(ctx, tenant, INVOICE_RUN, today, failures, redo)
    result.needs_attention = len(recorded)
    resolve(ctx, tenant, INVOICE_RUN, set(attention) - recorded)
    return result


def bill_one(ctx: Context, tenant: str, today: date, subscriber_no: int, attempts: int = 10,
             claims: Claims | None = None) -> int:
    """Issue what is due for one subscriber, retrying on conflicts; returns invoices issued."""
    catalogue = ctx.catalogue.get(tenant)
    if claims is None:
        with Claims(ctx, tenant, catalogue) as own:
            return bill_one(ctx, tenant, today, subscriber_no, attempts, own)
    issued = 0
    for _ in range(attempts):
        loaded = ctx.accounts.load(tenant, subscriber_no)
        if loaded is None:
            return issued
        drafts = drafts_that_fit(loaded, loaded.account, catalogue, today)
        if not drafts:
            return issued
        numbers = claims.for_drafts(subscriber_no, drafts)
        changes = issue(loaded.account, drafts, numbers, catalogue, today)
        try:
            commit(ctx, tenant, loaded, changes, claims=claims)
        except ConcurrencyConflict:
            continue
        issued += len(changes.invoices)
    return issued
