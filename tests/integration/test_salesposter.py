"""The sales poster endpoint, called as the Functions host calls it."""

from __future__ import annotations

import json

from shared.service.context import Context
from tests.fixtures import function, http

ORDER = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Ola Nordmann", "email": "ola@example.no",
         "phone": "+47 41234567", "address": "Storgata 1", "postal_code": "6003", "city": "Ålesund"}


def post(tenant: str, body: object, form: bool = False, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    req = http("POST", f"/api/salesposter/{tenant}/orders", body, headers=headers, route={"tenant": tenant}, form=form)
    return function("salesposter_order")(req)


def test_a_form_post_places_the_order_and_returns_the_first_invoice(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER, form=True)
    assert response.status_code == 201, response.get_body()
    data = json.loads(response.get_body())
    assert data["created"] and len(data["invoices"]) == 1
    assert data["invoices"][0] | {"number": 0, "kid": ""} == {
        "number": 0, "kid": "", "total_minor": 34800, "currency": "NOK", "due_date": "2026-01-19"}


def test_a_repeated_post_with_the_same_idempotency_key_returns_the_same_order(ctx: Context, shop: str) -> None:
    first = post(shop, ORDER, headers={"Idempotency-Key": "abc"})
    again = post(shop, ORDER, headers={"Idempotency-Key": "abc"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert json.loads(first.get_body())["invoices"] == json.loads(again.get_body())["invoices"]


def test_a_missing_field_is_422_with_the_field_and_the_reason(ctx: Context, shop: str) -> None:
    response = post(shop, {k: v for k, v in ORDER.items() if k != "email"})
    assert response.status_code == 422
    problem = json.loads(response.get_body())
    assert {"field": "email", "reason": "Field required"} in problem["errors"]


def test_an_unknown_payment_type_or_bad_email_is_422(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"PTY": "77", "email": "not-an-address"})
    fields = {e["field"] for e in json.loads(response.get_body())["errors"]}
    assert response.status_code == 422 and fields == {"PTY", "email"}  # named as the client sent them


def test_malformed_json_is_400_not_500(ctx: Context, shop: str) -> None:
    response = post(shop, "{not json")
    assert response.status_code == 400
    assert json.loads(response.get_body())["title"] == "Malformed body"


def test_an_unknown_plan_is_422_with_the_reason(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"templatePackageId": "no-such-plan"})
    assert response.status_code == 422
    assert "no-such-plan" in json.loads(response.get_body())["detail"]


def test_a_tenant_id_that_could_break_a_table_key_is_400(ctx: Context, shop: str) -> None:
    response = post("evil|tenant", ORDER)
    assert response.status_code == 400
