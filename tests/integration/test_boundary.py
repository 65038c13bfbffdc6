"""Bad input gets a 4xx problem document and changes nothing; nothing a caller sends
becomes a 500 (issue 8, part 6). The class, proven three ways:

* a property over every endpoint with a body: one field of a valid body replaced by a
  hostile value (out-of-range integers and floats, control characters, path and query
  characters, 70 000 characters, far dates, wrong types, deep nesting) is never a 5xx,
  and when it is refused, no row of the tenant changed;
* every route parameter refuses ids and numbers outside its type with 400;
* the raw body is limited before parsing (413 for size, 400 for depth, NaN, non-UTF-8).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from functions.http import REGISTRY, Endpoint, dispatch
from functions.openapi_http import PARAM
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import function, http, order
from tests.integration.test_cross_tenant import bodies, route_of, snapshot

HOSTILE_VALUES: list[Any] = [
    2**31, 2**63, -(2**63) - 1, 10**30, 1e30, -1e30, 1.5, True, None, "", "a/b", "a\\b", "a#b", "a?b", "a\x00b",
    "line\r\nbreak", "x" * 70_000, "9999-12-31", "0001-01-01", "2026-02-30", "Europe/Olso", [], {}, [[[[[]]]]],
    {"a": {"b": {"c": {}}}}, "\ud800" * 0 + "é" * 65,
]
WITH_BODY = [spec for spec in REGISTRY if spec.body is not None and spec.roles is not None]


@pytest.fixture
def account(ctx: Context, shop: str) -> dict[str, Any]:
    placed = place_order(ctx, order(shop))
    return {"token": issuer.token(shop, ["admin"]), "route": {
        "subscriber_no": str(placed.subscriber_no), "invoice_number": str(placed.invoices[0].number),
        "subscription_id": placed.subscription_id, "organization_id": "avisa", "id": "avisa",
        "correction_id": "c1", "payment_id": "p1", "kid": placed.invoices[0].kid, "run": "invoice",
        "report_id": "r1", "document_id": f"inv-{placed.invoices[0].demand_no:08d}",
        "charge_id": f"c{placed.subscriber_no}-{placed.invoices[0].demand_no}-1"},
        "bodies": bodies(placed.subscriber_no)}


def send(spec: Endpoint, token: str, route: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
    request = http(spec.methods[0], f"/api/{spec.route}", body, headers={"Authorization": f"Bearer {token}"},
                   route=route_of(spec, route))
    response = function(spec.name)(request)
    raw = response.get_body()
    return response.status_code, (json.loads(raw) if raw else {})


def valid_body(spec: Endpoint, known: dict[str, Any]) -> dict[str, Any]:
    if spec.name in known:
        return dict(known[spec.name])
    from devhost.demo import catalogue

    kind = spec.name.removeprefix("catalogue_put_")
    for segment, _item_id, body in catalogue():
        if segment.rstrip("s").replace("-", "_") in (kind, kind.replace("_", "-")) or \
                (kind == "dunning_process" and segment == "dunning-processes"):
            return dict(body)
    return {}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_hostile_value_in_any_field_is_never_a_5xx_and_a_refusal_writes_nothing(
        ctx: Context, shop: str, account: dict[str, Any], data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(WITH_BODY), label="endpoint")
    body = valid_body(spec, account["bodies"])
    fields = [*sorted(body), "unknown_field"]
    name = data.draw(st.sampled_from(fields), label="field")
    body[name] = data.draw(st.sampled_from(HOSTILE_VALUES), label="value")
    before = snapshot(ctx, shop, run_indexes=False)
    status, problem = send(spec, account["token"], account["route"], body)
    assert status < 500, (spec.name, name, problem)
    if status >= 400:
        assert problem["status"] == status and problem["title"]
        assert "Traceback" not in json.dumps(problem) and "pydantic" not in json.dumps(problem)
        assert snapshot(ctx, shop, run_indexes=False) == before, (spec.name, name, status, problem)


BAD_IDS = ["a/b", "a\\b", "a#b", "a?b", "a\nb", "a\x00b", "x" * 201, "ø", " a", "a b", "..%2F"]
BAD_NUMBERS = ["-1", "1.5", "²", "1e3", "99999999999999999999", "1_000", " 1", "0x10", ""]


@pytest.mark.parametrize("spec", [s for s in REGISTRY if s.roles is not None and "{" in s.route],
                         ids=lambda s: s.name)
def test_every_route_parameter_refuses_values_outside_its_type(ctx: Context, shop: str, account: dict[str, Any],
                                                                spec: Endpoint) -> None:
    before = snapshot(ctx, shop)
    body = valid_body(spec, account["bodies"]) if spec.body is not None else None
    assert set(PARAM.findall(spec.route)) <= set(account["route"]), "a new path parameter: add it to ``account``"
    for param in [p for p in account["route"] if "{" + p + "}" in spec.route]:
        bad = BAD_NUMBERS if param in ("subscriber_no", "invoice_number") else BAD_IDS
        if param in ("subscriber_no", "invoice_number") and param not in spec.types:
            bad = [*bad, "0"]  # numbers start at 1 (attention rows of a whole run use 0)
        for value in bad:
            status, problem = send(spec, account["token"], account["route"] | {param: value}, body)
            assert status == 400, (spec.name, param, value, status, problem)
            assert problem["errors"][0]["field"] == f"path.{param}"
    assert snapshot(ctx, shop) == before


@pytest.mark.parametrize(("raw", "status", "words"), [
    (b"{" + b'"a":' * 0 + b'"x": "' + b"y" * (300 * 1024) + b'"}', 413, "KiB"),
    (b'{"reason": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "deeper"),
    (b'{"reason": NaN}', 400, "NaN"),
    (b'{"reason": "\xff\xfe"}', 400, "UTF-8"),
    (b'["reason"]', 400, "JSON object"),
    (b'{"reason": "x"', 400, "not JSON"),
])
def test_the_raw_body_is_limited_before_it_is_parsed(ctx: Context, shop: str, account: dict[str, Any],
                                                     raw: bytes, status: int, words: str) -> None:
    spec = next(s for s in REGISTRY if s.name == "invoice_credit_note")
    before = snapshot(ctx, shop)
    got, problem = send(spec, account["token"], account["route"], raw)
    assert (got, words in problem["detail"]) == (status, True), problem
    assert snapshot(ctx, shop) == before


@pytest.mark.parametrize(("endpoint", "field", "value"), [
    ("catalogue_put_billing_plan", "lead_days", 10**9),
    ("catalogue_put_billing_plan", "lead_days", 367),
    ("catalogue_put_organization", "time_zone", "Europe/Olso"),
    ("catalogue_put_organization", "time_zone", "../../etc/passwd"),
    ("catalogue_put_product", "vat_rate_bp", 10_001),
    ("catalogue_put_product", "vat_rate_bp", -1),
    ("correction_add", "amount_minor", 10**30),
    ("correction_add", "amount_minor", 10**11 + 1),
    ("correction_add", "amount_minor", -(10**11) - 1),
    ("subscription_pause", "restart_on", "9999-12-31"),
    ("subscription_stop", "stop_date", "9999-12-31"),
    ("payments_register", "amount_minor", -100),
])
def test_values_that_would_break_billing_later_are_refused_now(ctx: Context, shop: str, account: dict[str, Any],
                                                               endpoint: str, field: str, value: Any) -> None:
    spec = next(s for s in REGISTRY if s.name == endpoint)
    body = valid_body(spec, account["bodies"]) | {field: value}
    before = snapshot(ctx, shop)
    status, problem = send(spec, account["token"], account["route"], body)
    assert status == 422, problem
    assert problem["errors"][0]["field"] == field and problem["errors"][0]["reason"]
    assert snapshot(ctx, shop) == before


def test_an_amount_above_int32_within_business_limits_is_stored_and_read_back(
        ctx: Context, shop: str, account: dict[str, Any]) -> None:
    """Table Storage types a bare int as Int32; the adapter writes a larger one as Int64."""
    spec = next(s for s in REGISTRY if s.name == "correction_add")
    body = valid_body(spec, account["bodies"]) | {"amount_minor": 2**31 + 7, "id": "big"}
    assert send(spec, account["token"], account["route"], body)[0] == 201
    overview = next(s for s in REGISTRY if s.name == "subscriber_overview")
    status, view = send(overview, account["token"], account["route"], None)
    assert status == 200 and [c["amount_minor"] for c in view["corrections"]] == [2**31 + 7]


def test_a_negative_price_is_refused_field_by_field(ctx: Context, shop: str, account: dict[str, Any]) -> None:
    spec = next(s for s in REGISTRY if s.name == "catalogue_put_product")
    body = valid_body(spec, account["bodies"])
    body["prices"][0] = body["prices"][0] | {"amount_minor": -29900}
    status, problem = send(spec, account["token"], account["route"] | {"id": "avis"}, body)
    assert status == 422 and problem["errors"][0]["field"] == "prices.0.amount_minor"


def test_an_unexpected_exception_is_a_500_with_an_error_id_and_no_internals(
        ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    def broken(call: Any) -> Any:
        raise RuntimeError("secret internals: table Subscribers row 7")

    def library_value_error(call: Any) -> Any:
        return int("not a number")

    spec = Endpoint("broken", "broken", ["GET"], "a handler with a bug", "Test")
    response = dispatch(http("GET", "/api/broken"), spec, broken)
    problem = json.loads(response.get_body())
    assert response.status_code == 500 and "secret" not in response.get_body().decode()
    error_id = problem["detail"].split("error ")[1].split(" ")[0]
    assert any(error_id in r.getMessage() and r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    response = dispatch(http("GET", "/api/broken"), spec, library_value_error)
    assert response.status_code == 400 and "invalid literal" not in response.get_body().decode()


@pytest.mark.parametrize(("segment", "item_id"), [("organization", "avisa"), ("plan", "digital-monthly"),
                                                  ("billing_plan", "monthly-14"), ("product", "avis"),
                                                  ("product", "kryssord"), ("dunning_process", "standard")])
def test_a_catalogue_item_in_use_is_refused_deletion_and_history_stays_readable(
        ctx: Context, shop: str, account: dict[str, Any], segment: str, item_id: str) -> None:
    spec = next(s for s in REGISTRY if s.name == f"catalogue_delete_{segment}")
    status, problem = send(spec, account["token"], account["route"] | {"id": item_id}, None)
    assert status == 409 and "in use" in problem["detail"] and "retire" in problem["detail"]
    overview = next(s for s in REGISTRY if s.name == "subscriber_overview")
    assert send(overview, account["token"], account["route"], None)[0] == 200
    kid = next(s for s in REGISTRY if s.name == "kid_lookup")
    assert send(kid, account["token"], account["route"], None)[0] == 200


def test_a_plan_no_subscription_uses_can_be_deleted_once_retired_plans_are_kept(
        ctx: Context, shop: str, account: dict[str, Any]) -> None:
    delete = next(s for s in REGISTRY if s.name == "catalogue_delete_plan")
    assert send(delete, account["token"], account["route"] | {"id": "digital-yearly"}, None)[0] == 204
    assert send(delete, account["token"], account["route"] | {"id": "digital-yearly"}, None)[0] == 404


def test_an_order_block_for_an_unknown_organisation_is_refused_and_removing_one_always_works(
        ctx: Context, shop: str, account: dict[str, Any]) -> None:
    block = next(s for s in REGISTRY if s.name == "order_block_set")
    unblock = next(s for s in REGISTRY if s.name == "order_block_delete")
    before = snapshot(ctx, shop, run_indexes=False)
    status, problem = send(block, account["token"], account["route"] | {"organization_id": "nope"}, {"reason": "x"})
    assert status == 422 and "unknown organization" in problem["detail"]
    assert snapshot(ctx, shop, run_indexes=False) == before
    assert send(unblock, account["token"], account["route"] | {"organization_id": "nope"}, None)[0] == 204
