"""A hostile buyer against checkout linking (issue 12): an order posted with a login links
the subscriber it makes to that login, but the order's e-mail address is nobody's proof."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain.catalogue import PaymentType
from shared.domain.identity import MAX_SUBSCRIBERS_PER_LOGIN, AccessRecord, Role
from shared.domain.subscriptions import SubscriberError
from shared.ports import SubscriberPrincipal
from shared.service import groups, self_service
from shared.service.orders import place_order, take_order
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.service.my_data_support import install_group_plan, last_code, link_holder, principal

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


def test_one_login_cannot_be_linked_to_more_subscribers_than_the_cap_by_ordering(fake_ctx: FakeContext,
                                                                                 shop: str) -> None:
    """The cap of subscribers per login (its access row is one entity, and every refresh of it
    loads each subscriber it names) was checked only when a code links; an order posted with
    the login linked every subscriber it made, without end: the row grew past what one entity
    holds and each refresh cost a read per subscriber. Orders beyond the cap are still
    taken, but link nothing more."""
    buyer = replace(ATTACKER, tenant=shop)
    for n in range(MAX_SUBSCRIBERS_PER_LOGIN + 3):
        taken = take_order(fake_ctx, order(shop, 100 + n, ref=f"cap-{n}"), buyer)
        assert taken.accepted
    record = self_service.record_of(fake_ctx, buyer)
    assert len(record.holder_of) + len(record.member_of) == MAX_SUBSCRIBERS_PER_LOGIN
    assert len(self_service.subscribers(fake_ctx, buyer)) == MAX_SUBSCRIBERS_PER_LOGIN


def test_a_login_at_the_cap_cannot_take_a_group_seat_and_the_code_stays_usable(fake_ctx: FakeContext,
                                                                               shop: str) -> None:
    """Accepting a group invitation is a link too: it is held to the same cap (and checked
    before the code is used up, so the invitee can still accept with another login)."""
    plan = install_group_plan(fake_ctx, shop, 2)
    placed = place_order(fake_ctx, order(shop, 1, plan=plan))
    owner = link_holder(fake_ctx, shop, placed.subscriber_no, "owner")
    groups.invite(fake_ctx, owner, placed.subscriber_no, placed.subscription_id, "per@example.no", Role.USER)
    full = principal(shop, "full", "per@example.no")
    fake_ctx.access.put(shop, AccessRecord(full.login, holder_of=tuple(range(5000, 5000 + MAX_SUBSCRIBERS_PER_LOGIN))),
                        None)
    code = last_code(fake_ctx, shop, "per@example.no")
    with pytest.raises(SubscriberError, match="at most"):
        groups.accept(fake_ctx, full, code)
    other = principal(shop, "other", "per@example.no")
    assert groups.accept(fake_ctx, other, code)["subscriber"] == placed.subscriber_no
