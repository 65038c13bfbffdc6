"""Group subscriptions on My page (S10; manual 6.15), through the use cases, once on
Azurite and once on the fakes: invitations within the plan's seats (also when owners
invite at once for the last seat), accepting by the code mailed to the invitee, the
roles ADMIN and USER, removal, and the members' access rows kept with the links."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest

from shared.domain.identity import Role
from shared.ports import NotFound
from shared.service import groups, self_service
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.verification import CodeRefused
from tests.conftest import oslo_morning
from tests.fixtures import order
from tests.service.my_data_support import codes_sent, install_group_plan, last_code, link_holder, principal

pytestmark = pytest.mark.fakes  # every test: once on Azurite, once on the fakes


def group(ctx: Context, shop: str, seats: int = 2) -> tuple[int, str]:
    plan = install_group_plan(ctx, shop, seats)
    placed = place_order(ctx, order(shop, 1, plan=plan))
    return placed.subscriber_no, placed.subscription_id


def test_the_owner_invites_within_the_seats_and_an_invitation_again_takes_no_second_seat(
        ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop, seats=2)
    owner = link_holder(ctx, shop, n, "owner")
    assert groups.members(ctx, owner, n, sub) == {"seats": 2, "used": 0, "members": []}
    first = groups.invite(ctx, owner, n, sub, "a@example.no", Role.USER)
    groups.invite(ctx, owner, n, sub, "b@example.no", Role.ADMIN)
    assert groups.invite(ctx, owner, n, sub, "A@example.no ", Role.USER)["id"] == first["id"]  # renewed, same seat
    with pytest.raises(groups.GroupRefused, match="all 2 seats are taken"):
        groups.invite(ctx, owner, n, sub, "c@example.no", Role.USER)
    listed = groups.members(ctx, owner, n, sub)
    acc = ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    assert self_service.seats_used(acc, sub, date(2026, 1, 5)) == listed["used"]  # My page's subscription view agrees
    assert listed["used"] == 2 and {m["email"].lower() for m in listed["members"]} == {"a@example.no", "b@example.no"}
    assert codes_sent(ctx, shop, "c@example.no") == [] and len(codes_sent(ctx, shop, "a@example.no")) == 2


def test_an_invitee_accepts_with_the_code_and_gets_the_seat_and_the_access(ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop)
    owner = link_holder(ctx, shop, n, "owner")
    groups.invite(ctx, owner, n, sub, "per@example.no", Role.USER)
    per = principal(shop, "per", "per@example.no")
    with pytest.raises(CodeRefused):
        groups.accept(ctx, per, "000000" if last_code(ctx, shop, "per@example.no") != "000000" else "111111")
    taken = groups.accept(ctx, per, last_code(ctx, shop, "per@example.no"))
    assert taken == {"subscriber": n, "subscription_id": sub, "role": "user"}
    (member,) = groups.members(ctx, owner, n, sub)["members"]
    assert (member["kind"], member["email"], member["role"]) == ("member", "per@example.no", "user")
    record = ctx.access.get(shop, per.login)
    assert record is not None and record.membership(n, sub) is not None and not record.acts_for(n)
    assert record.products_on(date(2026, 1, 6))  # a member reaches the group's products
    with pytest.raises(NotFound):  # a USER has access only: no My page for the group
        groups.members(ctx, per, n, sub)


def test_an_admin_member_manages_the_group_but_sees_nothing_else(ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop, seats=3)
    owner = link_holder(ctx, shop, n, "owner")
    groups.invite(ctx, owner, n, sub, "boss@example.no", Role.ADMIN)
    boss = principal(shop, "boss", "someone-else@example.no")  # the token's address is not the invited one
    groups.accept(ctx, boss, last_code(ctx, shop, "boss@example.no"), email="boss@example.no")
    groups.invite(ctx, boss, n, sub, "u@example.no", Role.USER)
    assert groups.members(ctx, boss, n, sub)["used"] == 2
    other = place_order(ctx, order(shop, 2, plan="digital-monthly"))
    with pytest.raises(NotFound):
        groups.members(ctx, boss, other.subscriber_no, other.subscription_id)


def test_removing_a_member_frees_the_seat_and_closes_its_access(ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop, seats=1)
    owner = link_holder(ctx, shop, n, "owner")
    groups.invite(ctx, owner, n, sub, "per@example.no", Role.USER)
    per = principal(shop, "per", "per@example.no")
    groups.accept(ctx, per, last_code(ctx, shop, "per@example.no"))
    (member,) = groups.members(ctx, owner, n, sub)["members"]
    groups.remove(ctx, owner, n, sub, member["id"])
    groups.remove(ctx, owner, n, sub, member["id"])  # again: nothing more, no error
    assert groups.members(ctx, owner, n, sub)["used"] == 0
    record = ctx.access.get(shop, per.login)
    assert record is None or record.membership(n, sub) is None
    groups.invite(ctx, owner, n, sub, "eva@example.no", Role.USER)  # the seat is free again


def test_a_withdrawn_or_expired_invitation_cannot_be_accepted_and_frees_its_seat(ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop, seats=1)
    owner = link_holder(ctx, shop, n, "owner")
    invited = groups.invite(ctx, owner, n, sub, "per@example.no", Role.USER)
    code = last_code(ctx, shop, "per@example.no")
    groups.remove(ctx, owner, n, sub, invited["id"])
    with pytest.raises(groups.GroupRefused, match="withdrawn"):
        groups.accept(ctx, principal(shop, "per", "per@example.no"), code)
    groups.invite(ctx, owner, n, sub, "eva@example.no", Role.USER)
    ctx.clock.set(oslo_morning(date(2026, 1, 5) + timedelta(days=groups.INVITATION_DAYS)))  # type: ignore[attr-defined]
    groups.invite(ctx, owner, n, sub, "ola@example.no", Role.USER)  # eva's has expired: its seat is free
    assert [m["email"] for m in groups.members(ctx, owner, n, sub)["members"]] == ["ola@example.no"]


def test_a_plan_without_seats_is_no_group_and_a_stranger_gets_404(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 1))
    owner = link_holder(ctx, shop, placed.subscriber_no, "owner")
    with pytest.raises(groups.GroupRefused, match="not a group subscription"):
        groups.invite(ctx, owner, placed.subscriber_no, placed.subscription_id, "a@example.no", Role.USER)
    with pytest.raises(NotFound):
        groups.members(ctx, principal(shop, "stranger"), placed.subscriber_no, placed.subscription_id)


def test_owners_inviting_at_once_never_fill_more_seats_than_the_plan_has(ctx: Context, shop: str) -> None:
    n, sub = group(ctx, shop, seats=3)
    owner = link_holder(ctx, shop, n, "owner")
    outcomes: list[str] = []
    lock = threading.Lock()

    def invite(i: int) -> None:
        try:
            groups.invite(ctx, owner, n, sub, f"user{i}@example.no", Role.USER)
            result = "invited"
        except groups.GroupRefused:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=invite, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["invited"] * 3 + ["refused"] * 5
    acc = ctx.accounts.load(shop, n).account  # type: ignore[union-attr]
    assert len(acc.invitations) == 3
    mailed = [i for i in range(8) if codes_sent(ctx, shop, f"user{i}@example.no")]
    assert sorted(f"user{i}@example.no" for i in mailed) == sorted(i.email for i in acc.invitations.values())
