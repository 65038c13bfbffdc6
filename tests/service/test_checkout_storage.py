"""The checkout's rows in the subscriber partition, on Azurite and on the fakes: a pending
agreement with its order (JSON), the activation's transaction (subscription, first invoice,
payment, agreement) and a card's token, mask and expiry read back exactly as written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date

import pytest

from shared.domain.agreements import AgreementStatus
from shared.domain.catalogue import PaymentType
from shared.service.checkout import checkout_status, reconcile_card_order, reconcile_vipps_agreement
from shared.service.context import Context
from shared.service.orders import PlaceOrder, take_order
from tests.fakes import FakeSwedbankPay, FakeVipps
from tests.fixtures import order

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes


@pytest.fixture
def providers(ctx: Context) -> tuple[FakeVipps, FakeSwedbankPay]:
    """The providers in memory, on either backend (the simulators are the e2e tests')."""
    ctx.vipps, ctx.swedbankpay = FakeVipps(), FakeSwedbankPay()
    return ctx.vipps, ctx.swedbankpay


def the_order(shop: str, pay: PaymentType) -> PlaceOrder:
    return replace(order(shop, 1, ref="stored-1", start=date(2026, 1, 10)), payment_type=pay, phone="41234567")


def test_a_vipps_checkout_and_its_activation_are_stored_and_read_back(
        ctx: Context, shop: str, providers: tuple[FakeVipps, FakeSwedbankPay]) -> None:
    vipps, _card = providers
    take_order(ctx, the_order(shop, PaymentType.VIPPS))
    (remote,) = vipps.agreements.values()
    number = ctx.emails.find(shop, "kari1@example.no")
    assert number is not None
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None
    pending = loaded.account.agreements[remote.external_id]
    assert PlaceOrder.from_json(dict(pending.order or {})) == the_order(shop, PaymentType.VIPPS)
    vipps.approve(remote.id)
    reconcile_vipps_agreement(ctx, shop, remote.id)
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None
    acc = loaded.account
    (sub,) = acc.subscriptions.values()
    assert (sub.agreement, sub.payment_type, acc.agreements[remote.external_id].status) == (
        remote.external_id, PaymentType.VIPPS, AgreementStatus.ACTIVE)
    assert acc.open_demands == {} and acc.balances == {"avisa": 0}
    assert checkout_status(ctx, shop, remote.external_id).subscription_id == sub.id


def test_a_cards_token_mask_and_expiry_are_stored(ctx: Context, shop: str,
                                                  providers: tuple[FakeVipps, FakeSwedbankPay]) -> None:
    _vipps, card = providers
    take_order(ctx, the_order(shop, PaymentType.CARD))
    (po,) = card.orders.values()
    card.complete(po.id, date(2028, 2, 29))
    reconcile_card_order(ctx, shop, po.id)
    number = ctx.emails.find(shop, "kari1@example.no")
    assert number is not None
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None
    agreement = loaded.account.agreements[po.payee_reference]
    assert (agreement.card_mask, agreement.card_expiry, agreement.order) == ("492500******0004", date(2028, 2, 29),
                                                                              None)
    assert agreement.token == card.orders[po.id].token


def test_concurrent_activations_place_the_order_once_under_real_etags(
        ctx: Context, shop: str, providers: tuple[FakeVipps, FakeSwedbankPay]) -> None:
    vipps, _card = providers
    take_order(ctx, the_order(shop, PaymentType.VIPPS))
    (remote,) = vipps.agreements.values()
    vipps.approve(remote.id)
    with ThreadPoolExecutor(6) as pool:  # six webhook deliveries at once
        list(pool.map(lambda _i: reconcile_vipps_agreement(ctx, shop, remote.id), range(6)))
    number = ctx.emails.find(shop, "kari1@example.no")
    assert number is not None
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None and len(loaded.account.subscriptions) == 1
    assert [i.number for i in ctx.accounts.documents(shop, number).invoices] == [1]
    assert len(ctx.accounts.payments(shop, number)) == 1 and loaded.account.balances == {"avisa": 0}
