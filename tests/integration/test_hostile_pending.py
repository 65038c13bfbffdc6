"""Pending orders and the attention list under hostile use (issue 8 parts 6 and 7):
confirms and rejects racing each other decide an order exactly once and place it at
most once; another tenant's token finds none of them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost import issuer
from shared.service.context import Context
from tests.fixtures import install_catalogue
from tests.integration.test_merchant import call
from tests.integration.test_salesposter import ORDER, invoice_numbers, post


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decisions=st.lists(st.sampled_from(["confirm", "reject"]), min_size=2, max_size=8))
def test_racing_decisions_on_one_pending_order_decide_it_once(ctx: Context, shop: str,
                                                             decisions: list[str]) -> None:
    email = f"p{len(invoice_numbers(ctx, shop))}@example.no"
    assert post(shop, ORDER | {"email": email}, headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 201
    before = invoice_numbers(ctx, shop)
    assert post(shop, ORDER | {"email": email, "order_ref": f"again-{len(before)}"},
                headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 202
    token = issuer.token(shop, ["admin"])
    (held,) = call("pending_orders_list", "GET", token)[1]
    with ThreadPoolExecutor(len(decisions)) as pool:
        statuses = list(pool.map(lambda d: call(f"pending_order_{d}", "POST", token, {"id": held["id"]})[0],
                                 decisions))
    wins = [d for d, s in zip(decisions, statuses, strict=True) if s in (200, 204)]
    assert len(wins) >= 1 and len(set(wins)) == 1, (decisions, statuses)  # one decision, however many say it
    assert all(s in (200, 204, 409) for s in statuses), statuses
    after = invoice_numbers(ctx, shop)
    assert after == before + ([before[-1] + 1] if wins[0] == "confirm" else [])  # placed at most once
    assert after == list(range(1, len(after) + 1))
    assert call("pending_orders_list", "GET", token)[1] == []


def test_another_tenants_token_finds_no_pending_order_and_no_attention(ctx: Context, shop: str) -> None:
    post(shop, ORDER)
    assert post(shop, ORDER | {"order_ref": "held"}).status_code == 202
    (held,) = call("pending_orders_list", "GET", issuer.token(shop, ["admin"]))[1]
    other = f"{shop}x"
    install_catalogue(ctx, other)
    token = issuer.token(other, ["admin"])
    assert call("pending_orders_list", "GET", token) == (200, [])
    assert call("pending_order_confirm", "POST", token, {"id": held["id"]})[0] == 404
    assert call("pending_order_reject", "POST", token, {"id": held["id"]})[0] == 404
    assert call("attention_list", "GET", token) == (200, [])
    assert call("pending_orders_list", "GET", issuer.token(shop, ["admin"]))[1] == [held]  # unchanged


def test_a_confirm_refused_by_the_order_blockage_leaves_the_order_pending_for_a_reject(ctx: Context,
                                                                                     shop: str) -> None:
    from shared.service import customer_service

    assert post(shop, ORDER).status_code == 201
    assert post(shop, ORDER | {"order_ref": "held"}).status_code == 202
    token = issuer.token(shop, ["admin"])
    (held,) = call("pending_orders_list", "GET", token)[1]
    customer_service.set_order_block(ctx, shop, held["subscriber_no"], "avisa", "Disputed invoices")
    status, problem = call("pending_order_confirm", "POST", token, {"id": held["id"]})
    assert status == 422 and "Disputed invoices" in problem["detail"]
    assert [p["state"] for p in call("pending_orders_list", "GET", token)[1]] == ["pending"]
    assert call("pending_order_reject", "POST", token, {"id": held["id"]})[0] == 204
    assert invoice_numbers(ctx, shop) == [1]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(["\n", "\r\n", "\x00", " ", "\t", "\u2028"]))
def test_a_tenant_with_a_trailing_control_character_is_refused_in_a_token_and_in_a_path(
        ctx: Context, shop: str, suffix: str) -> None:
    """``re.match`` with ``$`` lets a trailing newline by: the check must match the whole id."""
    status, _problem = call("pending_orders_list", "GET", issuer.token(shop + suffix, ["admin"]))
    assert status == 403
    response = post(shop + suffix, ORDER)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
