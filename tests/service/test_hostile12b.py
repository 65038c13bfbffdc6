"""Hostile review of issue 12: access, money and personal data under the subscriber's own changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from devhost.builders import oslo_morning
from shared.domain.identity import Role
from shared.service import access, groups
from shared.service import self_service_changes as mine
from shared.service.catalogue import put_item
from shared.service.orders import place_order
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.service.my_data_support import install_group_plan, last_code, link_holder, principal


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
