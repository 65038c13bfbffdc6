"""One bad item never blocks others (issue 8, part 6): tenants in the timers, subscribers
in the workers.

* **Timers isolate tenants.** ``for_each_tenant`` plans one tenant's run after another;
  a tenant whose planning raises (anything) is logged and recorded as needing attention
  at tenant level, and the next tenant runs. Its watermark is written only after its
  messages went out, so it stays on the day before the failure and the run catches up
  once the cause is fixed; the row goes when the tenant's run next succeeds.
* **Workers isolate subscribers.** A batch keeps its fast path (one claim of invoice
  numbers, commits in parallel). A subscriber whose load, decision or commit raises is
  set aside (``each``); after the batch, ``settle`` tries the transient failures
  (storage unreachable, throttled, conflicting) again alone, up to ``RETRIES`` rounds,
  and records every failure left as needing attention; the rest of the batch is billed
  and the message completes. Only when recording fails too (storage is down) does the
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import date
from typing import Any, TypeVar

from ..ports import TENANT_RUN, transient
from .context import Context

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
RETRIES = 3
BACKOFF_S = 0.2
REASON_LENGTH = 300
OPERATIONS = {"invoice": "invoice run", "dunning": "dunning visit", "notice": "notice"}
EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")


def reason(exc: BaseException) -> str:
    """What customer service is shown: type and the message's first line (a storage error
    goes on with request ids and the response body), no e-mail address, no traceback."""
    text = " ".join((str(exc).strip().splitlines() or [""])[0].split())
    return EMAIL.sub("<e-mail>", f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:REASON_LENGTH]


def each(pool: Executor, fn: Callable[[T], R], items: Sequence[T], failures: dict[int, Exception],
         number: Callable[[T], int]) -> list[tuple[T, R]]:
    """``fn`` over ``items`` in the pool; an item that raises goes to ``failures`` by its
    subscriber number instead of stopping the others."""

    def guarded(item: T) -> tuple[R | None, Exception | None]:
        try:
            return fn(item), None
        except Exception as exc:  # any failure is this item's alone
            return None, exc

    done: list[tuple[T, R]] = []
    for item, (value, error) in zip(items, pool.map(guarded, items), strict=True):
        if error is not None:
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
