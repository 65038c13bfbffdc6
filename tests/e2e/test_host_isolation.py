"""The local host never exits because a function raised: it logs, and a timer fires again
at its next occurrence; a queue message is retried and then poisoned, as the Functions
host does. With the real app: a tenant whose invoice run cannot be planned is recorded,
and the other tenants are billed while the host keeps ticking."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite
from devhost.host import MAX_DEQUEUE, LocalHost
from shared import bootstrap
from shared.adapters.attention import TENANT_RUN
from shared.adapters.bus import BusMessage, envelopes
from shared.clock import SettableClock
from shared.service.context import Context
from tests.e2e import faulty_app
from tests.fixtures import install_catalogue
from tests.service.test_isolation import OnlyThese, invoiced, store_raw, subscribers


def test_a_timer_that_raises_every_day_stops_neither_the_other_timer_nor_the_next_day(azurite: Azurite) -> None:
    faulty_app.fired.clear()
    clock = SettableClock(datetime(2026, 1, 5, 8, tzinfo=UTC))
    host = LocalHost(clock, azurite.connection_string, app_module="tests.e2e.faulty_app")
    done = host.tick(date(2026, 1, 8))
    assert done["days"] == 3 and done["timers_fired"] == 6
    assert faulty_app.fired == ["boom", "later"] * 3
    assert host.failed == 3


def test_a_message_that_always_fails_is_poisoned_and_the_others_handled(azurite: Azurite) -> None:
    faulty_app.handled.clear()
    host = LocalHost(SettableClock(), azurite.connection_string, app_module="tests.e2e.faulty_app")
    queue = QueueClient.from_connection_string(azurite.connection_string, "probe-work")
    queue.clear_messages()
    for text in ("first", "FAIL", "third"):
        for envelope in envelopes([BusMessage(text, {"text": text})]):
            queue.send_message(envelope)
    host.drain()
    assert sorted(text for m in faulty_app.handled for text in ("first", "third") if text in m) == ["first", "third"]
    poison = QueueClient.from_connection_string(azurite.connection_string, "probe-work-poison")
    assert any("FAIL" in m.content for m in poison.peek_messages(max_messages=32))
    assert host.failed >= MAX_DEQUEUE


def test_a_round_of_live_mode_that_raises_is_logged_and_the_loop_goes_on(
        azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    host = LocalHost(SettableClock(), azurite.connection_string, app_module="tests.e2e.faulty_app")

    def unreachable() -> int:
        raise ConnectionError("Azurite went away")

    monkeypatch.setattr(host, "drain", unreachable)
    before = host.clock.now()
    assert host.beat(before) == before  # returned: run_forever sleeps and beats again


def test_a_tick_beside_live_mode_answers_only_when_the_work_is_done_and_fires_each_timer_once(
        azurite: Azurite) -> None:
    # `abonno host` beats in the background while `abonno tick` moves the clock: a round that
    # took a message out of the tick's sight must not let the tick answer before it is handled
    faulty_app.fired.clear(), faulty_app.handled.clear(), faulty_app.started.clear()
    clock = SettableClock(datetime(2026, 1, 5, 8, tzinfo=UTC))
    host = LocalHost(clock, azurite.connection_string, app_module="tests.e2e.faulty_app")
    queue = QueueClient.from_connection_string(azurite.connection_string, "probe-work")
    queue.clear_messages()
    stop = threading.Event()

    def live() -> None:
        last = clock.now()
        while not stop.is_set():
            last = host.beat(last)
            time.sleep(0.05)

    beating = threading.Thread(target=live, daemon=True)
    beating.start()
    try:
        for envelope in envelopes([BusMessage("slow", {"text": "SLOW"})]):
            queue.send_message(envelope)
        deadline = time.monotonic() + 20
        while not faulty_app.started and time.monotonic() < deadline:  # the live round has it
            time.sleep(0.02)
        assert faulty_app.started
        done = host.tick(date(2026, 1, 7))
        assert any("SLOW" in m for m in faulty_app.handled)  # the tick waited for the round's work
        assert done["days"] == 2 and faulty_app.fired == ["boom", "later"] * 2
        time.sleep(0.3)  # live rounds after the tick fire nothing the tick fired
        assert faulty_app.fired == ["boom", "later"] * 2
    finally:
        stop.set()
        beating.join(timeout=10)


def test_the_host_keeps_billing_other_tenants_when_one_tenants_invoice_run_raises(
        azurite: Azurite, ctx: Context) -> None:
    names = [f"{n}{uuid.uuid4().hex[:8]}" for n in ("ha", "hbad", "hc")]
    for name in names:
        install_catalogue(ctx, name)
    limited = replace(ctx, tenants=OnlyThese(ctx, names))
    bootstrap.set_context(limited)
    placed = {t: subscribers(limited, t, 2) for t in names}
    a, bad, c = names
    plan = ctx.catalogue.get(bad).billing_plans["monthly-14"]
    store_raw(ctx, bad, "billing_plan", replace(plan, lead_days=10**9))
    clock: Any = ctx.clock
    clock.set(datetime(2026, 1, 21, 8, tzinfo=UTC))
    host = LocalHost(clock, azurite.connection_string, app_module="function_app")
    host.tick(date(2026, 1, 23))  # the invoice timer fires on the 22nd and 23rd: nothing escapes
    assert all(invoiced(ctx, t, n) == 2 for t in (a, c) for n in placed[t])
    assert all(invoiced(ctx, bad, n) == 1 for n in placed[bad])
    (row,) = [r for r in ctx.attention.all(bad) if r.run == "invoice"]
    assert (row.subscriber_no, row.count) == (TENANT_RUN, 2)
