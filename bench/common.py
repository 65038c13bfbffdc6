"""Shared by the benchmarks: a private Azurite, a context on it, JSON output."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import date
from typing import Any

from devhost.azurite import Azurite
from devhost.builders import install_catalogue, oslo_morning
from shared import bootstrap
from shared.adapters.bus import RUN_WORK, unpack
from shared.bootstrap import AzureContext
from shared.clock import SettableClock
from shared.domain.account import Account, Changes, due_drafts, issue
from shared.domain.calendar import Frequency
from shared.domain.catalogue import Catalogue, PaymentType
from shared.domain.placement import Layout
from shared.domain.subscriptions import Subscriber, Subscription
from shared.service.context import Context


def context(azurite: Azurite, clock: SettableClock) -> AzureContext:
    return bootstrap.connect(azurite.connection_string, clock, pool_size=128)


def shop(azurite: Azurite, day: date, layout: Layout | None = None) -> tuple[Context, str]:
    """A context with its clock on ``day`` and a new tenant with the demo newspaper catalogue;
    ``layout``: the tenant's storage layout, set before any of its subscribers is written."""
    ctx = context(azurite, SettableClock(oslo_morning(day)))
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    if layout is not None:
        ctx.accounts.layouts.set(tenant, layout)  # type: ignore[attr-defined]
    install_catalogue(ctx, tenant)
    return ctx, tenant


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


# The benchmarks' subscribers are numbered from here: a multiple of 1,024, the block of
# numbers dealt over 16 buckets of 64 (``Layout.bucket``), so N subscribers fill N / 64
# buckets as a large tenant's do (a tenant's first and last block are part-filled; at
# 1,000 subscribers from 1,000 a run would have 16 buckets of 1 or 2 beside 16 of 61).
FIRST_NUMBER = 10_240


def with_invoice(catalogue: Catalogue, i: int, day: date) -> Changes:
    """A new subscriber (number ``FIRST_NUMBER`` + i) on the monthly plan from ``day``, its first invoice issued."""
    number = FIRST_NUMBER + i
    sub = Subscription(f"s{number}", "digital-monthly", "avisa", Frequency.MONTHLY, day, PaymentType.INVOICE)
    account = Account(Subscriber(number, f"Payer {i}", f"payer{i}@example.no")).with_subscription(sub)
    drafts = due_drafts(account, catalogue, day)
    return issue(account, drafts, {drafts[0].natural_key: number}, catalogue, day)


def work_items(ctx: Context) -> list[dict[str, Any]]:
    """The bodies of every message the timer put on ``run-work`` (what the workers get)."""
    queue = ctx.bus.service.get_queue_client(RUN_WORK)  # type: ignore[attr-defined]
    items: list[dict[str, Any]] = []
    while received := list(queue.receive_messages(max_messages=32, visibility_timeout=300)):
        items += [item.body for m in received for item in unpack(m.content)]
    return items
