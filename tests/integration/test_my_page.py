"""My page's subscriber API through the functions, on Azurite (M1): the subscribers a login
acts for, their subscriptions and documents with the PDF, and the changes a subscriber may
make himself: payment, stop, restart, pause; each within the plan's rules, each harmless
when repeated."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from devhost import issuer
from shared.domain.catalogue import StopPolicy
from shared.domain.identity import Role
from shared.service import catalogue as catalogue_service
from shared.service import customer_service
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order
from tests.my_page import access_rows_on, link, my


@pytest.fixture
def access_rows(ctx: Context) -> None:
    access_rows_on(ctx)


def ordered(ctx: Context, shop: str, n: int = 1, plan: str = "digital-monthly") -> tuple[int, str, int]:
    placed = place_order(ctx, order(shop, n, plan=plan))  # 5 Jan 2026: the first invoice, due 19 Jan
    return placed.subscriber_no, placed.subscription_id, placed.invoices[0].number


def subscriptions(token: str, shop: str, n: int) -> dict[str, dict[str, Any]]:
    status, body = my("my_subscriptions", "GET", token, shop, {"subscriber_no": n})
    assert status == 200, body
    return {s["id"]: s for s in body["subscriptions"]}


def set_plan(ctx: Context, shop: str, plan_id: str = "digital-monthly", **changes: Any) -> None:
    plan = ctx.catalogue.get(shop).plans[plan_id]
    catalogue_service.put_item(ctx, shop, "plan", replace(plan, **changes))


def set_org(ctx: Context, shop: str, **changes: Any) -> None:
    org = ctx.catalogue.get(shop).organizations["avisa"]
    catalogue_service.put_item(ctx, shop, "organization", replace(org, **changes))


def today(ctx: Context, day: date) -> None:
    ctx.clock.set(oslo_morning(day))  # type: ignore[attr-defined]


@pytest.mark.usefixtures("access_rows")
class TestReads:
    def test_a_login_lists_the_subscribers_it_acts_for_and_nothing_before_it_is_linked(
            self, ctx: Context, shop: str) -> None:
        n, _sub, _inv = ordered(ctx, shop)
        stranger = issuer.subscriber_token(shop, "nobody")
        assert my("my_subscribers", "GET", stranger, shop) == (200, {"subscribers": []})
        token = link(ctx, shop, "kari", n)
        assert my("my_subscribers", "GET", token, shop) == (
            200, {"subscribers": [{"number": n, "name": "Kari Nordmann 1", "role": "holder"}]})

    def test_a_new_monthly_subscription_shows_its_period_price_next_invoice_and_what_may_be_done(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        shown = subscriptions(token, shop, n)[sub]
        # ordered 5 Jan: the period 5 Jan - 4 Feb; the monthly price 299.00 + 49.00 = 348.00; the
        # February invoice is made 14 days (lead days) before 5 Feb, on 22 Jan
        assert shown | {"next_invoice": None} == {
            "id": sub, "plan_id": "digital-monthly", "plan_name": "Digital monthly", "status": "active",
            "start": "2026-01-05", "stop_date": None, "stop_kind": None,
            "current_period": {"start": "2026-01-05", "end": "2026-02-04"},
            "price": {"amount_minor": 34800, "currency": "NOK", "frequency": "monthly"}, "next_invoice": None,
            "payment": {"type": "invoice", "agreement": None}, "stop_policy": "end_of_period", "stop_codes": [],
            "can_stop": True, "can_restart": False, "can_pause": False, "group": None}
        assert shown["next_invoice"]["date"] == "2026-01-22" and shown["next_invoice"]["currency"] == "NOK"
        assert shown["next_invoice"]["amount_minor"] >= 34800  # the invoice fee of the billing plan may come on top

    def test_documents_show_status_kid_account_and_the_pdf_downloads(self, ctx: Context, shop: str) -> None:
        n, _sub, inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        status, body = my("my_invoices", "GET", token, shop, {"subscriber_no": n})
        assert status == 200
        (first,) = body["documents"]
        assert first["kind"] == "invoice" and first["number"] == inv and first["status"] == "open"
        assert (first["amount_minor"], first["open_minor"], first["currency"]) == (34800, 34800, "NOK")
        assert first["due"] == "2026-01-19" and first["account"] == "86011117947" and len(first["kid"]) == 15
        assert first["pdf"] == f"/api/my/{shop}/subscribers/{n}/invoices/{inv}/pdf"
        status, pdf = my("my_invoice_pdf", "GET", token, shop, {"subscriber_no": n, "invoice_number": inv})
        assert status == 200 and pdf.startswith(b"%PDF")
        assert my("my_invoice_pdf", "GET", token, shop, {"subscriber_no": n, "invoice_number": inv + 7})[0] == 404

    def test_a_credited_invoice_is_credited_and_its_credit_note_is_listed_with_its_pdf(
            self, ctx: Context, shop: str) -> None:
        n, _sub, inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        customer_service.credit_invoice(ctx, shop, n, inv, "Wrong price")
        docs = my("my_invoices", "GET", token, shop, {"subscriber_no": n})[1]["documents"]
        by_kind = {d["kind"]: d for d in docs}
        assert by_kind["invoice"]["status"] == "credited" and by_kind["invoice"]["open_minor"] == 0
        note = by_kind["credit_note"]
        assert (note["amount_minor"], note["status"], note["kid"]) == (-34800, "credited", None)
        status, pdf = my("my_invoice_pdf", "GET", token, shop, {"subscriber_no": n, "invoice_number": note["number"]})
        assert status == 200 and pdf.startswith(b"%PDF")

    def test_another_subscriber_is_not_found_as_one_that_does_not_exist(self, ctx: Context, shop: str) -> None:
        n, _sub, _inv = ordered(ctx, shop)
        other, _osub, other_inv = ordered(ctx, shop, 2)
        token = link(ctx, shop, "kari", n)
        for name, route in (("my_subscriptions", {"subscriber_no": other}),
                            ("my_invoices", {"subscriber_no": other}),
                            ("my_invoice_pdf", {"subscriber_no": other, "invoice_number": other_inv}),
                            ("my_invoice_pdf", {"subscriber_no": n, "invoice_number": other_inv}),
                            ("my_subscriptions", {"subscriber_no": 999999})):
            status, problem = my(name, "GET", token, shop, route)
            # the answer for one that does not exist, with the numbers asked for
            key = "subscriber_no" if route["subscriber_no"] != n else "invoice_number"
            nobody = my(name, "GET", token, shop, route | {key: 999999})[1]
            assert status == 404 and problem == nobody | {"detail": nobody["detail"].replace(
                "999999", str(route[key]))}, (name, route)
        assert my("my_invoices", "GET", None, shop, {"subscriber_no": n})[0] == 401
        assert my("my_invoices", "GET", issuer.token(shop, ["admin"]), shop, {"subscriber_no": n})[0] == 401


@pytest.mark.usefixtures("access_rows")
class TestStops:
    def test_a_stop_at_the_end_of_the_period_is_found_when_asked_again_and_a_restart_withdraws_it(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        status, stopped = my("my_stop", "POST", token, shop, route, {})
        assert status == 200 and (stopped["stop_date"], stopped["stop_kind"]) == ("2026-02-05", "customer")
        assert (stopped["can_stop"], stopped["can_restart"], stopped["status"]) == (False, True, "active")
        assert my("my_stop", "POST", token, shop, route, {}) == (200, stopped)  # asked again: the same stop
        status, running = my("my_restart", "POST", token, shop, route, {})
        assert status == 200 and (running["id"], running["stop_date"]) == (sub, None)
        assert my("my_restart", "POST", token, shop, route, {}) == (200, running)
        assert list(subscriptions(token, shop, n)) == [sub]

    def test_the_stop_policy_decides_whether_a_day_may_be_chosen_and_none_refuses(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        status, problem = my("my_stop", "POST", token, shop, route, {"on": "2026-01-20"})
        assert status == 422 and "end of its period" in problem["detail"]
        set_plan(ctx, shop, stop_policy=StopPolicy.OPTIONAL)
        status, problem = my("my_stop", "POST", token, shop, route, {"on": "2026-03-01"})
        assert status == 422 and "2026-02-05" in problem["detail"]  # beyond the ongoing period
        status, stopped = my("my_stop", "POST", token, shop, route, {"on": "2026-01-20"})
        assert status == 200 and stopped["stop_date"] == "2026-01-20"
        other, osub, _ = ordered(ctx, shop, 2)
        set_plan(ctx, shop, stop_policy=StopPolicy.NONE)
        token2 = link(ctx, shop, "ola", other)
        assert subscriptions(token2, shop, other)[osub]["can_stop"] is False
        status, problem = my("my_stop", "POST", token2, shop, {"subscriber_no": other, "subscription_id": osub}, {})
        assert status == 422 and "customer service" in problem["detail"]

    def test_a_stop_needs_one_of_the_self_service_stop_codes_where_the_organisation_has_codes(
            self, ctx: Context, shop: str) -> None:
        set_org(ctx, shop, stop_codes=("price", "moving", "death"), self_service_stop_codes=("price", "moving"))
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        assert subscriptions(token, shop, n)[sub]["stop_codes"] == ["price", "moving"]
        assert my("my_stop", "POST", token, shop, route, {})[0] == 422
        assert my("my_stop", "POST", token, shop, route, {"code": "death"})[0] == 422  # customer service's code
        status, stopped = my("my_stop", "POST", token, shop, route, {"code": "price"})
        assert status == 200 and stopped["stop_date"] == "2026-02-05"

    def test_an_ended_subscription_restarts_once_within_three_months_on_the_same_terms(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        assert my("my_stop", "POST", token, shop, route, {})[0] == 200
        today(ctx, date(2026, 2, 10))  # ended on 5 Feb
        status, restarted = my("my_restart", "POST", token, shop, route, {})
        assert status == 200 and restarted["id"] != sub
        assert (restarted["plan_id"], restarted["start"], restarted["status"]) == ("digital-monthly", "2026-02-10",
                                                                                    "active")
        assert my("my_restart", "POST", token, shop, route, {}) == (200, restarted)  # no second subscription
        shown = subscriptions(token, shop, n)
        assert set(shown) == {sub, restarted["id"]} and shown[sub]["can_restart"] is False
        invoices = my("my_invoices", "GET", token, shop, {"subscriber_no": n})[1]["documents"]
        assert next(d["issued"] for d in invoices if d["kind"] == "invoice") == "2026-02-10"  # billed as an order

    def test_a_subscription_stopped_three_months_ago_is_not_restarted(self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        assert my("my_stop", "POST", token, shop, route, {})[0] == 200
        today(ctx, date(2026, 5, 5))  # 5 Feb + 3 months
        status, problem = my("my_restart", "POST", token, shop, route, {})
        assert status == 422 and "3 months" in problem["detail"]

    def test_a_pause_only_where_the_plan_allows_it_and_asked_again_is_the_same_pause(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        assert my("my_pause", "POST", token, shop, route, {"restart_on": "2026-04-05"})[0] == 422
        set_plan(ctx, shop, pause_allowed=True)
        assert subscriptions(token, shop, n)[sub]["can_pause"] is True
        status, paused = my("my_pause", "POST", token, shop, route, {"restart_on": "2026-04-05"})
        assert status == 200 and (paused["stop_date"], paused["stop_kind"]) == ("2026-02-05", "pause")
        assert my("my_pause", "POST", token, shop, route, {"restart_on": "2026-04-05"}) == (200, paused)
        shown = subscriptions(token, shop, n)
        (restart,) = [s for s in shown.values() if s["id"] != sub]
        assert (restart["start"], restart["status"], paused["can_restart"]) == ("2026-04-05", "future", False)


@pytest.mark.usefixtures("access_rows")
class TestPayment:
    def test_invoice_by_ehf_is_refused_for_a_person_and_by_email_is_set(self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        status, problem = my("my_payment", "PUT", token, shop, route, {"method": "ehf"})
        assert status == 422 and "organisation number" in problem["detail"]
        status, done = my("my_payment", "PUT", token, shop, route, {"method": "email"})
        assert status == 200 and done == {"payment": {"type": "invoice", "agreement": None}, "redirect_url": None,
                                          "instructions": None}
        assert my("my_payment", "PUT", token, shop, route, {"method": "email"}) == (200, done)
        assert my("my_payment", "PUT", token, shop, route, {"method": "cash"})[0] == 422

    def test_avtalegiro_says_how_to_sign_it_in_the_bank_with_the_organisation_s_account_and_kid(
            self, ctx: Context, shop: str) -> None:
        n, sub, _inv = ordered(ctx, shop)
        token = link(ctx, shop, "kari", n)
        route = {"subscriber_no": n, "subscription_id": sub}
        status, done = my("my_payment", "PUT", token, shop, route, {"method": "avtalegiro"}, {"lang": "en"})
        assert status == 200 and done["payment"]["type"] == "invoice" and done["redirect_url"] is None
        kid = ctx.catalogue.get(shop).organizations["avisa"].kid.decode(
            done["instructions"].split("KID ")[1].split(".")[0])
        assert kid.subscriber_no == n and "86011117947" in done["instructions"]
        status, norsk = my("my_payment", "PUT", token, shop, route, {"method": "avtalegiro"})
        assert status == 200 and "nettbanken" in norsk["instructions"]


@pytest.mark.usefixtures("access_rows")
class TestGroups:
    def test_a_group_admin_sees_and_changes_only_the_group_subscription_and_a_user_nothing(
            self, ctx: Context, shop: str) -> None:
        set_plan(ctx, shop, "digital-yearly", seats=5)
        owner, group_sub, _ = ordered(ctx, shop, 1, plan="digital-yearly")
        other_sub = place_order(ctx, order(shop, 1, plan="digital-monthly", ref="second")).subscription_id
        admin = link(ctx, shop, "admin", owner, Role.ADMIN, group_sub)
        user = link(ctx, shop, "user", owner, Role.USER, group_sub)
        assert my("my_subscribers", "GET", admin, shop)[1]["subscribers"] == [
            {"number": owner, "name": "Kari Nordmann 1", "role": "admin"}]
        shown = subscriptions(admin, shop, owner)
        assert list(shown) == [group_sub] and shown[group_sub]["group"] == {"seats": 5, "used": 2}
        docs = my("my_invoices", "GET", admin, shop, {"subscriber_no": owner})[1]["documents"]
        assert len(docs) == 1 and docs[0]["amount_minor"] == 299000 + 49000  # the yearly group invoice only
        assert my("my_stop", "POST", admin, shop, {"subscriber_no": owner, "subscription_id": other_sub}, {})[0] == 404
        assert my("my_stop", "POST", admin, shop, {"subscriber_no": owner, "subscription_id": group_sub}, {})[0] == 200
        assert my("my_subscribers", "GET", user, shop) == (200, {"subscribers": []})
        for name in ("my_subscriptions", "my_invoices"):
            assert my(name, "GET", user, shop, {"subscriber_no": owner})[0] == 404


def test_an_unpaid_invoice_that_was_reminded_shows_its_reminder_with_its_own_kid(
        ctx: Context, shop: str, access_rows: None) -> None:
    from shared.service.dunning import dun_subscribers

    n, _sub, inv = ordered(ctx, shop)
    token = link(ctx, shop, "kari", n)
    today(ctx, date(2026, 1, 27))  # due 19 Jan + 7 days: the first reminder (the standard dunning process)
    dun_subscribers(ctx, shop, date(2026, 1, 27), [n])
    docs = my("my_invoices", "GET", token, shop, {"subscriber_no": n})[1]["documents"]
    invoice = next(d for d in docs if d["kind"] == "invoice" and d["number"] == inv)
    reminder = next(d for d in docs if d["kind"] == "reminder")
    assert invoice["status"] == "reminded" and reminder["status"] == "reminded" and reminder["number"] == inv
    assert reminder["kid"] != invoice["kid"] and reminder["pdf"].endswith(f"?reminder={reminder['demand_no']}")
    status, pdf = my("my_invoice_pdf", "GET", token, shop, {"subscriber_no": n, "invoice_number": inv},
                     params={"reminder": str(reminder["demand_no"])})
    assert status == 200 and pdf.startswith(b"%PDF")
