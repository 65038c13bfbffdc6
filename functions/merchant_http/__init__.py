"""HTTP: the merchant API for customer service and administrators (M2).

Bearer token required (``shared.adapters.auth``); the tenant is the token's. Catalogue
CRUD (C1-C4), subscriber search (S1: any column contains), subscriber overview with
subscriptions, invoices (issued and draft) and ledger (manual 6.8), the tenant
summary, and a manual start of the invoice run.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel

from functions.http import Call, Endpoint, endpoint
from shared.adapters.catalogue_store import FIELDS, KINDS
from shared.adapters.codec import to_jsonable
from shared.service import catalogue as catalogue_service
from shared.service import queries
from shared.service.billing import plan_invoice_run

bp = func.Blueprint()
WRITE = ("admin",)
READ = ("admin", "support", "reader")
SEGMENTS = {"organization": "organizations", "product": "products", "billing_plan": "billing-plans", "plan": "plans",
            "dunning_process": "dunning-processes"}


def _register_kind(kind: str, segment: str) -> None:
    model = KINDS[kind]
    field = FIELDS[kind]
    base = f"merchant/catalogue/{segment}"

    @endpoint(bp, Endpoint(f"catalogue_list_{kind}", base, ["GET"], f"List {segment}", "Catalogue",
                           response=list[model], roles=READ))  # type: ignore[valid-type]
    def list_items(call: Call) -> Any:
        items = getattr(call.ctx.catalogue.get(call.tenant), field)
        return [to_jsonable(i) for i in items.values()]

    @endpoint(bp, Endpoint(f"catalogue_get_{kind}", base + "/{id}", ["GET"], f"Get one of {segment}", "Catalogue",
                           response=model, roles=READ))
    def get_item(call: Call) -> Any:
        return to_jsonable(getattr(call.ctx.catalogue.get(call.tenant), field)[call.route["id"]])

    @endpoint(bp, Endpoint(f"catalogue_put_{kind}", base + "/{id}", ["PUT"], f"Create or replace one of {segment}",
                           "Catalogue", body=model, response=model, roles=WRITE))
    def put_item(call: Call) -> Any:
        return to_jsonable(catalogue_service.put_item(call.ctx, call.tenant, kind, call.body))

    @endpoint(bp, Endpoint(f"catalogue_delete_{kind}", base + "/{id}", ["DELETE"],
                           f"Delete one of {segment} (refused while a plan uses it)", "Catalogue", roles=WRITE,
                           status=204))
    def delete_item(call: Call) -> Any:
        catalogue_service.delete_item(call.ctx, call.tenant, kind, call.route["id"])
        return func.HttpResponse(status_code=204)


for _kind, _segment in SEGMENTS.items():
    _register_kind(_kind, _segment)


@endpoint(bp, Endpoint("subscribers_search", "merchant/subscribers", ["GET"],
                       "Search subscribers: any column contains the text", "Subscribers", roles=READ,
                       params={"q": "text to look for (name, e-mail, phone, address, number ...)"}))
def search(call: Call) -> Any:
    text = call.query.get("q", "")
    if not text.strip():
        raise ValueError("query parameter q is required")
    return queries.search(call.ctx, call.tenant, text)


@endpoint(bp, Endpoint("subscriber_overview", "merchant/subscribers/{subscriber_no}", ["GET"],
                       "Subscriber overview: subscriptions, invoices (issued and draft), ledger", "Subscribers",
                       roles=READ))
def overview(call: Call) -> Any:
    number = call.route["subscriber_no"]
    if not number.isdigit():
        raise ValueError("subscriber_no must be a number")
    return queries.overview(call.ctx, call.tenant, int(number))


@endpoint(bp, Endpoint("kid_lookup", "merchant/kid/{kid}", ["GET"],
                       "The subscriber and invoice a KID refers to (decoded, no index)", "Subscribers", roles=READ))
def kid_lookup(call: Call) -> Any:
    return queries.find_by_kid(call.ctx, call.tenant, call.route["kid"])


class SummaryOut(BaseModel):
    subscribers: int
    subscriptions_active: int
    invoices_issued: int
    invoice_number_first: int | None
    invoice_number_last: int | None
    amount_invoiced_minor: int
    ledger_balance_minor_total: int
    currency: str | None
    by_status: dict[str, int]


@endpoint(bp, Endpoint("report_summary", "merchant/reports/summary", ["GET"],
                       "Tenant summary: subscriptions, invoices, amounts, ledger total", "Reports",
                       response=SummaryOut, roles=READ))
def summary(call: Call) -> Any:
    return SummaryOut.model_validate(queries.summary(call.ctx, call.tenant), from_attributes=True).model_dump()


class RunOut(BaseModel):
    tenant: str
    through: str
    subscribers: int
    messages: int


@endpoint(bp, Endpoint("invoice_run_start", "merchant/invoice-runs", ["POST"],
                       "Start the invoice run for today now (the timer does this daily)", "Billing",
                       response=RunOut, roles=WRITE, status=202))
def start_run(call: Call) -> Any:
    planned = plan_invoice_run(call.ctx, call.tenant)
    return RunOut(tenant=planned.tenant, through=planned.through.isoformat(), subscribers=planned.subscribers,
                  messages=planned.messages).model_dump()
