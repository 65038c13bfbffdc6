"""The merchant API: tokens, roles, tenant isolation, catalogue CRUD, overview, search."""

from __future__ import annotations

import json
from typing import Any

from devhost import issuer
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import function, http, order


def call(name: str, method: str, token: str | None, route: dict[str, str] | None = None, body: Any = None,
         params: dict[str, str] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = function(name)(http(method, "/api/merchant", body, headers=headers, route=route, params=params))
    raw = response.get_body()
    return response.status_code, json.loads(raw) if raw else None


def test_no_token_is_401_and_a_token_for_another_audience_is_401(ctx: Context, shop: str) -> None:
    assert call("catalogue_list_plan", "GET", None)[0] == 401
    foreign = issuer.token(shop, ["admin"], audience="api://someone-else")
    status, problem = call("catalogue_list_plan", "GET", foreign)
    assert status == 401 and "audience" in problem["detail"].lower()


def test_an_expired_token_is_401(ctx: Context, shop: str) -> None:
    assert call("catalogue_list_plan", "GET", issuer.token(shop, ["admin"], ttl=-120))[0] == 401


def test_a_reader_may_read_but_not_change_the_catalogue(ctx: Context, shop: str) -> None:
    reader = issuer.token(shop, ["reader"])
    status, plans = call("catalogue_list_plan", "GET", reader)
    assert status == 200 and {p["id"] for p in plans} == {"digital-monthly", "digital-yearly"}
    assert call("catalogue_delete_plan", "DELETE", reader, {"id": "digital-yearly"})[0] == 403


def test_catalogue_crud_keeps_the_catalogue_consistent(ctx: Context, shop: str) -> None:
    admin = issuer.token(shop, ["admin"])
    product = {"name": "Papiravis lørdag", "vat_rate_bp": 0, "physical": True,
               "prices": [{"frequency": "monthly", "valid_from": "2026-01-01", "amount_minor": 19900}]}
    status, created = call("catalogue_put_product", "PUT", admin, {"id": "lordag"}, product)
    assert status == 200 and created["id"] == "lordag"
    assert call("catalogue_get_product", "GET", admin, {"id": "lordag"})[1]["prices"][0]["amount_minor"] == 19900
    bad_plan = {"name": "x", "organization_id": "avisa", "billing_plan_id": "nope", "product_ids": ["lordag"]}
    status, problem = call("catalogue_put_plan", "PUT", admin, {"id": "x"}, bad_plan)
    assert status == 422 and "unknown billing plan" in problem["detail"]
    status, problem = call("catalogue_delete_product", "DELETE", admin, {"id": "avis"})
    assert status == 409 and "in use" in problem["detail"]  # plans use it: retire, never delete
    assert call("catalogue_delete_product", "DELETE", admin, {"id": "lordag"})[0] == 204
    assert call("catalogue_get_product", "GET", admin, {"id": "lordag"})[0] == 404


def test_an_invalid_catalogue_item_is_422_with_fields(ctx: Context, shop: str) -> None:
    admin = issuer.token(shop, ["admin"])
    status, problem = call("catalogue_put_organization", "PUT", admin, {"id": "o2"}, {"name": "X", "currency": "USD"})
    assert status == 422 and problem["errors"]


def test_the_overview_shows_subscriptions_invoices_draft_and_ledger(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    status, view = call("subscriber_overview", "GET", issuer.token(shop, ["support"]),
                        {"subscriber_no": str(placed.subscriber_no)})
    assert status == 200
    assert [s["status"] for s in view["subscriptions"]] == ["active"]
    assert [i["total_minor"] for i in view["invoices"]] == [34800]
    # the draft of the next period: 5 Feb, with the invoice fee from period 2
    (draft,) = view["draft_invoices"]
    assert (draft["period_index"], draft["due_date"], draft["total_minor"]) == (1, "2026-02-05", 38700)
    assert [e["amount_minor"] for e in view["ledger"]] == [-34800]


def test_another_tenants_subscriber_is_not_found(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    intruder = issuer.token("some-other-tenant", ["admin"])
    status, _ = call("subscriber_overview", "GET", intruder, {"subscriber_no": str(placed.subscriber_no)})
    assert status == 404


def test_search_finds_a_subscriber_by_any_column(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop, 7, email="kari.7@firma.no"))
    place_order(ctx, order(shop, 8))
    token = issuer.token(shop, ["support"])
    for text in ("FIRMA.NO", "Nordmann 7", str(placed.subscriber_no)):
        status, hits = call("subscribers_search", "GET", token, params={"q": text})
        assert status == 200 and [h["number"] for h in hits] == [placed.subscriber_no], text
    assert call("subscribers_search", "GET", token, params={})[0] == 400


def test_a_kid_leads_to_its_subscriber_and_invoice_and_a_wrong_one_to_404(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    invoice = placed.invoices[0]
    token = issuer.token(shop, ["support"])
    status, found = call("kid_lookup", "GET", token, {"kid": invoice.kid})
    assert status == 200
    assert (found["subscriber_no"], found["invoice"]["number"]) == (placed.subscriber_no, invoice.number)
    wrong_check_digit = invoice.kid[:-1] + str((int(invoice.kid[-1]) + 1) % 10)
    assert call("kid_lookup", "GET", token, {"kid": wrong_check_digit})[0] == 404
