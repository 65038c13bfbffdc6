"""Property: whatever order the news of a charge comes in (webhooks, polls, stale reads,
duplicate deliveries of the charges queue, racing threads), and whatever the provider does
(captures, failures, cancellations, extra payment requests), money is never created or lost:
every charge the provider captured is booked exactly once, nothing else is booked, and the
ledger's balance is what was captured less what was refunded and invoiced; every refund the
provider made is booked once."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import SettableClock
from shared.domain.agreements import Provider
from shared.domain.ledger import EntryKind
from shared.service.billing import bill_subscribers
from shared.service.charges import (
    RefundRefused,
    create_requested,
    poll,
    reconcile_charge,
    reconcile_vipps_charge,
    refund_charge,
)
from tests.conftest import oslo_morning
from tests.fakes import FakeContext, fake_context
from tests.service.test_charges import (
    PLACED,
    RENEWAL_RUN,
    Charged,
    account_of,
    balance,
    booked_ids,
    charged,
    invoiced,
    requested,
    shop,
)

TENANT = "tprop"
FINAL = ("CHARGED", "FAILED", "CANCELLED")
NEXT = {"PENDING": "DUE", "DUE": "PROCESSING"}

actions = st.lists(st.one_of(
    st.tuples(st.just("advance"), st.sampled_from(FINAL)),
    st.tuples(st.just("stale"), st.sampled_from(("PENDING", "DUE"))),
    st.tuples(st.just("reconcile"), st.sampled_from(("charge", "webhook", "poll"))),
    st.tuples(st.just("worker"), st.booleans()),
    st.tuples(st.just("race"), st.integers(2, 4)),
    st.tuples(st.just("day"), st.integers(1, 3)),
    st.tuples(st.just("refund"), st.tuples(st.integers(1, 40000), st.sampled_from(("r-1", "r-2", "r-3")))),
), max_size=25)


class World:
    def __init__(self, provider: Provider, extra: int) -> None:
        self.ctx: FakeContext = fake_context(SettableClock(oslo_morning(PLACED)))
        shop(self.ctx, TENANT, extra_payment_requests=extra)
        self.who: Charged = charged(self.ctx, TENANT, provider=provider)
        self.provider = provider
        self.requests: dict[str, object] = {}
        self.ctx.bus.take("charges")
        self.day = RENEWAL_RUN
        self.ctx.clock.set(oslo_morning(self.day))
        bill_subscribers(self.ctx, TENANT, self.day, [self.who.subscriber_no])
        self.work(False)

    def work(self, again: bool) -> None:
        """The charges worker on what is queued (``again``: everything ever queued, delivered twice)."""
        fresh = {e.id: e for e in requested(self.ctx)}
        self.requests |= fresh
        batch = list(self.requests.values()) if again else list(fresh.values())
        if batch:
            create_requested(self.ctx, TENANT, batch)  # type: ignore[arg-type]

    def open_at_vipps(self) -> list[str]:
        return [c.id for c in self.ctx.vipps.charges_by_id.values() if c.status not in (*FINAL, "REFUNDED")]

    def captured(self) -> dict[str, int]:
        if self.provider is Provider.VIPPS:
            return {f"vipps.{c.id}": c.captured_minor for c in self.ctx.vipps.charges_by_id.values()
                    if c.captured_minor > 0}  # CHARGED, or refunded since
        return {f"swedbankpay.{o.payee_reference}": o.captured_minor for o in self.ctx.swedbankpay.orders.values()
                if o.captured_minor > 0}

    def reconcile(self, how: str) -> None:
        for cid in list(account_of(self.ctx, TENANT, self.who).charges):
            if how == "poll":
                poll(self.ctx, TENANT, self.day + timedelta(days=30))
            elif how == "webhook" and self.provider is Provider.VIPPS:
                reconcile_vipps_charge(self.ctx, TENANT, self.who.provider_id, cid)
            else:
                reconcile_charge(self.ctx, TENANT, self.who.subscriber_no, cid)

    def step(self, action: str, arg: object) -> None:
        getattr(self, f"_{action}")(arg)

    def _advance(self, outcome: object) -> None:
        """The provider moves on: a Vipps charge to its next state; a card's next purchase declined or not."""
        if self.provider is Provider.VIPPS:
            for cid in self.open_at_vipps()[:1]:
                self.ctx.vipps.settle(cid, NEXT.get(self.ctx.vipps.charges_by_id[cid].status, str(outcome)))
        elif outcome == "FAILED":
            self.ctx.swedbankpay.decline(self.who.provider_id)
        else:
            self.ctx.swedbankpay.declined.discard(self.who.provider_id)

    def _stale(self, status: object) -> None:
        """A read from before the last change (a reordered webhook, a lagging replica)."""
        vipps = self.ctx.vipps
        for cid in list(vipps.charges_by_id)[-1:] if self.provider is Provider.VIPPS else []:
            truth = vipps.charges_by_id[cid]
            vipps.charges_by_id[cid] = replace(truth, status=str(status))
            try:
                reconcile_charge(self.ctx, TENANT, self.who.subscriber_no, cid)
            finally:
                vipps.charges_by_id[cid] = truth

    def _reconcile(self, how: object) -> None:
        self.reconcile(str(how))

    def _worker(self, again: object) -> None:
        self.work(bool(again))

    def _race(self, threads: object) -> None:
        racing = [threading.Thread(target=self.reconcile, args=("charge",)) for _ in range(int(str(threads)))]
        for t in racing:
            t.start()
        for t in racing:
            t.join()

    def _refund(self, arg: object) -> None:
        """The merchant refunds part of each booked charge (a refund id may come again, or be too much)."""
        amount, refund_id = arg  # type: ignore[misc]
        for payment_id in booked_ids(self.ctx, TENANT, self.who):
            try:
                refund_charge(self.ctx, TENANT, self.who.subscriber_no, payment_id.split(".", 1)[1], amount, refund_id)
            except RefundRefused:
                pass

    def refunded(self) -> int:
        """What the provider has paid back, all charges together."""
        if self.provider is Provider.VIPPS:
            return sum(c.refunded_minor for c in self.ctx.vipps.charges_by_id.values())
        return sum(o.reversed_minor for o in self.ctx.swedbankpay.orders.values())

    def _day(self, days: object) -> None:
        self.day += timedelta(days=int(str(days)))
        self.ctx.clock.set(oslo_morning(self.day))

    def check(self) -> None:
        """Booked: exactly the captured charges, once each; the ledger agrees."""
        booked = booked_ids(self.ctx, TENANT, self.who)
        captured = self.captured()
        assert len(booked) == len(set(booked))
        assert set(booked) <= set(captured)
        paid = self.ctx.accounts.payments(TENANT, self.who.subscriber_no)
        payments = {b.payment.id: b.payment.amount_minor for b in paid}
        assert all(payments[p] == captured[p] for p in payments)
        _, ledger = self.ctx.accounts.history(TENANT, self.who.subscriber_no)
        refunds = -sum(e.amount_minor for e in ledger if e.kind is EntryKind.REFUND)
        assert refunds == self.refunded()  # every refund the provider made is booked, once
        assert balance(self.ctx, TENANT, self.who) == sum(payments.values()) - refunds - invoiced(
            self.ctx, TENANT, self.who)

    def finish(self) -> None:
        """Every charge comes to an end and every piece of news arrives: all captured is booked."""
        for _ in range(10):
            self._day(3)  # past every due date in turn (a card is charged on its due date)
            self.work(False)
            for cid in self.open_at_vipps():
                self.ctx.vipps.settle(cid, "CHARGED")
            self.reconcile("charge")
            if not account_of(self.ctx, TENANT, self.who).charges and not self.ctx.bus.messages("charges"):
                break
        captured = self.captured()
        assert sorted(booked_ids(self.ctx, TENANT, self.who)) == sorted(captured)
        assert balance(self.ctx, TENANT, self.who) == sum(captured.values()) - self.refunded() - invoiced(
            self.ctx, TENANT, self.who)
        assert account_of(self.ctx, TENANT, self.who).charges == {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from([Provider.VIPPS, Provider.SWEDBANKPAY]), extra=st.integers(0, 2), steps=actions)
def test_money_is_never_created_or_lost_whatever_the_order_of_news(
        provider: Provider, extra: int, steps: list[tuple[str, object]]) -> None:
    world = World(provider, extra)
    for action, arg in steps:
        world.step(action, arg)
        world.check()
    world.finish()


def test_the_property_sees_a_capture_and_a_failure_with_its_extra_request() -> None:
    """The example the property must include: fail, extra request, captured on the second attempt."""
    world = World(Provider.VIPPS, 1)
    for action, arg in [("advance", "FAILED"), ("advance", "FAILED"), ("advance", "FAILED"),
                        ("reconcile", "webhook"), ("worker", True), ("advance", "CHARGED"),
                        ("advance", "CHARGED"), ("advance", "CHARGED"), ("reconcile", "poll")]:
        world.step(action, arg)
        world.check()
    assert [p.split("-")[-1] for p in booked_ids(world.ctx, TENANT, world.who)] == ["2"]
    world.finish()
