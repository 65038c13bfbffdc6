"""Linking a login to subscribers only by proof (issue 12): a code sent to the subscriber's
stored address, or the login's own checkout; never by the token's e-mail claim; no answer
or stored work that tells whether an address is a subscriber's; unlinking. On Azurite and
on the fakes."""

from __future__ import annotations

import pytest

from shared.domain.catalogue import PaymentType
from shared.domain.identity import Role, link_key, login_key
from shared.ports import NotFound, SubscriberPrincipal
from shared.service import identity
from shared.service.context import Context
from shared.service.orders import PlaceOrder, take_order
from shared.service.self_service import authorize, record_of
from shared.service.verification import CodeRefused
from tests.fakes import FakeNotifier

pytestmark = pytest.mark.fakes


def me(tenant: str, subject: str = "reader-1", email: str | None = "someone@example.com") -> SubscriberPrincipal:
    return SubscriberPrincipal(tenant, login_key("https://idp/v2.0", subject), "https://idp/v2.0", subject, email,
                               "Reader")


def order(tenant: str, email: str, ref: str) -> PlaceOrder:
    return PlaceOrder(tenant, "digital-monthly", PaymentType.INVOICE, "Kari Nordmann", email, order_ref=ref)


@pytest.fixture
def notices(ctx: Context) -> FakeNotifier:
    ctx.notifier = FakeNotifier()
    return ctx.notifier


def code_in(notices: FakeNotifier) -> str:
    body = list(notices.delivered.values())[-1].body
    return next(w.strip(".") for w in body.split() if w.strip(".").isdigit() and len(w.strip(".")) == 6)


def subscriber_of(ctx: Context, shop: str, email: str, ref: str) -> int:
    take_order(ctx, order(shop, email, ref))
    number = ctx.emails.find(shop, email)
    assert number is not None
    return number


def test_a_code_sent_to_the_stored_address_links_the_login_as_holder(ctx: Context, shop: str,
                                                                     notices: FakeNotifier) -> None:
    number = subscriber_of(ctx, shop, "kari@example.no", "o1")
    reader = me(shop, email="not-kari@example.com")  # the token's claim plays no part
    identity.start_link(ctx, reader, " Kari@Example.no ")
    assert [n.to for n in notices.delivered.values()] == ["kari@example.no"]
    with pytest.raises(NotFound):
        authorize(ctx, reader, number)  # nothing linked before the code comes back
    assert identity.confirm_link(ctx, reader, "kari@example.no", code_in(notices)) == [number]
    assert authorize(ctx, reader, number) is Role.HOLDER
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None and loaded.account.logins[link_key(reader.login, None)].email == "kari@example.no"
    assert [(s.number, s.role) for s in identity.subscribers_of(ctx, reader)] == [(number, Role.HOLDER)]


def test_an_address_that_is_nobodys_gets_the_same_treatment_and_a_code_that_never_links(
        ctx: Context, shop: str, notices: FakeNotifier) -> None:
    subscriber_of(ctx, shop, "kari@example.no", "o1")
    reader = me(shop)
    identity.start_link(ctx, reader, "nobody@example.no")  # no error, no notice, a code stored all the same
    assert notices.delivered == {}
    assert ctx.codes.get(shop, identity.LINK, identity.link_target(reader, "nobody@example.no")) is not None
    for guess in ("000000", "123456", "999999"):
        with pytest.raises(CodeRefused):
            identity.confirm_link(ctx, reader, "nobody@example.no", guess)
    assert record_of(ctx, reader).holder_of == ()


def test_a_code_is_bound_to_the_login_that_asked_for_it(ctx: Context, shop: str, notices: FakeNotifier) -> None:
    number = subscriber_of(ctx, shop, "kari@example.no", "o1")
    asker, thief = me(shop, "asker"), me(shop, "thief")
    identity.start_link(ctx, asker, "kari@example.no")
    code = code_in(notices)
    with pytest.raises(CodeRefused):
        identity.confirm_link(ctx, thief, "kari@example.no", code)
    with pytest.raises(NotFound):
        authorize(ctx, thief, number)
    assert identity.confirm_link(ctx, asker, "kari@example.no", code) == [number]


def test_unlink_removes_the_link_and_then_the_subscriber_is_not_found(ctx: Context, shop: str,
                                                                      notices: FakeNotifier) -> None:
    number = subscriber_of(ctx, shop, "kari@example.no", "o1")
    reader = me(shop)
    identity.start_link(ctx, reader, "kari@example.no")
    identity.confirm_link(ctx, reader, "kari@example.no", code_in(notices))
    identity.unlink(ctx, reader, number)
    with pytest.raises(NotFound):
        authorize(ctx, reader, number)
    with pytest.raises(NotFound):
        identity.unlink(ctx, reader, number)  # again: the same answer as for anybody else's subscriber
    loaded = ctx.accounts.load(shop, number)
    assert loaded is not None and loaded.account.logins == {}


def test_an_order_by_a_logged_in_buyer_links_the_new_subscriber_in_its_transaction(ctx: Context, shop: str) -> None:
    buyer = me(shop, "buyer")
    taken = take_order(ctx, order(shop, "new@example.no", "o2"), buyer)
    number = ctx.emails.find(shop, "new@example.no")
    assert taken.accepted and number is not None
    assert authorize(ctx, buyer, number) is Role.HOLDER
    again = take_order(ctx, order(shop, "new@example.no", "o2"), buyer)  # the same order again: nothing more
    assert again.accepted and not again.created


def test_a_linked_buyers_order_for_its_subscriber_is_placed_not_held(ctx: Context, shop: str) -> None:
    buyer = me(shop, "buyer")
    take_order(ctx, order(shop, "mine@example.no", "o3"), buyer)
    number = ctx.emails.find(shop, "mine@example.no")
    second = take_order(ctx, order(shop, "mine@example.no", "o4"), buyer)
    assert second.accepted and second.payment is not None  # placed at once, not pending
    loaded = ctx.accounts.load(shop, number or 0)
    assert loaded is not None and len(loaded.account.subscriptions) == 2
    stranger = take_order(ctx, order(shop, "mine@example.no", "o5"), me(shop, "stranger"))
    assert not stranger.accepted  # another login's order on the address waits for customer service
    anonymous = take_order(ctx, order(shop, "mine@example.no", "o6"))
    assert not anonymous.accepted
