"""The sales poster endpoint, called as the Functions host calls it (S2, issue 8 parts 3
and 7): it answers only what the person who posted needs, attaches nothing to an
existing subscriber, refuses a reused order reference, bounds every field, the body and
each client's rate, and never answers 500."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost import issuer
from shared.adapters.tables import prefix_filter
from shared.service.context import Context
from tests.fixtures import function, http
from tests.integration.test_merchant import call

ORDER = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Ola Nordmann", "email": "ola@example.no",
         "phone": "+47 41234567", "address": "Storgata 1", "postal_code": "6003", "city": "Ålesund"}


def post(tenant: str, body: object, form: bool = False, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    req = http("POST", f"/api/salesposter/{tenant}/orders", body, headers=headers, route={"tenant": tenant}, form=form)
    return function("salesposter_order")(req)


def answer(response: Any) -> Any:
    return json.loads(response.get_body())


def stored(ctx: Context, tenant: str) -> list[str]:
    """Every row the tenant's orders could have written: subscribers, e-mails, order records."""
    rows = []
    for table, prefix in (("Subscribers", f"{tenant}|"), ("Indexes", f"email|{tenant}|"),
                          ("Indexes", f"order|{tenant}|"), ("Indexes", f"pending|{tenant}")):
        query, params = prefix_filter(prefix)
        rows += [f"{table}:{r['PartitionKey']}:{r['RowKey']}" for r in ctx.storage.query(table, query, params)]
    return rows


def invoice_numbers(ctx: Context, tenant: str) -> list[int]:
    return sorted(i.number for loaded, history in ctx.accounts.scan_tenant(tenant) for i in history.invoices)


def test_the_answer_is_what_to_pay_for_this_order_and_nothing_else(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER, form=True)
    assert response.status_code == 201, response.get_body()
    data = answer(response)
    assert set(data) == {"status", "payment"} and data["status"] == "accepted"
    payment = data["payment"]
    org = ctx.catalogue.get(shop).organizations["avisa"]
    assert payment | {"kid": ""} == {"amount_minor": 34800, "currency": "NOK", "due_date": "2026-01-19",
                                     "kid": "", "account": org.bank_account}
    (loaded, history), = ctx.accounts.scan_tenant(shop)
    assert [i.kid for i in history.invoices] == [payment["kid"]]  # this order's first invoice
    rest = json.dumps(data | {"payment": payment | {"kid": ""}})  # the KID encodes it, as on the invoice
    assert str(loaded.account.number) not in rest  # no subscriber number, no other invoice, no balance


def test_a_repeated_post_with_the_same_idempotency_key_returns_the_same_answer(ctx: Context, shop: str) -> None:
    first = post(shop, ORDER, headers={"Idempotency-Key": "abc"})
    again = post(shop, ORDER | {"name": "  Ola Nordmann ", "email": "OLA@example.no"},  # the same, normalised
                 headers={"Idempotency-Key": "abc"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert answer(first) == answer(again)
    assert len(invoice_numbers(ctx, shop)) == 1


def test_an_order_ref_reused_with_another_body_is_409_and_changes_nothing(ctx: Context, shop: str) -> None:
    assert post(shop, ORDER | {"order_ref": "form-1"}).status_code == 201
    before = stored(ctx, shop)
    response = post(shop, ORDER | {"order_ref": "form-1", "email": "someone.else@example.no"})
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert "ola" not in response.get_body().decode().lower()
    assert stored(ctx, shop) == before and invoice_numbers(ctx, shop) == [1]


def test_an_idempotency_key_reused_with_another_body_is_409(ctx: Context, shop: str) -> None:
    key = {"Idempotency-Key": "9f1c-22"}
    assert post(shop, ORDER, headers=key).status_code == 201
    assert post(shop, ORDER | {"copies": 2}, headers=key).status_code == 409
    assert post(shop, ORDER, headers=key).status_code == 200
    assert invoice_numbers(ctx, shop) == [1]


def test_ten_concurrent_posts_of_one_order_ref_with_different_emails_make_one_order(ctx: Context,
                                                                                    shop: str) -> None:
    bodies = [ORDER | {"order_ref": "same-ref", "email": f"buyer{i}@example.no"} for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda b: post(shop, b), bodies))
    assert statuses == [201] + [409] * 9
    assert invoice_numbers(ctx, shop) == [1]
    assert len(list(ctx.accounts.scan_tenant(shop))) == 1


def test_ten_concurrent_identical_posts_make_one_order_and_all_get_the_same_answer(ctx: Context,
                                                                                    shop: str) -> None:
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: post(shop, ORDER | {"order_ref": "twice"}), range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({json.dumps(answer(r), sort_keys=True) for r in responses}) == 1
    assert invoice_numbers(ctx, shop) == [1]


def test_an_existing_subscribers_email_is_held_for_customer_service_not_attached(ctx: Context, shop: str) -> None:
    assert post(shop, ORDER).status_code == 201
    ((loaded, history),) = list(ctx.accounts.scan_tenant(shop))
    response = post(shop, ORDER | {"templatePackageId": "digital-yearly", "order_ref": "second"})
    assert response.status_code == 202 and answer(response) == {"status": "pending_confirmation", "payment": None}
    ((after, after_history),) = list(ctx.accounts.scan_tenant(shop))
    assert after.account.subscriptions == loaded.account.subscriptions  # nothing attached by an anonymous caller
    assert after_history.invoices == history.invoices
    assert post(shop, ORDER | {"templatePackageId": "digital-yearly", "order_ref": "second"}).status_code == 202
    token = issuer.token(shop, ["admin"])
    status, held = call("pending_orders_list", "GET", token)
    assert status == 200 and len(held) == 1 and held[0]["subscriber_no"] == loaded.account.number
    status, placed = call("pending_order_confirm", "POST", token, {"id": held[0]["id"]})
    assert status == 200 and placed["subscriber_no"] == loaded.account.number
    assert call("pending_order_confirm", "POST", token, {"id": held[0]["id"]})[0] == 409  # decided already
    ((confirmed, _),) = list(ctx.accounts.scan_tenant(shop))
    assert len(confirmed.account.subscriptions) == 2 and invoice_numbers(ctx, shop) == [1, 2]


def test_a_rejected_held_order_is_dropped(ctx: Context, shop: str) -> None:
    post(shop, ORDER)
    assert post(shop, ORDER | {"order_ref": "third"}).status_code == 202
    token = issuer.token(shop, ["admin"])
    (held,) = call("pending_orders_list", "GET", token)[1]
    assert call("pending_order_reject", "POST", token, {"id": held["id"]})[0] == 204
    assert call("pending_orders_list", "GET", token)[1] == []
    assert call("pending_order_confirm", "POST", token, {"id": held["id"]})[0] == 409
    assert invoice_numbers(ctx, shop) == [1]


def test_a_body_over_16_kib_is_413_and_changes_nothing(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"address": "x" * (16 * 1024)})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert stored(ctx, shop) == []


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000,
                                  json.dumps(ORDER | {"name": {"x": [[[[[[[[["deep"]]]]]]]]]}})])
def test_deeply_nested_json_is_400_not_a_recursion_error(ctx: Context, shop: str, body: str) -> None:
    response = post(shop, body)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert stored(ctx, shop) == []


def test_a_burst_from_one_client_gets_429_with_retry_after_and_recovers(ctx: Context, shop: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", "3/60")  # 3 at once, one more every 20 s
    client = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [post(shop, ORDER | {"email": f"b{i}@example.no"}, headers=client).status_code for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = post(shop, ORDER | {"email": "b9@example.no"}, headers=client)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "20"
    assert answer(refused)["status"] == 429
    assert post(shop, ORDER | {"email": "other@example.no"}, headers={"X-Forwarded-For": "198.51.100.1"}
                ).status_code == 201  # another client has its own bucket
    ctx.clock.set(ctx.clock.now() + timedelta(seconds=20))  # type: ignore[attr-defined]
    assert post(shop, ORDER | {"email": "b9@example.no"}, headers=client).status_code == 201


BAD = [
    ("name", "x" * 201), ("name", ""), ("name", "Ola\x00Nordmann"), ("address", "a\nb"), ("city", "c" * 101),
    ("email", "not-an-address"), ("email", "ola\x07@example.no"), ("email", "a\\b@example.no"),
    ("templatePackageId", "digital|monthly"), ("templatePackageId", "../x"), ("copies", 0), ("copies", 1000),
    ("start_date", "9999-12-31"), ("start_date", "2024-01-01"), ("start_date", "31.12.2026"),
    ("order_ref", "a/b"), ("order_ref", "x" * 101), ("phone", "call me"), ("postal_code", "60#3"),
    ("PTY", "77"), ("organization_number", "99?"),
]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_bad_field_is_4xx_problem_json_and_writes_nothing(ctx: Context, shop: str, field: str, value: Any) -> None:
    response = post(shop, ORDER | {field: value})
    assert 400 <= response.status_code < 500 and response.mimetype == "application/problem+json", field
    assert stored(ctx, shop) == []


def test_an_email_with_characters_table_keys_refuse_is_a_normal_order(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"email": "a/b#c?d@example.no"})
    assert response.status_code == 201, response.get_body()


def test_a_bad_idempotency_key_is_400(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER, headers={"Idempotency-Key": "a#b"})
    assert response.status_code == 400 and stored(ctx, shop) == []


def test_a_missing_field_is_422_with_the_field_and_the_reason(ctx: Context, shop: str) -> None:
    response = post(shop, {k: v for k, v in ORDER.items() if k != "email"})
    assert response.status_code == 422
    assert {"field": "email", "reason": "Field required"} in answer(response)["errors"]


def test_an_unknown_payment_type_or_bad_email_is_422(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"PTY": "77", "email": "not-an-address"})
    fields = {e["field"] for e in answer(response)["errors"]}
    assert response.status_code == 422 and fields == {"PTY", "email"}  # named as the client sent them


def test_malformed_json_is_400_not_500(ctx: Context, shop: str) -> None:
    response = post(shop, "{not json")
    assert response.status_code == 400
    assert answer(response)["title"] == "Malformed body"


def test_an_unknown_plan_is_422_with_the_reason(ctx: Context, shop: str) -> None:
    response = post(shop, ORDER | {"templatePackageId": "no-such-plan"})
    assert response.status_code == 422
    assert "no-such-plan" in answer(response)["detail"]


def test_a_tenant_id_that_could_break_a_table_key_is_400(ctx: Context, shop: str) -> None:
    response = post("evil|tenant", ORDER)
    assert response.status_code == 400


FIELDS = ["templatePackageId", "plan_id", "PTY", "payment_type", "name", "email", "phone", "address", "postal_code",
          "city", "organization_number", "start_date", "copies", "order_ref"]
NESTED = st.recursive(st.integers() | st.text(max_size=5), lambda inner: st.lists(inner, max_size=2)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=30)
VALUES = st.one_of(NESTED, st.text(max_size=40), st.integers(-2**40, 2**40), st.none(), st.booleans(),
                   st.floats(allow_nan=True), st.lists(st.text(max_size=5), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                   st.sampled_from(["1", "digital-monthly", "a/b#c?d@example.no", "ola\x00@x.no", "9999-12-31",
                                    "2026-01-05", "999", "0", "\\", "\u2028"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), VALUES), base=st.booleans(), form=st.booleans())
def test_random_bodies_never_get_a_5xx(ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch,
                                       body: dict[str, Any], base: bool, form: bool) -> None:
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", "0")
    data = (ORDER | body) if base else body
    if form:
        data = {k: v for k, v in data.items() if isinstance(v, (str, int)) and "\x00" not in str(v)}
    response = post(shop, data, form=form)
    assert response.status_code < 500, response.get_body()
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_random_bytes_never_get_a_5xx(ctx: Context, shop: str, monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    monkeypatch.setenv("ABONNO_PUBLIC_RATE_LIMIT", "0")
    assert post(shop, raw).status_code < 500


def test_the_openapi_document_declares_every_status_the_sales_poster_answers(ctx: Context) -> None:
    doc = answer(function("openapi_document")(http("GET", "/api/openapi.json")))
    responses = doc["paths"]["/api/salesposter/{tenant}/orders"]["post"]["responses"]
    assert {"200", "201", "202", "400", "409", "413", "422", "429"} <= set(responses)
