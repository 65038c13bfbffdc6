"""Exactly once per document and channel, as a property (on the fakes: fast enough for
hypothesis): any schedule of deliveries of the messages of a few issued invoices, some
repeated, some dying at any step (before the claim, while sending, after sending and
before recording), some refused by the receiving server, ends, once every message is
handled after the faults, with

* every document delivered: its e-mail sent, or failed and its print sent;
* one row per (document, channel) of attempt 1, never a second print item;
* each document mailed once, but for the crashes between sending and recording, each of
  which may add one repeat of the *same* message (the same Message-ID)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.builders import install_catalogue, order, oslo_morning
from shared.adapters.bus import NOTICES
from shared.clock import SettableClock
from shared.ports import DeliveryStatus, Unavailable
from shared.service import delivery
from shared.service.orders import place_order
from tests.fakes import fake_context

DOCUMENTS = 3
FAULTS = [None, ("deliveries", "claim"), ("mailer", "send"), ("deliveries", "update")]
step = st.tuples(st.integers(0, DOCUMENTS - 1), st.sampled_from(FAULTS), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(step, max_size=14), refused=st.sets(st.integers(1, DOCUMENTS), max_size=2))
def test_any_schedule_of_redeliveries_and_crashes_delivers_each_document_once(
        schedule: list[tuple[int, tuple[str, str] | None, bool]], refused: set[int]) -> None:
    ctx = fake_context(SettableClock(oslo_morning(date(2026, 1, 5))))
    install_catalogue(ctx, "shop")
    for n in range(1, DOCUMENTS + 1):
        place_order(ctx, order("shop", n))
    ctx.mailer.refuse = {f"kari{n}@example.no" for n in refused}
    messages = ctx.bus.take(NOTICES)
    crashes_after_sending: Counter[str] = Counter()
    for index, fault, stale in schedule:
        message = messages[index]
        if fault is not None:
            getattr(ctx, fault[0]).inject(fault[1], Unavailable("died"))
        sent_before = len(ctx.mailer.sent)
        try:
            delivery.deliver(ctx, message.id, message.body)
        except Unavailable:
            if fault == ("deliveries", "update") and len(ctx.mailer.sent) > sent_before:
                crashes_after_sending[ctx.mailer.sent[-1].message_id] += 1
        if fault is not None:  # a fault the handling did not reach is not kept for a later one
            getattr(ctx, fault[0]).clear_faults()
        if stale:  # time passes: a claim left by a crash goes stale
            ctx.clock.set(ctx.clock.now() + delivery.LEASE + timedelta(seconds=1))
    ctx.clock.set(ctx.clock.now() + delivery.LEASE + timedelta(seconds=1))
    for message in messages:  # the bus delivers every message until it completes
        delivery.deliver(ctx, message.id, message.body)
        delivery.deliver(ctx, message.id, message.body)
    mailed = Counter(m.message_id for m in ctx.mailer.sent)
    for n in range(1, DOCUMENTS + 1):
        subscriber = 999 + n
        rows = {(d.channel, d.attempt): d.status for d in delivery.log(ctx, "shop", subscriber)}
        if n in refused:
            assert rows == {("email", 1): DeliveryStatus.FAILED, ("print", 1): DeliveryStatus.SENT}
        else:
            assert rows == {("email", 1): DeliveryStatus.SENT}
    for message_id, times in mailed.items():
        assert times <= 1 + crashes_after_sending[message_id], (message_id, times)
    assert len(mailed) == DOCUMENTS - len(refused)
    printed = list(ctx.print_queue.items("shop", date(2026, 1, 5), "avisa"))
    assert sorted(i.subscriber_no - 999 for i in printed) == sorted(refused)
