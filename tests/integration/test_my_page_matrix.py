"""The cross-subscriber matrix (issue 12, security): EVERY subscriber endpoint in the registry,
those added by any part of the app included, called through the functions on Azurite by a
login of subscriber A with subscriber B's ids answers 404, as for a subscriber that does not
exist, and changes nothing of B's; a group USER member gets 404, a group ADMIN gets 404 for
any of B's subscriptions but the group's; a merchant token gets 401.

The requests are valid apart from whose ids they carry (each body is made from the endpoint's
own model), so a 404 is the gate's answer, not the body's."""

from __future__ import annotations

import re
from typing import Any

import pytest

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from functions.http import REGISTRY, Endpoint
from shared.domain.identity import Role
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import function, http, order
from tests.my_page import access_rows_on, link, login_of

SUBSCRIBER_ENDPOINTS = [e for e in REGISTRY if e.subscriber]
WITH_SUBSCRIBER = [e for e in SUBSCRIBER_ENDPOINTS if "{subscriber_no}" in e.route]
WITH_SUBSCRIPTION = [e for e in WITH_SUBSCRIBER if "{subscription_id}" in e.route]
PARAM = re.compile(r"{([^}:]+)}")
EXAMPLE_DAY = "2026-03-15"  # within every window a test day of 5 January allows


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [f"{e.methods[0]} {e.route}" for e in endpoints]


def test_the_matrix_covers_my_page() -> None:
    names = {e.name for e in WITH_SUBSCRIBER}
    assert {"my_subscriptions", "my_invoices", "my_invoice_pdf", "my_payment", "my_stop", "my_restart",
            "my_pause"} <= names


# ---- a valid request of each endpoint, made from its own declarations ----------------------------


def example(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A value the schema accepts (the first choice of each choice, required fields only)."""
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs, name)
    for choice in ("anyOf", "oneOf", "allOf"):
        if choice in schema:
            options = [s for s in schema[choice] if s.get("type") != "null"]
            return example(options[0], defs, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example(props[k], defs, k) for k in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), defs, name) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    return _text(schema, name)


def _text(schema: dict[str, Any], name: str) -> str:
    if schema.get("format") == "date":
        return EXAMPLE_DAY
    if schema.get("format") == "email" or "email" in name:
        return "someone@example.no"
    if "code" in name:
        return "123456"
    return "x" * max(schema.get("minLength", 1), 1)


def body_of(spec: Endpoint) -> Any:
    if spec.body is None:
        return None
    schema = spec.body.model_json_schema()
    return example(schema, schema.get("$defs", {}))


def request(spec: Endpoint, token: str, tenant: str, values: dict[str, Any]) -> tuple[int, bytes]:
    route = {"tenant": tenant} | {p: str(values.get(p, "m1")) for p in PARAM.findall(spec.route) if p != "tenant"}
    req = http(spec.methods[0], f"/api/{spec.route}", body_of(spec),
               headers={"Authorization": f"Bearer {token}"}, route=route)
    response = function(spec.name)(req)
    return response.status_code, response.get_body()


# ---- two subscribers, A's login and B's ids ------------------------------------------------------


class Pair:
    def __init__(self, ctx: Context, shop: str) -> None:
        a = place_order(ctx, order(shop, 1))
        b = place_order(ctx, order(shop, 2))
        self.ctx, self.shop = ctx, shop
        self.a, self.a_sub, self.a_invoice = a.subscriber_no, a.subscription_id, a.invoices[0].number
        self.b, self.b_sub, self.b_invoice = b.subscriber_no, b.subscription_id, b.invoices[0].number
        self.token = link(ctx, shop, "kari-a", self.a)
        self.b_token = link(ctx, shop, "kari-b", self.b)

    def of_b(self) -> dict[str, Any]:
        return {"subscriber_no": self.b, "subscription_id": self.b_sub, "invoice_number": self.b_invoice}

    def state(self) -> tuple[Any, ...]:
        """Everything of B's a request could change, and who A's and B's logins reach."""
        loaded = self.ctx.accounts.load(self.shop, self.b)
        assert loaded is not None
        history = self.ctx.accounts.documents(self.shop, self.b)
        return (loaded.account, history.invoices, history.credit_notes, history.reminders,
                self.ctx.accounts.payments(self.shop, self.b),
                self.ctx.access.get(self.shop, login_of(self.shop, "kari-a")),
                self.ctx.access.get(self.shop, login_of(self.shop, "kari-b")),
                self.ctx.emails.find(self.shop, "kari2@example.no"))


@pytest.fixture
def pair(ctx: Context, shop: str) -> Pair:
    access_rows_on(ctx)
    return Pair(ctx, shop)


@pytest.mark.parametrize("spec", WITH_SUBSCRIBER, ids=ids(WITH_SUBSCRIBER))
def test_a_login_with_another_subscriber_s_ids_gets_404_and_changes_nothing(pair: Pair, spec: Endpoint) -> None:
    before = pair.state()
    status, body = request(spec, pair.token, pair.shop, pair.of_b())
    assert status == 404, body[:300]
    assert str(pair.b_invoice).encode() not in body and b"kari2@" not in body
    assert pair.state() == before


@pytest.mark.parametrize("spec", [e for e in WITH_SUBSCRIBER if "{subscription_id}" in e.route
                                  or "{invoice_number}" in e.route],
                         ids=ids([e for e in WITH_SUBSCRIBER if "{subscription_id}" in e.route
                                  or "{invoice_number}" in e.route]))
def test_a_login_with_its_own_subscriber_and_another_s_subscription_or_invoice_gets_404(
        pair: Pair, spec: Endpoint) -> None:
    before = pair.state()
    status, body = request(spec, pair.token, pair.shop, pair.of_b() | {"subscriber_no": pair.a})
    assert status == 404, body[:300]
    assert pair.state() == before


@pytest.mark.parametrize("spec", SUBSCRIBER_ENDPOINTS, ids=ids(SUBSCRIBER_ENDPOINTS))
def test_a_merchant_token_on_a_subscriber_endpoint_is_401(pair: Pair, spec: Endpoint) -> None:
    before = pair.state()
    merchant = issuer.token(pair.shop, ["admin"])
    assert request(spec, merchant, pair.shop, pair.of_b())[0] == 401
    assert pair.state() == before


@pytest.mark.parametrize("spec", WITH_SUBSCRIBER, ids=ids(WITH_SUBSCRIBER))
def test_a_group_user_member_has_no_my_page_of_the_group_s_subscriber(pair: Pair, spec: Endpoint) -> None:
    user = link(pair.ctx, pair.shop, "member", pair.b, Role.USER, pair.b_sub)
    before = pair.state()
    status, body = request(spec, user, pair.shop, pair.of_b())
    assert status == 404, body[:300]
    assert pair.state() == before


@pytest.mark.parametrize("spec", WITH_SUBSCRIPTION, ids=ids(WITH_SUBSCRIPTION))
def test_a_group_admin_gets_404_for_any_subscription_of_the_subscriber_but_the_group_s(
        pair: Pair, spec: Endpoint) -> None:
    other = place_order(pair.ctx, order(pair.shop, 2, ref="second"), subscriber_no=pair.b).subscription_id
    admin = link(pair.ctx, pair.shop, "admin", pair.b, Role.ADMIN, pair.b_sub)
    before = pair.state()
    status, body = request(spec, admin, pair.shop, pair.of_b() | {"subscription_id": other})
    assert status == 404, body[:300]
    assert pair.state() == before


def test_a_subscriber_token_on_the_merchant_api_is_401(pair: Pair) -> None:
    merchant = [e for e in REGISTRY if e.roles is not None and "{" not in e.route.replace("{tenant}", "")]
    assert merchant
    for spec in merchant[:10]:
        assert request(spec, pair.token, pair.shop, {})[0] == 401, spec.route

