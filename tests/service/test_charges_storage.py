"""Charges on Table Storage (Azurite): the round trips of settling a captured charge, and
the invoice run's round trips for a subscriber with a charge (the providers are the fakes)."""

from __future__ import annotations

from datetime import date

from shared.domain.agreements import ChargeState
from shared.domain.charges import requested
from shared.service.billing import bill_subscribers
from shared.service.charges import create_requested, reconcile_charge
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fakes import FakeSwedbankPay, FakeVipps
from tests.fixtures import order
from tests.service.test_charges import RENEWAL_RUN, charged, shop


def on_fake_providers(ctx: Context) -> None:
    ctx.vipps, ctx.swedbankpay = FakeVipps(), FakeSwedbankPay()


def test_a_captured_charge_is_settled_with_one_partition_read_and_one_transaction(ctx: Context, tenant: str) -> None:
    on_fake_providers(ctx)
    shop(ctx, tenant)  # type: ignore[arg-type]
    who = charged(ctx, tenant)  # type: ignore[arg-type]
    plain = place_order(ctx, order(tenant, 2))  # paid by invoice, the same plan and day
    ctx.clock.set(oslo_morning(RENEWAL_RUN))  # type: ignore[attr-defined]
    trips = ctx.storage.round_trips  # type: ignore[attr-defined]
    before = trips.count
    bill_subscribers(ctx, tenant, RENEWAL_RUN, [plain.subscriber_no])
    by_invoice = trips.count - before
    before = trips.count
    bill_subscribers(ctx, tenant, RENEWAL_RUN, [who.subscriber_no])
    assert trips.count - before == by_invoice  # the charge rides in the invoice's transaction
    loaded = ctx.accounts.load(tenant, who.subscriber_no)
    assert loaded is not None
    (charge,) = loaded.account.charges.values()
    assert charge.state is ChargeState.REQUESTED
    create_requested(ctx, tenant, [requested(who.subscriber_no, charge)])
    ctx.vipps.settle(charge.id, "CHARGED")  # type: ignore[attr-defined]
    before = trips.count
    reconcile_charge(ctx, tenant, who.subscriber_no, charge.id)
    assert trips.count - before == 2  # the partition read, the transaction: nothing else
    before = trips.count
    reconcile_charge(ctx, tenant, who.subscriber_no, charge.id)  # again: settled, found in the one read
    assert trips.count - before == 1
    (payment,) = ctx.accounts.payments(tenant, who.subscriber_no)
    assert payment.payment.id == f"vipps.{charge.id}" and payment.payment.amount_minor == charge.amount_minor
    assert ctx.provider_watch.due(tenant, date(2026, 2, 8))  # watched for its outcome, in the index table
