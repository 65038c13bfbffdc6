"""A hostile buyer against checkout linking (issue 12): an order posted with a login links
the subscriber it makes to that login, but the order's e-mail address is nobody's proof."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain.catalogue import PaymentType
from shared.ports import SubscriberPrincipal
from shared.service import self_service
from shared.service.orders import take_order
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order

ATTACKER = SubscriberPrincipal("", "l" + "a" * 40, "iss", "attacker", "attacker@evil.example", "Mallory")


@pytest.fixture
def shop(fake_ctx: FakeContext, tenant: str) -> str:
    install_catalogue(fake_ctx, tenant)
    return tenant


@pytest.mark.parametrize("pay", [PaymentType.VIPPS, PaymentType.CARD])
def test_a_checkout_left_unpaid_does_not_hand_the_victims_later_order_to_the_buyer(
        fake_ctx: FakeContext, shop: str, pay: PaymentType) -> None:
    """The attacker, signed in, starts a Vipps / card checkout with the victim's address and
    never pays: the account made holds nothing but that checkout, yet was linked to the
    attacker's login at once. The victim's own later order on the same address is taken on
    that account (nothing to protect, so not held), and the attacker's My page then showed
    the victim's subscription, invoices and profile, and could stop or change them."""
    attacker = replace(ATTACKER, tenant=shop)
    victim_order = order(shop, 1, ref="victim-1")  # kari1@example.no, by invoice
    take_order(fake_ctx, replace(order(shop, 1, ref="attacker-1"), payment_type=pay, phone="+47 412 34 567"),
               attacker)
    taken = take_order(fake_ctx, victim_order)
    assert not taken.accepted  # held for customer service, who can see whose it is
    made = fake_ctx.emails.find(shop, victim_order.email)
    assert made is not None
    shown = self_service.subscriptions(fake_ctx, attacker, made)  # the account the attacker's checkout made
    assert shown == [] and self_service.documents(fake_ctx, attacker, made) == []
    reached = [s for linked in self_service.subscribers(fake_ctx, attacker)
               for s in self_service.subscriptions(fake_ctx, attacker, linked["number"])]
    assert reached == []  # nothing of the victim's anywhere the attacker's login reaches
