"""One bad item never blocks others (issue 8, part 6): tenants in the timers, subscribers
in the workers.

* **Timers isolate tenants.** ``for_each_tenant`` plans one tenant's run after another;
  a tenant whose planning raises (anything) is logged and recorded as needing attention
  at tenant level, and the next tenant runs. Its watermark is written only after its
  messages went out, so it stays on the day before the failure and the run catches up
  once the cause is fixed; the row goes when the tenant's run next succeeds.
* **Workers isolate subscribers** (``for_each_subscriber``, the one batch runner the
  invoice and dunning runs declare their decision on). A batch keeps its fast path (one
  claim of invoice numbers, commits in parallel, one publish). A subscriber whose load,
  decision or commit raises is set aside (``each``); one that conflicted is redone alone;
  after the batch, ``settle`` tries the transient failures (storage unreachable,
  throttled, conflicting) again alone, up to ``RETRIES`` rounds, and records every
  failure left as needing attention; the rest of the batch is billed and the message
  completes. Only when recording fails too (storage is down) does the
  exception escape, so the bus redelivers the message: the batch is idempotent.
* **Retried until it succeeds.** The timer adds the subscribers its run holds attention
  rows for to the day's batches (marked in the message), and the worker removes a row
  when its subscriber goes through: no storage call on the happy path.

A reason is the exception's type and message, e-mail addresses masked, at most
``REASON_LENGTH`` characters: no traceback leaves the log.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from ..domain.account import Changes
from ..ports import TENANT_RUN, transient
from .buckets import PartitionOutcome, grouped, in_partition
from .context import Context
from .unit_of_work import Decision, Declare, NoSuchSubscriber, Seen, UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
RETRIES = 3
BACKOFF_S = 0.2
REASON_LENGTH = 300
OPERATIONS = {"invoice": "invoice run", "dunning": "dunning visit", "notice": "notice", "print": "print batch",
              "providers": "payment agreement (Vipps, card)", "charges": "provider charge"}
EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")


def reason(exc: BaseException) -> str:
    """What customer service is shown: type and the message's first line (a storage error
    goes on with request ids and the response body), no e-mail address, no traceback."""
    text = " ".join((str(exc).strip().splitlines() or [""])[0].split())
    return EMAIL.sub("<e-mail>", f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:REASON_LENGTH]


def each(pool: Executor, fn: Callable[[T], R], items: Sequence[T], failures: dict[int, Exception],
         number: Callable[[T], int], whole: bool = False) -> list[tuple[T, R]]:
    """``fn`` over ``items`` in the pool; an item that raises goes to ``failures`` by its
    subscriber number instead of stopping the others (``whole``: an item is a group of
    subscriber numbers, and every one of them goes to ``failures``)."""

    def guarded(item: T) -> tuple[R | None, Exception | None]:
        try:
            return fn(item), None
        except Exception as exc:  # any failure is this item's alone
            return None, exc

    done: list[tuple[T, R]] = []
    for item, (value, error) in zip(items, pool.map(guarded, items), strict=True):
        if error is not None and whole:
            failures |= dict.fromkeys(item, error)  # type: ignore[call-overload]
        elif error is not None:
            failures[number(item)] = error
        else:
            done.append((item, value))  # type: ignore[arg-type]
    return done


def attempt(failures: dict[int, Exception], fn: Callable[[int], Any], number: int) -> None:
    """``fn`` for one subscriber; a failure is set aside in ``failures``."""
    try:
        fn(number)
    except Exception as exc:
        failures[number] = exc


def settle(ctx: Context, tenant: str, run: str, day: date, failures: Mapping[int, Exception],
           redo: Callable[[int], Any]) -> set[int]:
    """Try transient failures again, alone; record what still fails. Returns those recorded."""
    pending = dict(failures)
    for round_no in range(RETRIES):
        transients = sorted(n for n, e in pending.items() if transient(e))
        if not transients:
            break
        time.sleep(BACKOFF_S * (round_no + 1))
        for number in transients:
            try:
                redo(number)
                del pending[number]
            except Exception as again:
                pending[number] = again
    for number, error in sorted(pending.items()):
        record(ctx, tenant, run, number, day, error)
    return set(pending)


def record(ctx: Context, tenant: str, run: str, subscriber_no: int, day: date, exc: BaseException,
           ref: str = "") -> None:
    why = reason(exc)
    who = "the tenant's run" if subscriber_no == TENANT_RUN else f"subscriber {subscriber_no}"
    log.error("%s of %s on %s: %s needs attention: %s", OPERATIONS.get(run, run), tenant, day, who, why)
    log.debug("%s of %s: %s failed", run, tenant, who, exc_info=exc)
    ctx.attention.record(tenant, run, subscriber_no, day, why, ref)


def resolve(ctx: Context, tenant: str, run: str, succeeded: Iterable[int]) -> None:
    """Remove the rows of subscribers the run held and that have now gone through."""
    for number in sorted(set(succeeded)):
        ctx.attention.resolve(tenant, run, number)
        log.info("%s of %s: %s went through; no longer needs attention", OPERATIONS.get(run, run), tenant,
                 "the tenant's run" if number == TENANT_RUN else f"subscriber {number}")


def for_each_tenant(ctx: Context, run: str, start: Callable[[Context, str], T]) -> list[T]:
    """The timer's loop: every tenant's run started, a failing one recorded and skipped."""
    planned: list[T] = []
    for tenant in ctx.tenants.all():
        try:
            planned.append(start(ctx, tenant))
        except Exception as exc:  # one tenant never stops another's run
            try:
                record(ctx, tenant, run, TENANT_RUN, ctx.clock.now().date(), exc)
            except Exception:
                log.exception("%s of %s failed and could not be recorded", OPERATIONS.get(run, run), tenant)
    return planned



def each_job(jobs: Iterable[tuple[str, Callable[[], Any]]], what: str,
             on_failure: Callable[[str, Exception], None] | None = None) -> list[str]:
    """A queue worker's batch: run every job (``name``, call); returns the names done.

    One job that fails for good is logged (and handed to ``on_failure``) and the others go
    on; a passing failure (``transient``) is logged, the others go on, and the first one is
    raised at the end, so the host delivers the whole batch again (its jobs are idempotent)."""
    done: list[str] = []
    passing: list[Exception] = []
    for name, job in jobs:
        try:
            job()
            done.append(name)
        except Exception as exc:
            if transient(exc):
                log.warning("%s of %s: %s; the batch comes again", what, name, reason(exc))
                passing.append(exc)
                continue
            log.error("%s of %s failed for good: %s", what, name, reason(exc))
            if on_failure is not None:
                on_failure(name, exc)
    if passing:
        raise passing[0]
    return done


def needs_attention(ctx: Context, tenant: str) -> list[dict[str, Any]]:
    """Customer service's list: what each run could not do, newest failure first."""
    rows = sorted(ctx.attention.all(tenant), key=lambda a: (a.day, a.run, a.subscriber_no), reverse=True)
    return [{"operation": OPERATIONS.get(a.run, a.run), "run": a.run,
             "subscriber_no": None if a.subscriber_no == TENANT_RUN else a.subscriber_no, "ref": a.ref or None,
             "first_day": a.first_day, "day": a.day, "count": a.count, "reason": a.reason} for a in rows]


def dismiss(ctx: Context, tenant: str, run: str, subscriber_no: int, ref: str = "") -> bool:
    """Customer service marks one as handled (a notice sent by hand, say); False if none."""
    if run not in OPERATIONS or ctx.attention.find(tenant, run, subscriber_no, ref) is None:
        return False
    ctx.attention.resolve(tenant, run, subscriber_no, ref)
    return True


@dataclass(frozen=True)
class BatchOutcome:
    conflicts: int  # subscribers that conflicted in the fast path and were redone alone
    needs_attention: int  # subscribers recorded as needing attention


def for_each_subscriber(ctx: Context, tenant: str, run: str, today: date, subscribers: Sequence[int],
                        decide: Decision, done: Callable[[Changes], Any], *, declare: Declare | None = None,
                        parts: int = 1, touch: bool = False, visits: bool = True, workers: int = 16,
                        attention: Collection[int] = ()) -> BatchOutcome:
    """The worker's loop of a run (``run``: its name in the attention rows): ``decide`` for
    each of ``subscribers`` through one ``UnitOfWork``; ``done`` is told what each committed
    (in this thread, so it may count without a lock).

    * **Fast path, by partition** (``buckets.in_partition``). The batch is grouped by the
      partition its subscribers live in; each group is read in one query, decided, indexed
      and committed in as few transactions as the limits allow, the groups in parallel. With
      ``declare`` (the natural keys a decision will number, known from the partition), the
      numbers of the whole batch are claimed first, one claim per series, and each subscriber
      commits the one transaction they were claimed for (what is left is due still: the next
      run); without it, each decision claims its own, and one taking ``parts`` transactions
      goes on alone after its first. The events are published once, for the batch.
    * **Set aside.** A subscriber whose read, decision or commit raises is set aside; the rest
      of the batch goes on. A subscriber that conflicted (changed meanwhile) is redone alone,
      with retries (``UnitOfWork.change``), as are all when the batch's number claim failed.
    * **Settled.** ``settle`` tries the transient failures again alone and records the rest as
      needing attention; ``attention``: subscribers recorded before, whose rows go now that
      they went through. Numbers no commit carried are released when the batch ends.
    """
    failures: dict[int, Exception] = {}
    with UnitOfWork(ctx, tenant, today, collect=True) as uow:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            fast = _by_partition(uow, pool, grouped(ctx, tenant, subscribers), decide, declare, failures,
                                 parts=parts, touch=touch, visits=visits)
        uow.flush()  # one bus batch for the whole message
        for changes in fast.committed:
            done(changes)
        alone = uow.alone()

        def redo(number: int) -> None:  # no ``touch``: a redo that commits nothing sends nothing (a racer's outbox)
            try:
                done(alone.change(number, decide, parts=parts, visits=visits))
            except NoSuchSubscriber:
                pass

        for number in fast.conflicted + fast.alone:
            attempt(failures, redo, number)
        recorded = settle(ctx, tenant, run, today, failures, redo)
    resolve(ctx, tenant, run, set(attention) - recorded)
    return BatchOutcome(len(fast.conflicted), len(recorded))


@dataclass
class _Fast:
    committed: list[Changes] = field(default_factory=list)
    conflicted: list[int] = field(default_factory=list)  # changed meanwhile: redone alone
    alone: list[int] = field(default_factory=list)  # the batch's number claim failed, or a decision goes on


def _by_partition(uow: UnitOfWork, pool: Executor, groups: Sequence[Sequence[int]], decide: Decision,
                  declare: Declare | None, failures: dict[int, Exception], *, parts: int, touch: bool,
                  visits: bool) -> _Fast:
    """Read every group (a query each), claim the batch's numbers if declared, then decide,
    index and commit each group (``buckets.in_partition``), the groups in parallel."""
    fast = _Fast()
    read = [seen for _, seen in each(pool, uow.read_many, groups, failures, _first, whole=True)]
    numbers: dict[int, dict[str, int]] | None = None
    if declare is not None:
        wanted: list[tuple[int, str, str]] = []
        for seen in read:
            for n, one in seen.items():
                try:
                    wanted += [(n, org, key) for org, key in declare(one)]
                except Exception as exc:  # this subscriber's alone
                    failures[n] = exc
        read = [{n: one for n, one in seen.items() if n not in failures} for seen in read]
        try:
            numbers = uow.claims.numbers(wanted)
        except Exception:  # one subscriber's keys may break the shared claim
            log.warning("%s: the batch's number claim failed; each subscriber alone", uow.tenant, exc_info=True)
            fast.alone = [n for seen in read for n in seen]
            return fast

    def work(seen: dict[int, Seen]) -> PartitionOutcome:
        return in_partition(uow, seen, lambda _n: decide, numbers=numbers, parts=1 if declare else parts,
                            touch=touch, visits=visits)

    for _seen, outcome in each(pool, work, read, failures, _first, whole=True):
        failures |= outcome.failed
        fast.committed += outcome.committed.values()
        fast.conflicted += outcome.conflicted
        fast.alone += outcome.more
    return fast


def _first(group: Any) -> int:
    return int(next(iter(group)))
