"""The cross-tenant matrix: tenant A's admin token, pointed at tenant B's ids, on every
authenticated endpoint. A has the same catalogue as B but no subscribers, so the only
thing that can make a call on B's subscriber, invoice, subscription, correction or KID
succeed is a leak across tenants: each such call is 404 (or 403), no response carries
anything of B's that A did not send itself, and B's rows in every table are unchanged afterwards (same ETags)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from functions.http import REGISTRY, Endpoint
from functions.openapi_http import PARAM
from shared.adapters.tables import TABLES
from shared.service import customer_service as cs
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import function, http, install_catalogue, order

OWNED = {"subscriber_no", "invoice_number", "subscription_id", "correction_id", "kid", "payment_id", "report_id",
         "document_id"}


def bodies(b_subscriber: int) -> dict[str, Any]:
    """A body for each operation that would be accepted if the ids were A's own."""
    org = {"organization_id": "avisa"}
    return {
        "subscription_stop": {"reason": "cross-tenant"},
        "subscription_change_stop": {"stop_date": None, "reason": "cross-tenant"},
        "subscription_pause": {"restart_on": "2026-04-05"},
        "invoice_credit_note": {"reason": "cross-tenant"},
        "invoice_postpone_reminder": {"to": "2026-02-20", "reason": "cross-tenant"},
        "correction_add": org | {"amount_minor": -100, "text": "cross-tenant"},
        "subscriber_write_off": org | {"reason": "cross-tenant"},
        "bulk_write_off": org | {"reason": "cross-tenant", "due_from": "2026-01-01", "due_to": "2026-12-31"},
        "additional_invoice": org | {"ref": "x1", "lines": [{"text": "cross-tenant", "amount_minor": 100}]},
        "order_block_set": {"reason": "cross-tenant"},
        "subscription_delivery": {"delivery": "print", "buyer_reference": "cross-tenant"},
        "document_resend": {"channel": "email", "to": "cross.tenant@example.no"},
        "payments_resolve": org | {"subscriber_no": b_subscriber},
        "payments_register": org | {"subscriber_no": b_subscriber, "amount_minor": 100,
                                    "payment_date": "2026-01-05", "external_id": "x1"},
        "refunds_book": org | {"subscriber_no": b_subscriber, "amount_minor": 100, "external_reference": "x1"},
        "catalogue_put_organization": {"name": "A's own", "currency": "NOK"},
        "charge_refund": {"amount_minor": 100, "refund_id": "x1"},
        "subscriber_ip_ranges": {"ranges": ["192.0.2.0/24"]},
    }


def snapshot(ctx: Context, tenant: str, run_indexes: bool = True) -> dict[tuple[str, str, str], str]:
    """Every row of every table whose keys name ``tenant``, with its ETag; without the
    due and dunning indexes if ``run_indexes`` is False (they are written ahead of the
    transaction by design: an entry whose transaction failed makes a visit that finds
    nothing to do, see docs/architecture.md "The dunning run")."""
    rows = {}
    for table in TABLES:
        for entity in ctx.storage.table(table).list_entities():
            pk, rk = entity["PartitionKey"], entity["RowKey"]
            if not run_indexes and table == "Indexes" and pk.startswith(("due|", "dun|")):
                continue
            if tenant in pk or tenant in rk:
                rows[(table, pk, rk)] = entity.metadata["etag"]
    return rows


def route_of(spec: Endpoint, values: dict[str, str]) -> dict[str, str]:
    """The endpoint's path parameters from ``values``; one not given gets a valid id."""
    return {name: values.get(name, "x1") for name in PARAM.findall(spec.route)}


def call(spec: Endpoint, token: str, route: dict[str, str], body: Any, params: dict[str, str]) -> tuple[int, str]:
    request = http(spec.methods[0], f"/api/{spec.route}", body, headers={"Authorization": f"Bearer {token}"},
                   route=route_of(spec, route), params=params)
    response = function(spec.name)(request)
    return response.status_code, response.get_body().decode()


def test_tenant_a_reaches_nothing_of_tenant_b_on_any_endpoint(ctx: Context) -> None:
    a, b = f"ta{uuid.uuid4().hex[:8]}", f"tb{uuid.uuid4().hex[:8]}"
    install_catalogue(ctx, a)
    install_catalogue(ctx, b)
    placed = place_order(ctx, order(b, 1, email="only.b@example.no"))
    cs.add_correction(ctx, b, placed.subscriber_no, "avisa", -500, "B's correction", "corr-b")
    cs.set_order_block(ctx, b, placed.subscriber_no, "avisa", "B's block")
    invoice = placed.invoices[0]
    route = {"subscriber_no": str(placed.subscriber_no), "invoice_number": str(invoice.number),
             "subscription_id": placed.subscription_id, "correction_id": "corr-b", "kid": invoice.kid,
             "payment_id": "b-payment-1", "organization_id": "avisa", "id": "avisa", "run": "invoice",
             "report_id": "b-report", "document_id": f"inv-{invoice.demand_no:08d}",
             "charge_id": f"c{placed.subscriber_no}-{invoice.demand_no}-1"}
    markers = (b, "only.b@example.no", "Kari Nordmann 1", "B's correction", "B's block")  # what A never sent
    before = snapshot(ctx, b)
    assert len(before) > 5
    token = issuer.token(a, ["admin", "support", "reader"])
    per_endpoint = bodies(placed.subscriber_no)
    checked = 0
    for spec in REGISTRY:
        if spec.roles is None:
            continue
        params = {"q": "only.b"} if "q" in spec.params else {}
        body = per_endpoint.get(spec.name, {"name": "A's own"} if spec.body is not None else None)
        status, text = call(spec, token, route, body, params)
        assert status < 500, (spec.name, text)
        assert not [m for m in markers if m in text], (spec.name, text)
        names_b = OWNED & set(route) & {p for p in route if "{" + p + "}" in spec.route}
        if names_b or (isinstance(body, dict) and "subscriber_no" in body):
            assert status in (403, 404), (spec.name, status, text)
        checked += 1
    assert checked >= 40
    assert snapshot(ctx, b) == before
    # and B itself still sees its own
    own = issuer.token(b, ["reader"])
    response = function("subscriber_overview")(http("GET", "/api/merchant/subscribers", headers={
        "Authorization": f"Bearer {own}"}, route={"subscriber_no": str(placed.subscriber_no)}))
    assert response.status_code == 200 and json.loads(response.get_body())["subscriber"]["email"] == "only.b@example.no"
