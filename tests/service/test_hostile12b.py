"""Hostile review of issue 12: access, money and personal data under the subscriber's own changes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.builders import oslo_morning
from shared.domain.account import Changes
from shared.domain.catalogue import StopPolicy
from shared.domain.identity import Role
from shared.domain.lifecycle import StopRefused
from shared.domain.subscriptions import SubscriptionStatus
from shared.ports import Delivery, DeliveryStatus, PendingOrder
from shared.service import access, groups, identity
from shared.service import customer_service as cs
from shared.service import personal_data as pd
from shared.service import self_service as my
from shared.service import self_service_changes as mine
from shared.service.billing import bill_subscribers
from shared.service.catalogue import put_item
from shared.service.orders import (
    OrderRejected,
    confirm_pending,
    find_email,
    pending_orders,
    place_order,
    reject_pending,
    take_order,
)
from shared.service.unit_of_work import change
from shared.service.verification import CodeRefused
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.service.my_data_support import install_group_plan, last_code, link_holder, principal
from tests.service.test_self_service import holder


@pytest.fixture
def shop(fake_ctx: FakeContext, tenant: str) -> str:
    install_catalogue(fake_ctx, tenant)
    return tenant


def _group_with_member(ctx: FakeContext, shop: str) -> tuple[Any, Any, int, str]:
    plan_id = install_group_plan(ctx, shop, 2)
    plan = ctx.catalogue.get(shop).plans[plan_id]
    put_item(ctx, shop, "plan", replace(plan, pause_allowed=True))
    placed = place_order(ctx, order(shop, 1, plan=plan_id))
    n, sub = placed.subscriber_no, placed.subscription_id
    owner = link_holder(ctx, shop, n, "owner")
    groups.invite(ctx, owner, n, sub, "per@example.no", Role.USER)
    per = principal(shop, "per", "per@example.no")
    groups.accept(ctx, per, last_code(ctx, shop, "per@example.no"))
    return owner, per, n, sub


def _products(ctx: FakeContext, shop: str, login: str, day: date) -> tuple[str, ...]:
    return access.claims(ctx, shop, login, day).products


@pytest.mark.parametrize("how", ["pause", "restart"])
def test_a_group_member_keeps_the_seat_when_the_group_subscription_resumes(
        fake_ctx: FakeContext, shop: str, clock: Any, how: str) -> None:
    """A pause or a self-service restart makes a new subscription of the group; the members'
    seats must follow it, or the owner pays for seats nobody can use."""
    owner, per, n, sub = _group_with_member(fake_ctx, shop)
    assert _products(fake_ctx, shop, per.login, date(2026, 1, 6))
    if how == "pause":
        mine.pause(fake_ctx, owner, n, sub, date(2026, 4, 5))
        later = date(2026, 4, 10)
    else:
        mine.stop(fake_ctx, owner, n, sub, None, None)
        clock.set(oslo_morning(date(2026, 2, 10)))
        mine.restart(fake_ctx, owner, n, sub)
        later = date(2026, 2, 11)
    clock.set(oslo_morning(later))
    access.refresh(fake_ctx, shop, n)
    assert _products(fake_ctx, shop, owner.login, later)  # the holder reads the products again
    assert _products(fake_ctx, shop, per.login, later) == _products(fake_ctx, shop, owner.login, later)
    resumed = next(s.id for s in fake_ctx.accounts.load(shop, n).account.subscriptions.values()  # type: ignore[union-attr]
                   if s.resumes == sub)
    listed = groups.members(fake_ctx, owner, n, resumed)  # the resumed group still has its member in its seat
    assert listed["used"] == 1 and [m["email"] for m in listed["members"]] == ["per@example.no"]
    groups.invite(fake_ctx, owner, n, resumed, "eva@example.no", Role.USER)
    with pytest.raises(groups.GroupRefused, match="seats are taken"):  # no seat more than the plan has
        groups.invite(fake_ctx, owner, n, resumed, "ola@example.no", Role.USER)
    groups.remove(fake_ctx, owner, n, resumed, listed["members"][0]["id"])  # and the owner can remove it there
    assert _products(fake_ctx, shop, per.login, later) == ()


# ---- erasure and orders -----------------------------------------------------------------------------


def _ended_and_paid(ctx: FakeContext, shop: str) -> tuple[Any, int, str]:
    from tests.service.test_personal_data import pay_first_invoice, subscriber

    n, sub = subscriber(ctx, shop)
    me = link_holder(ctx, shop, n, "kari")
    pay_first_invoice(ctx, shop, n)
    cs.stop(ctx, shop, n, sub, True, None, None, "moving abroad")  # ends 5 Feb
    ctx.clock.set(oslo_morning(date(2026, 2, 6)))  # type: ignore[attr-defined]
    return me, n, sub


def test_an_order_held_for_customer_service_keeps_the_subscriber_from_being_erased(
        fake_ctx: FakeContext, shop: str) -> None:
    """A held order carries the subscriber's name, address and e-mail, and confirming it
    later would bill an erased subscriber at an address that no longer exists."""
    me, n, _sub = _ended_and_paid(fake_ctx, shop)
    held = take_order(fake_ctx, replace(order(shop, 1), start_date=date(2026, 2, 6)))
    assert not held.accepted
    with pytest.raises(pd.ErasureRefused, match="customer service"):
        pd.erase(fake_ctx, me, n)
    (pending,) = pending_orders(fake_ctx, shop)
    reject_pending(fake_ctx, shop, pending.id)
    assert pd.erase(fake_ctx, me, n).erased == date(2026, 2, 6)


@pytest.mark.parametrize("how", ["trusted", "pending"])
def test_no_order_is_placed_on_an_erased_subscriber(fake_ctx: FakeContext, shop: str, how: str) -> None:
    """Whatever found the erased subscriber's number before the erasure (an order held before,
    customer service, an order that read the e-mail index just before it was released), no
    subscription and no invoice is made for the pseudonym: the order is refused, nothing changes."""
    me, n, _sub = _ended_and_paid(fake_ctx, shop)
    new = replace(order(shop, 1), start_date=date(2026, 2, 6), order_ref="again-1")
    if how == "pending":  # held before the erase: forced past the erasure's own check
        pending = fake_ctx.pending.add(shop, PendingOrder("held-1", n, new.to_json(), "2026-02-06T08:00:00"))
        change(fake_ctx, shop, n, lambda seen: Changes(replace(
            seen.account, subscriber=pd.pseudonymised(seen.account.subscriber, seen.today), logins={})))
    else:
        pd.erase(fake_ctx, me, n)
        pending = None
    before = fake_ctx.accounts.load(shop, n)
    with pytest.raises(OrderRejected, match="erased"):
        if pending is not None:
            confirm_pending(fake_ctx, shop, pending.id)
        else:
            place_order(fake_ctx, new, subscriber_no=n)
    after = fake_ctx.accounts.load(shop, n)
    assert after is not None and before is not None and after.account == before.account


# ---- money: a stop and its restart on My page -----------------------------------------------------


def _owed(ctx: FakeContext, shop: str, n: int) -> int:
    ledger = ctx.accounts.documents(shop, n).ledger
    return -sum(e.amount_minor for e in ledger)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.integers(0, 75), stop_in=st.one_of(st.none(), st.integers(0, 35)), optional=st.booleans())
def test_a_stop_withdrawn_by_a_restart_costs_what_never_stopping_costs(
        fake_ctx: FakeContext, clock: Any, day: int, stop_in: int | None, optional: bool) -> None:
    """Stop and restart on the same day on My page: the subscriber then pays for every day it
    gets, exactly as its twin who never stopped (a stop credits the invoices beyond it; a
    withdrawal that kept them credited gave the days away, a free month each month)."""
    clock.set(oslo_morning(date(2026, 1, 5)))
    shop = f"h{uuid.uuid4().hex[:10]}"
    install_catalogue(fake_ctx, shop)
    plan = fake_ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(fake_ctx, shop, "plan", replace(plan, stop_policy=StopPolicy.OPTIONAL if optional else plan.stop_policy))
    billing = fake_ctx.catalogue.get(shop).billing_plans[plan.billing_plan_id]
    put_item(fake_ctx, shop, "billing_plan", replace(billing, fees=()))  # a restart's first-period fee waiver aside
    me, n, sub = holder(fake_ctx, shop, 1)
    _twin_me, twin, _twin_sub = holder(fake_ctx, shop, 2)
    today = date(2026, 1, 5) + timedelta(days=day)
    clock.set(oslo_morning(today))
    bill_subscribers(fake_ctx, shop, today, [n, twin])
    owed_before = _owed(fake_ctx, shop, n)
    try:
        mine.stop(fake_ctx, me, n, sub, None if stop_in is None else today + timedelta(days=stop_in), None)
    except StopRefused:
        return  # not a stop this plan allows on this day
    stopped = fake_ctx.accounts.load(shop, n).account.subscriptions[sub]  # type: ignore[union-attr]
    mine.restart(fake_ctx, me, n, sub)
    mine.restart(fake_ctx, me, n, sub)  # asked again: nothing more
    acc = fake_ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    resumed = [s for s in acc.subscriptions.values() if s.resumes == sub]
    if acc.subscriptions[sub].stop_date is None:  # the stop withdrawn: only if it had changed no money
        assert _owed(fake_ctx, shop, n) == owed_before and resumed == []
    else:  # what the stop credited is billed again: a restart from the stop day, on the same terms
        assert [s.anchor for s in resumed] == [stopped.stop_date]
    for later in (today + timedelta(days=40), today + timedelta(days=100)):
        clock.set(oslo_morning(later))
        bill_subscribers(fake_ctx, shop, later, [n, twin])
        if stop_in is None:  # a stop at the end of a period: then it costs exactly what never stopping does
            assert _owed(fake_ctx, shop, n) == _owed(fake_ctx, shop, twin), later
        running = [s for s in acc.subscriptions.values() if s.status_on(later) is SubscriptionStatus.ACTIVE]
        assert len(running) <= 1


@pytest.mark.parametrize("when", [date(2026, 1, 20), date(2026, 2, 10)])  # the offer's stop ahead, and after it
def test_an_offer_that_stops_by_itself_is_not_continued_on_my_page(
        fake_ctx: FakeContext, shop: str, clock: Any, when: date) -> None:
    """Manual 7.8: an offer's automatic stop ends it after its period; to continue, a new order.
    A restart on My page (withdrawing the automatic stop, or a new subscription on the offer's
    plan, which has no automatic stop) kept the offer's price running on for ever."""
    plan = fake_ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(fake_ctx, shop, "plan", replace(plan, id="offer", name="1 month for 1 kr", automatic_stop=True))
    placed = place_order(fake_ctx, replace(order(shop, 1), plan_id="offer"))
    n, sub = placed.subscriber_no, placed.subscription_id
    me = link_holder(fake_ctx, shop, n, "kari")
    clock.set(oslo_morning(when))
    before = fake_ctx.accounts.load(shop, n)
    (view,) = [s for s in my.subscriptions(fake_ctx, me, n) if s["id"] == sub]
    assert view["can_restart"] is False
    with pytest.raises(StopRefused, match="offer"):
        mine.restart(fake_ctx, me, n, sub)
    assert fake_ctx.accounts.load(shop, n) == before


def test_the_restart_after_a_pause_is_invoiced_as_the_paused_subscription_was(
        fake_ctx: FakeContext, shop: str) -> None:
    """A pause "starts as it was before" (manual 6.6): its documents go the same way with the same
    buyer reference (EHF needs it), not by the organisation's default channel with none."""
    plan = fake_ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(fake_ctx, shop, "plan", replace(plan, pause_allowed=True))
    placed = place_order(fake_ctx, replace(order(shop, 1), buyer_reference="PO-4711"))
    n, sub = placed.subscriber_no, placed.subscription_id
    me = link_holder(fake_ctx, shop, n, "kari")
    mine.change_payment(fake_ctx, me, n, sub, "email")
    paused = fake_ctx.accounts.load(shop, n).account.subscriptions[sub]  # type: ignore[union-attr]
    mine.pause(fake_ctx, me, n, sub, date(2026, 4, 5))
    acc = fake_ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    (restart,) = [s for s in acc.subscriptions.values() if s.resumes == sub]
    assert (restart.delivery, restart.buyer_reference, restart.copies) == (
        paused.delivery, paused.buyer_reference, paused.copies) and paused.buyer_reference == "PO-4711"


@pytest.mark.parametrize("path", ["poster", "trusted", "email change"])
def test_an_address_left_claimed_by_an_erased_subscriber_is_free_for_anyone(
        fake_ctx: FakeContext, shop: str, path: str) -> None:
    """A claim the erasure could not release (an e-mail change cut short before it, the release
    after the erasure's commit failing) named the erased subscriber for ever: an order on the
    address was held for customer service, who could never confirm it (nothing is placed on an
    erased subscriber), and no one could take the address in an e-mail change."""
    me, n, _sub = _ended_and_paid(fake_ctx, shop)
    assert fake_ctx.emails.claim(shop, "kari.new@example.no", n) == n  # left by an e-mail change cut short
    pd.erase(fake_ctx, me, n)
    assert fake_ctx.emails.find(shop, "kari.new@example.no") == n
    new = replace(order(shop, 7), email="kari.new@example.no", start_date=date(2026, 2, 6))
    if path == "poster":
        assert take_order(fake_ctx, new).accepted
    elif path == "trusted":
        assert place_order(fake_ctx, new).subscriber_no != n
    else:
        other = place_order(fake_ctx, replace(order(shop, 8), start_date=date(2026, 2, 6))).subscriber_no
        assert pd.move_email(fake_ctx, shop, other, "kari.new@example.no").email == "kari.new@example.no"
    assert fake_ctx.emails.find(shop, "kari.new@example.no") not in (None, n)


@pytest.mark.parametrize("meanwhile", ["erased", "e-mail changed"])
def test_a_link_code_is_void_once_its_address_is_no_longer_the_subscribers(
        fake_ctx: FakeContext, shop: str, meanwhile: str) -> None:
    """A link code proves the mailbox the subscriber had when it was sent. Redeemed after an
    erasure it linked a login to the erased subscriber (whose kept invoices still carry the real
    name and address: My page and the export showed them); redeemed after the subscriber moved to
    another address (say, away from a shared mailbox) it linked the old mailbox's holder."""
    me, n, _sub = _ended_and_paid(fake_ctx, shop)
    other = principal(shop, "mallory", "kari1@example.no")
    identity.start_link(fake_ctx, other, "kari1@example.no")
    code = last_code(fake_ctx, shop, "kari1@example.no")
    if meanwhile == "erased":
        pd.erase(fake_ctx, me, n)
    else:
        pd.move_email(fake_ctx, shop, n, "kari.elsewhere@example.no")
    before = fake_ctx.accounts.load(shop, n)
    with pytest.raises(CodeRefused):
        identity.confirm_link(fake_ctx, other, "kari1@example.no", code)
    assert fake_ctx.accounts.load(shop, n) == before and fake_ctx.access.get(shop, other.login) is None


@pytest.mark.parametrize("fails", ["deliveries", "index"])
def test_an_erasure_cut_short_after_its_commit_is_completed_by_asking_again(
        fake_ctx: FakeContext, shop: str, fails: str) -> None:
    """The erasure's steps after its commit (the e-mail index, the delivery log's addresses)
    were never done if one failed: the commit had removed the logins, so the subscriber could not
    ask again, and the addresses stayed in the delivery log for good."""
    me, n, _sub = _ended_and_paid(fake_ctx, shop)
    sent = Delivery("inv-1", "email", 1, DeliveryStatus.SENT, oslo_morning(date(2026, 1, 5)), "kari1@example.no")
    fake_ctx.deliveries.claim(shop, n, sent)
    if fails == "deliveries":
        fake_ctx.deliveries.inject("update", OSError("storage went away"))
    else:
        real = fake_ctx.emails.release
        calls: list[str] = []

        def release(tenant: str, email: str, subscriber_no: int) -> bool:
            calls.append(email)
            if len(calls) == 1:
                raise OSError("storage went away")
            return real(tenant, email, subscriber_no)

        fake_ctx.emails.release = release  # type: ignore[method-assign]
    with pytest.raises(OSError):
        pd.erase(fake_ctx, me, n)
    done = pd.erase(fake_ctx, me, n)  # asked again: the rest is done
    assert done.erased == date(2026, 2, 6)
    assert all(d.recipient == "" for d in fake_ctx.deliveries.list(shop, n))
    assert find_email(fake_ctx, shop, "kari1@example.no") is None  # a claim left behind goes at its next use
    assert fake_ctx.emails.find(shop, "kari1@example.no") is None
    acc = fake_ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    assert acc.logins == {} and fake_ctx.access.get(shop, me.login) is None


def test_an_erased_subscriber_is_not_restarted(fake_ctx: FakeContext, shop: str) -> None:
    """Erasure needs no running subscription, yet one stopped less than 3 months ago could be
    restarted by any login still (or again) acting for the subscriber: a subscription and an
    invoice for a pseudonym at erased-N@invalid."""
    me, n, sub = _ended_and_paid(fake_ctx, shop)
    pd.erase(fake_ctx, me, n)
    again = link_holder(fake_ctx, shop, n, "someone")  # however a login came to act for it
    before = fake_ctx.accounts.load(shop, n)
    with pytest.raises(StopRefused, match="erased"):
        mine.restart(fake_ctx, again, n, sub)
    assert fake_ctx.accounts.load(shop, n).account.subscriptions == before.account.subscriptions  # type: ignore[union-attr]
