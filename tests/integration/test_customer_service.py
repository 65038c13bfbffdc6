"""Customer service over HTTP (functions called as the host calls them, on Azurite):
stop, change stop, pause, credit notes, corrections, write-offs, additional invoices,
postponed reminders, order blockage; bad requests are 4xx with a reason."""

from __future__ import annotations

from datetime import date
from typing import Any

from devhost import issuer
from shared.service.billing import bill_one
from shared.service.context import Context
from shared.service.orders import place_order
from tests.conftest import oslo_morning
from tests.fixtures import order
from tests.integration.test_merchant import call


def setup(ctx: Context, shop: str, n: int = 1) -> tuple[str, int, str, int]:
    placed = place_order(ctx, order(shop, n))  # 5 Jan 2026: invoice due 19 Jan
    return issuer.token(shop, ["admin"]), placed.subscriber_no, placed.subscription_id, placed.invoices[0].number


def overview(token: str, number: int) -> Any:
    return call("subscriber_overview", "GET", token, {"subscriber_no": str(number)})[1]


def test_stop_at_period_end_credits_the_unpaid_invoice_and_a_change_needs_a_reason(ctx: Context, shop: str) -> None:
    token, n, sub, _inv = setup(ctx, shop)
    ctx.clock.set(oslo_morning(date(2026, 1, 22)))  # type: ignore[attr-defined]
    assert bill_one(ctx, shop, date(2026, 1, 22), n) == 1  # February's invoice, not paid
    route = {"subscriber_no": str(n), "subscription_id": sub}
    status, done = call("subscription_stop", "POST", token, route, {"reason": "Too expensive"})
    # case 2 of 6.4: February's invoice credited; January's, overdue, credited and its days charged
    assert status == 200 and done["events"] == ["CreditNoteIssued", "CreditNoteIssued", "SubscriptionStopped"]
    assert done["subscriptions"][0]["stop_date"] == "2026-02-05"
    status, problem = call("subscription_change_stop", "PUT", token, route, {"stop_date": None, "reason": ""})
    assert status == 422 and problem["errors"][0]["field"] == "reason"
    status, done = call("subscription_change_stop", "PUT", token, route, {"stop_date": None, "reason": "Stays"})
    assert status == 200 and done["subscriptions"][0]["stop_date"] is None
    view = overview(token, n)
    assert [c["invoice_number"] for c in view["credit_notes"]] == [i["number"] for i in view["invoices"]]
    status, problem = call("subscription_stop", "POST", token, route, {"stop_date": "2020-01-01", "reason": "x"})
    assert status == 422 and "from today on" in problem["detail"]
    assert call("subscription_stop", "POST", token, route | {"subscription_id": "nope"}, {"reason": "x"})[0] == 404


def test_pause_restarts_with_a_new_subscription_on_the_restart_date(ctx: Context, shop: str) -> None:
    token, n, sub, _inv = setup(ctx, shop)
    route = {"subscriber_no": str(n), "subscription_id": sub}
    status, done = call("subscription_pause", "POST", token, route, {"restart_on": "2026-04-05"})
    assert status == 200 and done["events"][-1] == "SubscriptionPaused"
    subs = {s["id"]: s for s in overview(token, n)["subscriptions"]}
    restart = next(s for s in subs.values() if s["resumes"] == sub)
    assert (subs[sub]["stop_date"], restart["anchor"], restart["status"]) == ("2026-02-05", "2026-04-05", "future")


def test_credit_note_twice_is_refused_and_an_unknown_invoice_is_404(ctx: Context, shop: str) -> None:
    token, n, _sub, inv = setup(ctx, shop)
    route = {"subscriber_no": str(n), "invoice_number": str(inv)}
    status, done = call("invoice_credit_note", "POST", token, route, {"reason": "Wrong price"})
    assert status == 201 and done["credit_notes"][0]["total_minor"] == 34800
    assert call("invoice_credit_note", "POST", token, route, {"reason": "Again"})[0] == 422
    assert call("invoice_credit_note", "POST", token, route | {"invoice_number": "999"}, {"reason": "x"})[0] == 404
    assert overview(token, n)["balances"] == {"avisa": 0}


def test_a_correction_goes_on_the_next_invoice_and_can_be_deleted_before(ctx: Context, shop: str) -> None:
    token, n, _sub, _inv = setup(ctx, shop)
    route = {"subscriber_no": str(n)}
    body = {"organization_id": "avisa", "amount_minor": -5000, "text": "Goodwill", "id": "gw-1"}
    status, _ = call("correction_add", "POST", token, route, body)
    assert status == 201
    view = overview(token, n)
    assert [li["gross_minor"] for li in view["draft_invoices"][0]["lines"]][-1] == -5000
    assert call("correction_delete", "DELETE", token, route | {"correction_id": "gw-1"})[0] == 204
    assert overview(token, n)["corrections"] == []
    assert call("correction_delete", "DELETE", token, route | {"correction_id": "gw-1"})[0] == 422


def test_additional_invoice_is_issued_once_per_ref(ctx: Context, shop: str) -> None:
    token, n, _sub, _inv = setup(ctx, shop)
    body = {"organization_id": "avisa", "ref": "bag-1",
            "lines": [{"text": "Tote bag", "amount_minor": 14900, "vat_rate_bp": 2500, "quantity": 2},
                      {"product_id": "kryssord"}]}
    status, done = call("additional_invoice", "POST", token, {"subscriber_no": str(n)}, body)
    assert status == 201 and done["invoices"][0]["total_minor"] == 2 * 14900 + 4900
    assert done["invoices"][0]["kind"] == "additional"
    # each line carries its VAT rate, net and VAT: the bag 2 x 149.00 at 25 % (VAT 59.60), the app 49.00 at 25 %
    assert [(li["vat_rate_bp"], li["gross_minor"], li["net_minor"], li["vat_minor"])
            for li in done["invoices"][0]["draft"]["lines"]] == [(2500, 29800, 23840, 5960), (2500, 4900, 3920, 980)]
    assert [(e["kind"], e["vat"]) for e in done["ledger"]] == [
        ("invoice", [{"rate_bp": 2500, "gross_minor": 34700, "vat_minor": 6940, "net_minor": 27760}])]
    status, again = call("additional_invoice", "POST", token, {"subscriber_no": str(n)}, body)
    assert status == 201 and again["invoices"] == []  # the same ref: nothing issued twice
    assert len(overview(token, n)["invoices"]) == 2
    bad = body | {"ref": "x", "lines": [{"text": "No amount"}]}
    assert call("additional_invoice", "POST", token, {"subscriber_no": str(n)}, bad)[0] == 422


def test_order_blockage_by_hand_stops_new_orders_until_removed(ctx: Context, shop: str) -> None:
    token, n, _sub, _inv = setup(ctx, shop)
    route = {"subscriber_no": str(n), "organization_id": "avisa"}
    assert call("order_block_set", "PUT", token, route, {"reason": "Bad credit check"})[0] == 200
    assert "Bad credit check" in overview(token, n)["order_blocked"]["avisa"]
    status, body = call_salesposter(shop, "blocked-order")  # the subscriber's e-mail: held for customer service
    assert status == 202 and b"Bad credit check" not in body and str(n).encode() not in body
    (held,) = call("pending_orders_list", "GET", token)[1]
    status, problem = call("pending_order_confirm", "POST", token, {"id": held["id"]})
    assert status == 422 and "Bad credit check" in problem["detail"]  # customer service sees why
    assert call("order_block_delete", "DELETE", token, route)[0] == 204
    status, placed = call("pending_order_confirm", "POST", token, {"id": held["id"]})
    assert status == 200 and placed["subscriber_no"] == n


def call_salesposter(shop: str, ref: str) -> tuple[int, Any]:
    from tests.fixtures import function, http

    form = {"templatePackageId": "digital-yearly", "PTY": "1", "name": "Kari Nordmann 1",
            "email": "kari1@example.no", "order_ref": ref}
    response = function("salesposter_order")(http("POST", f"/api/salesposter/{shop}/orders", form, form=True,
                                                   route={"tenant": shop}))
    return response.status_code, response.get_body()


def test_postpone_write_off_and_bulk_write_off(ctx: Context, shop: str) -> None:
    token, n, sub, inv = setup(ctx, shop)
    route = {"subscriber_no": str(n), "invoice_number": str(inv)}
    status, _ = call("invoice_postpone_reminder", "POST", token, route, {"to": "2026-02-20", "reason": "Travelling"})
    assert status == 200
    demand = overview(token, n)["open_demands"][0]
    assert (demand["postponed_to"], demand["postpone_reason"]) == ("2026-02-20", "Travelling")
    call("subscription_stop", "POST", token, {"subscriber_no": str(n), "subscription_id": sub},
         {"stop_date": "2026-01-10", "reason": "Moved"})  # mid-period: credited, 5 days charged
    ctx.clock.set(oslo_morning(date(2026, 3, 1)))  # type: ignore[attr-defined]
    body = {"organization_id": "avisa", "reason": "Uncollectable", "due_from": "2026-01-01", "due_to": "2026-02-28"}
    status, done = call("bulk_write_off", "POST", token, None, body)
    assert status == 200 and done == {"subscribers": 1, "amount_minor": 34800 * 5 // 31, "failed": []}
    assert overview(token, n)["balances"] == {"avisa": 0}
    assert call("bulk_write_off", "POST", token, None, body)[1] == {"subscribers": 0, "amount_minor": 0, "failed": []}
    status, _ = call("subscriber_write_off", "POST", token, {"subscriber_no": str(n)},
                     {"organization_id": "avisa", "reason": "Nothing left"})
    assert status == 200


def test_the_dunning_run_can_be_started_by_hand_and_swept_over_everyone_who_owes(ctx: Context, shop: str) -> None:
    token, _n, _sub, _inv = setup(ctx, shop)
    place_order(ctx, order(shop, 2))
    ctx.clock.set(oslo_morning(date(2026, 1, 26)))  # type: ignore[attr-defined]
    status, planned = call("dunning_run_start", "POST", token)
    assert status == 202 and planned["subscribers"] == 2 and planned["messages"] == 1
    assert call("dunning_run_start", "POST", token)[1]["subscribers"] == 0  # run for the day already
    status, swept = call("dunning_run_start", "POST", token, params={"sweep": "true"})
    assert status == 202 and swept["subscribers"] == 2  # a sweep ignores index and watermark
