"""Access grants (M1, S10): what a login may access on a day, from the accounts it is linked to.

The properties compare ``access_record(...).products_on(day)`` with an oracle written
straight from the rules (a subscription gives its products from its start to its stop; an
unpaid invoice closes it ``access_grace_days`` after its due date when the dunning process
says so; a pause is a stop and a new subscription; a group member gets the seat's products of
the group subscription only), over random subscriptions, payments, links and days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.builders import newspaper
from shared.domain.account import Account
from shared.domain.calendar import Frequency
from shared.domain.catalogue import Catalogue, PaymentType
from shared.domain.demands import DemandTerms, OpenDemand
from shared.domain.identity import (
    AccessRecord,
    LoginLink,
    Role,
    SiteTable,
    access_record,
    grants_of,
    is_empty,
    login_key,
    site_entries,
    with_site,
)
from shared.domain.subscriptions import StopKind, Subscriber, Subscription

BASE = date(2026, 1, 1)
ME = login_key("https://idp.example/v2.0", "me")
OTHER = login_key("https://idp.example/v2.0", "someone-else")


def catalogue(grace: int | None = None, seats: int = 0, seat_products: tuple[str, ...] = ()) -> Catalogue:
    cat = newspaper()
    standard = replace(cat.dunning_processes["standard"], access_grace_days=grace)
    monthly = replace(cat.plans["digital-monthly"], seats=seats, seat_product_ids=seat_products)
    return replace(cat, dunning_processes={"standard": standard}, plans={**cat.plans, "digital-monthly": monthly})


def subscription(sid: str, start: int, stop: int | None, plan: str = "digital-monthly") -> Subscription:
    return Subscription(sid, plan, "avisa", Frequency.MONTHLY, BASE + timedelta(days=start), PaymentType.INVOICE,
                        stop_date=None if stop is None else BASE + timedelta(days=start + stop))


def demand(no: int, sid: str, due: int, open_minor: int, fees: int = 0) -> OpenDemand:
    return OpenDemand(no, DemandTerms(no, "avisa", sid, BASE + timedelta(days=due)), open_minor, fees)


def account(n: int, subs: list[Subscription], demands: list[OpenDemand] = (), links: list[LoginLink] = (),
            ip_ranges: tuple[str, ...] = ()) -> Account:
    return Account(Subscriber(n, f"S {n}", f"s{n}@example.no", ip_ranges=ip_ranges), {s.id: s for s in subs},
                   open_demands={d.demand_no: d for d in demands}, logins={k.key: k for k in links})


def holder(login: str = ME) -> LoginLink:
    return LoginLink(login, Role.HOLDER, "me@example.no", BASE)


def day(offset: int) -> date:
    return BASE + timedelta(days=offset)


# ---- the oracle: the rules as the issue states them --------------------------------------------


def open_by_rules(sub: Subscription, demands: list[OpenDemand], grace: int | None, on: date) -> bool:
    running = sub.anchor <= on and (sub.stop_date is None or on < sub.stop_date)
    unpaid_past_grace = grace is not None and any(
        d.terms.subscription_id == sub.id and d.open_minor - min(d.fees_minor, d.open_minor) > 0
        and on > d.terms.due_date + timedelta(days=grace) for d in demands)
    return running and not unpaid_past_grace


subs_strategy = st.lists(st.tuples(st.integers(-60, 60), st.one_of(st.none(), st.integers(0, 90)),
                                   st.sampled_from(["digital-monthly", "digital-yearly"])), min_size=0, max_size=4)
demands_strategy = st.lists(st.tuples(st.integers(0, 3), st.integers(-40, 80), st.integers(0, 30000),
                                      st.integers(0, 3500)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(subs_strategy, demands_strategy, st.one_of(st.none(), st.integers(0, 30)), st.integers(-70, 160),
       st.integers(-70, 160))
def test_a_holder_reaches_exactly_the_products_of_subscriptions_running_and_paid_or_within_grace(
        raw_subs: list[tuple[int, int | None, str]], raw_demands: list[tuple[int, int, int, int]],
        grace: int | None, built: int, on: int) -> None:
    subs = [subscription(f"s{i}", start, stop, plan) for i, (start, stop, plan) in enumerate(raw_subs)]
    demands = [demand(i + 1, f"s{which}", due, open_minor, min(fees, open_minor))
               for i, (which, due, open_minor, fees) in enumerate(raw_demands)]
    cat = catalogue(grace)
    record = access_record(ME, [account(1, subs, demands, [holder()])], cat, day(min(built, on)))
    graced = {"digital-monthly": grace, "digital-yearly": None}  # the yearly billing plan has no dunning
    expected = {p for s in subs if open_by_rules(s, demands, graced[s.plan_id], day(on))
                for p in cat.plans[s.plan_id].product_ids}
    assert set(record.products_on(day(on))) == expected
    assert record.holder_of == (1,) and record.email == "me@example.no"


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.integers(1, 40), st.integers(0, 10), st.booleans(), st.booleans())
def test_an_unpaid_invoice_closes_access_the_day_after_its_grace_and_paying_it_opens_it_again(
        due: int, grace: int, late: int, paid: bool, only_fees_left: bool) -> None:
    sub = subscription("s1", 0, None)
    open_minor = 0 if paid else (3500 if only_fees_left else 29900)
    owed = demand(1, "s1", due, open_minor, 3500 if only_fees_left else 0)
    record = access_record(ME, [account(1, [sub], [owed], [holder()])], catalogue(grace), day(0))
    last_day_with_access = day(due + grace)
    assert record.products_on(last_day_with_access) == ("avis", "kryssord")
    after = last_day_with_access + timedelta(days=1 + late)
    assert record.products_on(after) == (() if open_minor and not only_fees_left else ("avis", "kryssord"))


def test_without_a_grace_period_an_unpaid_invoice_keeps_access_until_the_payment_stop_ends_it() -> None:
    sub = subscription("s1", 0, None)
    owed = demand(1, "s1", 14, 29900)
    unpaid = account(1, [sub], [owed], [holder()])
    record = access_record(ME, [unpaid], catalogue(None), day(0))
    assert record.products_on(day(200)) == ("avis", "kryssord")
    stopped = replace(sub, stop_date=day(45), stop_kind=StopKind.PAYMENT)  # the payment stop (manual 7.7)
    record = access_record(ME, [replace(unpaid, subscriptions={"s1": stopped})], catalogue(None), day(0))
    assert record.products_on(day(44)) == ("avis", "kryssord") and record.products_on(day(45)) == ()


def test_a_paused_subscription_gives_no_access_between_its_pause_and_its_restart() -> None:
    paused = replace(subscription("s1", 0, 31), stop_kind=StopKind.PAUSE)  # paused from 1 February
    restart = replace(subscription("s2", 59, None), scheduled_start=True, resumes="s1")  # back on 1 March
    record = access_record(ME, [account(1, [paused, restart], links=[holder()])], catalogue(), day(10))
    assert record.products_on(day(30)) == ("avis", "kryssord")
    assert all(record.products_on(day(d)) == () for d in range(31, 59))
    assert record.products_on(day(59)) == ("avis", "kryssord")


def test_an_invoice_unpaid_before_a_pause_still_closes_the_restarted_subscription() -> None:
    paused = replace(subscription("s1", 0, 31), stop_kind=StopKind.PAUSE)
    restart = replace(subscription("s2", 59, None), resumes="s1")
    owed = demand(1, "s1", 14, 29900)
    record = access_record(ME, [account(1, [paused, restart], [owed], [holder()])], catalogue(7), day(10))
    assert record.products_on(day(21)) == ("avis", "kryssord") and record.products_on(day(22)) == ()
    assert record.products_on(day(70)) == ()


def test_a_future_subscription_grants_from_its_start_and_an_ended_one_is_left_out() -> None:
    future, ended = subscription("s1", 20, None), subscription("s2", -60, 30)
    record = access_record(ME, [account(1, [future, ended], links=[holder()])], catalogue(), day(0))
    assert record.products_on(day(19)) == () and record.products_on(day(20)) == ("avis", "kryssord")
    assert [g.subscription_id for g in record.grants] == ["s1"]


def test_a_group_member_gets_the_seat_products_of_the_group_subscription_only() -> None:
    group, own = subscription("g1", 0, None), subscription("s2", 0, None, plan="digital-yearly")
    user = LoginLink(ME, Role.USER, "me@example.no", BASE, subscription_id="g1")
    admin = LoginLink(OTHER, Role.ADMIN, "other@example.no", BASE, subscription_id="g1")
    owner = account(1, [group, own], links=[user, admin])
    cat = catalogue(seats=5, seat_products=("avis",))
    mine = access_record(ME, [owner], cat, day(0))
    assert mine.products_on(day(3)) == ("avis",) and mine.holder_of == ()
    assert [(m.subscriber_no, m.subscription_id, m.role) for m in mine.member_of] == [(1, "g1", Role.USER)]
    assert mine.membership(1, "g1") is not None and not mine.acts_for(1)
    assert access_record(OTHER, [owner], cat, day(0)).member_of[0].role is Role.ADMIN
    everything = access_record(ME, [owner], catalogue(seats=5), day(0))  # no seat products named: all of the plan's
    assert everything.products_on(day(3)) == ("avis", "kryssord")


def test_a_group_subscription_that_ends_ends_its_members_access() -> None:
    group = subscription("g1", 0, 40)
    user = LoginLink(ME, Role.USER, "me@example.no", BASE, subscription_id="g1")
    record = access_record(ME, [account(1, [group], links=[user])], catalogue(seats=5), day(0))
    assert record.products_on(day(39)) == ("avis", "kryssord") and record.products_on(day(40)) == ()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.booleans(), st.booleans()), max_size=6), st.integers(0, 40))
def test_a_login_reaches_the_subscribers_that_link_it_and_nothing_of_the_others(
        households: list[tuple[int, bool, bool]], on: int) -> None:
    accounts, expected = {}, set()
    for n, mine, running in households:
        links = [holder(ME if mine else OTHER)]
        accounts[n] = account(n, [subscription(f"s{n}", 0, None if running else 10)], links=links)
    for n, acc in accounts.items():
        if any(k.login == ME for k in acc.logins.values()):
            expected.add(n)
    record = access_record(ME, accounts.values(), catalogue(), day(0))
    assert set(record.holder_of) == expected
    assert {g.subscriber_no for g in record.grants} <= expected
    assert is_empty(record) == (not expected)


def test_an_unlinked_login_has_an_empty_record_and_an_erased_subscriber_grants_nothing() -> None:
    sub = subscription("s1", 0, None)
    assert is_empty(access_record(ME, [account(1, [sub], links=[holder(OTHER)])], catalogue(), day(0)))
    erased = account(1, [sub], links=[holder()])
    erased = replace(erased, subscriber=replace(erased.subscriber, erased=day(1)))
    assert grants_of(erased, catalogue(), day(0)) == ()
    assert AccessRecord(ME).products_on(day(0)) == ()


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.integers(16, 30), st.integers(0, 60))
def test_a_site_reaches_its_products_from_every_address_in_its_ranges_and_from_no_other(
        b: int, c: int, prefix: int, on: int) -> None:
    network = f"10.{b}.{c}.0/{prefix}"
    site = account(7, [subscription("s1", 0, 30)], ip_ranges=(network,))
    table = with_site(SiteTable(), 7, site_entries(site, catalogue(), day(0)))
    inside = f"10.{b}.{c}.{(on * 7) % 256}" if prefix <= 24 else f"10.{b}.{c}.0"
    assert table.products_for(inside, day(on)) == (("avis", "kryssord") if on < 30 else ())
    assert table.products_for("192.0.2.1", day(on)) == ()
    assert with_site(table, 7, ()) == SiteTable()  # ranges removed: the entries go
    other = with_site(table, 8, site_entries(replace(site, subscriber=replace(site.subscriber, number=8)),
                                               catalogue(), day(0)))
    assert {e.subscriber_no for e in with_site(other, 7, ()).entries} == {8}
