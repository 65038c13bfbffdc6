"""Access rows kept up to date (M1): every commit on a subscriber with logins or IP ranges raises
``AccessChanged`` into the ``access`` queue, and nobody else's does; the access worker
rebuilds the rows from the accounts; links made and removed, stops, pauses, unpaid
invoices past their grace, group seats and racing rebuilds all end in the row the accounts
say. Each test runs on Azurite and on the fakes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta

import pytest

from functions import access_worker
from shared.adapters.bus import ACCESS, EVENTS
from shared.domain.account import Changes
from shared.domain.events import AccessChanged
from shared.domain.identity import LoginLink, Role, login_key
from shared.service import access, customer_service
from shared.service.catalogue import put_item
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import change
from tests.fixtures import order, queued, received

pytestmark = pytest.mark.fakes
TODAY = date(2026, 1, 5)
KARI = login_key("https://idp.example/v2.0", "kari")
OLA = login_key("https://idp.example/v2.0", "ola")


def link(ctx: Context, tenant: str, n: int, login: str, role: Role = Role.HOLDER,
         subscription_id: str | None = None) -> None:
    made = LoginLink(login, role, f"{login[:6]}@example.no", TODAY, subscription_id)
    change(ctx, tenant, n, lambda seen: Changes(replace(seen.account, logins={**seen.account.logins,
                                                                              made.key: made})))


def unlink(ctx: Context, tenant: str, n: int, login: str) -> None:
    change(ctx, tenant, n, lambda seen: Changes(replace(seen.account, logins={
        k: v for k, v in seen.account.logins.items() if v.login != login})))


def work(ctx: Context) -> int:
    """What the access worker is handed, handled; returns the subscribers rebuilt."""
    return access_worker.handle([m.encode() for m in received(ctx, ACCESS)])


def products(ctx: Context, tenant: str, login: str, day: date = TODAY) -> tuple[str, ...]:
    return access.claims(ctx, tenant, login, day).products


def test_a_subscriber_without_logins_raises_no_access_event_and_writes_no_row_for_it(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    customer_service.stop(ctx, shop, placed.subscriber_no, placed.subscription_id, True, None, None, "moving")
    assert queued(ctx, ACCESS) == []
    assert not any(m.body["type"] == "AccessChanged" for m in queued(ctx, EVENTS))


def test_a_link_then_every_change_of_the_account_rebuilds_the_login_row(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    n = placed.subscriber_no
    link(ctx, shop, n, KARI)
    (message,) = queued(ctx, ACCESS)
    assert message.body["type"] == "AccessChanged" and message.body["payload"]["logins"] == [KARI]
    assert work(ctx) == 1
    assert products(ctx, shop, KARI) == ("avis", "kryssord")
    record = ctx.access.get(shop, KARI)
    assert record is not None and record.holder_of == (n,)
    customer_service.stop(ctx, shop, n, placed.subscription_id, False, TODAY + timedelta(days=10), None, "moving")
    assert work(ctx) == 1
    assert products(ctx, shop, KARI, TODAY + timedelta(days=9)) == ("avis", "kryssord")
    assert products(ctx, shop, KARI, TODAY + timedelta(days=10)) == ()
    assert work(ctx) == 0  # nothing more queued; a redelivery would rebuild the same row


def test_an_unlink_removes_the_row_and_the_login_reaches_nothing(ctx: Context, shop: str) -> None:
    n = place_order(ctx, order(shop)).subscriber_no
    link(ctx, shop, n, KARI)
    access.refresh_login(ctx, shop, KARI, (n,))  # synchronously, right after the link (signin does this)
    assert products(ctx, shop, KARI) == ("avis", "kryssord")
    unlink(ctx, shop, n, KARI)
    (message,) = received(ctx, ACCESS)[-1:]
    assert message.body["payload"]["logins"] == [KARI]  # the login linked before the change
    access.refresh_login(ctx, shop, KARI)  # the record still names n; n no longer links it
    assert ctx.access.read(shop, KARI) == (None, None) and products(ctx, shop, KARI) == ()


def test_a_household_login_reaches_both_subscribers_and_loses_one_when_it_stops(ctx: Context, shop: str) -> None:
    first = place_order(ctx, order(shop, 1))
    second = place_order(ctx, order(shop, 2, plan="digital-yearly"))
    for placed in (first, second):
        link(ctx, shop, placed.subscriber_no, KARI)
    work(ctx)
    record = ctx.access.get(shop, KARI)
    assert record is not None and set(record.holder_of) == {first.subscriber_no, second.subscriber_no}
    customer_service.stop(ctx, shop, first.subscriber_no, first.subscription_id, False, TODAY + timedelta(days=3),
                          None, "moving")
    work(ctx)
    assert products(ctx, shop, KARI, TODAY + timedelta(days=30)) == ("avis", "kryssord")  # the yearly one
    record = ctx.access.get(shop, KARI)
    assert record is not None and {g.subscriber_no for g in record.grants if g.until is None} == {second.subscriber_no}


def test_a_pause_closes_access_until_the_restart(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    link(ctx, shop, placed.subscriber_no, KARI)
    restart = date(2026, 4, 5)
    customer_service.pause(ctx, shop, placed.subscriber_no, placed.subscription_id, restart, None)
    work(ctx)
    assert products(ctx, shop, KARI, date(2026, 2, 4)) == ("avis", "kryssord")
    assert products(ctx, shop, KARI, date(2026, 2, 5)) == ()  # paused from the renewal date
    assert products(ctx, shop, KARI, date(2026, 4, 4)) == ()
    assert products(ctx, shop, KARI, restart) == ("avis", "kryssord")


def test_an_unpaid_invoice_closes_access_after_the_grace_days_of_the_dunning_process(ctx: Context, shop: str) -> None:
    standard = ctx.catalogue.get(shop).dunning_processes["standard"]
    put_item(ctx, shop, "dunning_process", replace(standard, access_grace_days=5))
    placed = place_order(ctx, order(shop))
    (invoice,) = placed.invoices
    link(ctx, shop, placed.subscriber_no, KARI)
    work(ctx)
    due = invoice.draft.due_date
    assert products(ctx, shop, KARI, due + timedelta(days=5)) == ("avis", "kryssord")
    assert products(ctx, shop, KARI, due + timedelta(days=6)) == ()


def test_a_group_member_gets_the_seat_products_and_only_an_admin_has_a_membership_to_edit(
        ctx: Context, shop: str) -> None:
    plan = ctx.catalogue.get(shop).plans["digital-monthly"]
    put_item(ctx, shop, "plan", replace(plan, seats=3, seat_product_ids=("avis",)))
    placed = place_order(ctx, order(shop))
    n, group = placed.subscriber_no, placed.subscription_id
    link(ctx, shop, n, KARI)
    link(ctx, shop, n, OLA, Role.USER, group)
    work(ctx)
    assert products(ctx, shop, KARI) == ("avis", "kryssord") and products(ctx, shop, OLA) == ("avis",)
    member = ctx.access.get(shop, OLA)
    assert member is not None and not member.acts_for(n) and member.membership(n, group) is not None


def test_racing_rebuilds_of_one_login_end_in_the_row_the_accounts_say(ctx: Context, shop: str) -> None:
    numbers = [place_order(ctx, order(shop, i)).subscriber_no for i in range(1, 5)]
    for n in numbers:
        link(ctx, shop, n, KARI)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: access.refresh(ctx, shop, n), numbers * 2))
    record = ctx.access.get(shop, KARI)
    assert record is not None and sorted(record.holder_of) == numbers


def test_ip_ranges_put_the_subscriber_into_the_site_table_and_removing_them_takes_it_out(
        ctx: Context, shop: str) -> None:
    n = place_order(ctx, order(shop)).subscriber_no
    assert access.set_ip_ranges(ctx, shop, n, ["192.0.2.17/24", "2001:db8::1/48"]) == ("192.0.2.0/24",
                                                                                         "2001:db8::/48")
    assert access.site_products(ctx, shop, "192.0.2.200", TODAY).products == ("avis", "kryssord")
    assert access.site_products(ctx, shop, "2001:db8::5", TODAY).products == ("avis", "kryssord")
    assert access.site_products(ctx, shop, "198.51.100.1", TODAY).products == ()
    (message,) = received(ctx, ACCESS)
    assert message.body["payload"]["sites"] is True
    access.set_ip_ranges(ctx, shop, n, [])
    assert work(ctx) == 1  # the worker's rebuild finds the ranges gone too
    assert access.site_products(ctx, shop, "192.0.2.200", TODAY).products == ()


def test_the_access_event_is_one_per_commit_and_its_id_repeats_only_for_the_same_commit(
        ctx: Context, shop: str) -> None:
    n = place_order(ctx, order(shop)).subscriber_no
    link(ctx, shop, n, KARI)
    link(ctx, shop, n, OLA)
    ids = [m.id for m in queued(ctx, ACCESS)]  # the second commit sends the first's outbox row again
    assert len(set(ids)) == 2 and ids[0] == ids[1] != ids[-1]
    loaded = ctx.accounts.load(shop, n)
    assert loaded is not None
    again = access.marked(loaded, Changes(loaded.account))
    assert again.events[0].id == access.marked(loaded, Changes(loaded.account)).events[0].id
    assert isinstance(again.events[0], AccessChanged) and access.marked(loaded, again) == again
