"""HTTP: the merchant API for customer service and administrators (M2).

Bearer token required (``shared.adapters.auth``); the tenant is the token's. Catalogue
CRUD (C1-C4 and dunning processes), subscriber search (S1: any column contains),
subscriber overview with subscriptions, invoices (issued and draft) and ledger (manual
6.8), KID lookup, the tenant summary, a manual start of the invoice and dunning runs, and payments:
requires processing and its resolution, manual registration, refunds, search (P2, P4).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import azure.functions as func
from pydantic import BaseModel, Field

from functions.http import Call, Endpoint, endpoint, problem
from functions.validation import Body, Day, Id, Note, Number, PositiveMinor, Ref, bounded, to_domain
from shared.adapters.catalogue_store import FIELDS, KINDS
from shared.adapters.codec import to_jsonable
from shared.domain.import_report import ImportReport
from shared.ports import NotFound
from shared.service import catalogue as catalogue_service
from shared.service import payments_in, queries
from shared.service.billing import RunStarted, start_invoice_run
from shared.service.dunning import start_dunning_run, sweep_dunning

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
        item = getattr(call.ctx.catalogue.get(call.tenant), field).get(call.route["id"])
        if item is None:
            raise NotFound(f"no {kind.replace('_', ' ')} {call.route['id']}")
        return to_jsonable(item)

    @endpoint(bp, Endpoint(f"catalogue_put_{kind}", base + "/{id}", ["PUT"], f"Create or replace one of {segment}",
                           "Catalogue", body=bounded(model), response=model, roles=WRITE))
    def put_item(call: Call) -> Any:
        item = to_domain(model, call.body, call.route["id"])
        return to_jsonable(catalogue_service.put_item(call.ctx, call.tenant, kind, item))

    @endpoint(bp, Endpoint(f"catalogue_delete_{kind}", base + "/{id}", ["DELETE"],
                           f"Delete one of {segment} (409 while a plan, subscription or invoice uses it)",
                           "Catalogue", roles=WRITE, status=204))
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
    return queries.overview(call.ctx, call.tenant, call.number("subscriber_no"))


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
    amount_invoiced_minor: int | None
    ledger_balance_minor_total: int | None
    payments_booked: int
    amount_paid_minor: int | None
    invoices_open: int
    invoices_paid: int
    requires_processing: int
    requires_processing_minor: int | None
    currency: str | None
    by_status: dict[str, int]
    reminders_issued: int
    reminder_fees_minor: int | None
    payment_stops: int
    credit_notes: int
    amount_credited_minor: int | None
    balance_invoices: int
    amount_charged_minor: int | None
    amount_written_off_minor: int | None
    amount_reversed_minor: int | None = Field(default=None, description="reversals the bank made")
    number_series_gapless: bool = Field(description="every organisation's invoice and credit note numbers run "
                                        "from its first to its last, each once")
    by_currency: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="the money figures per currency; the top-level ones are null when the "
        "tenant has more than one currency")


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
    return _planned(start_invoice_run(call.ctx, call.tenant))


@endpoint(bp, Endpoint("dunning_run_start", "merchant/dunning-runs", ["POST"],
                       "Start the dunning run for today now (the timer does this daily)", "Billing",
                       response=RunOut, roles=WRITE, status=202,
                       params={"sweep": "true: visit every subscriber with an open invoice, indexed or not (after "
                                        "attaching a dunning process to a billing plan: stops are retroactive)"}))
def start_dunning(call: Call) -> Any:
    if call.query.get("sweep", "").lower() in ("true", "1", "yes"):
        return _planned(sweep_dunning(call.ctx, call.tenant))
    return _planned(start_dunning_run(call.ctx, call.tenant))


def _planned(planned: RunStarted) -> dict[str, Any]:
    return RunOut(tenant=planned.tenant, through=planned.through.isoformat(), subscribers=planned.subscribers,
                  messages=planned.messages).model_dump()


# ---- payments (P2, P4) --------------------------------------------------------------------

class ResolveIn(Body):
    subscriber_no: Number
    organization_id: Id
    invoice_number: Number | None = None


class PaymentIn(Body):
    subscriber_no: Number
    organization_id: Id
    amount_minor: PositiveMinor
    payment_date: Day
    external_id: Ref = Field(description="makes registering it twice harmless")
    invoice_number: Number | None = None
    comment: Note = ""


class RefundIn(Body):
    subscriber_no: Number
    organization_id: Id
    amount_minor: PositiveMinor
    external_reference: Ref
    comment: Note = ""


def _booked(result: payments_in.ImportResult) -> dict[str, Any]:
    return {"booked": result.booked, "already_booked": result.already_booked,
            "amount_booked_minor": result.amount_booked_minor}


@endpoint(bp, Endpoint("payments_requires_processing", "merchant/payments/requires-processing", ["GET"],
                       "Payments that could not be identified, with the reason", "Payments", roles=READ))
def list_requires_processing(call: Call) -> Any:
    return payments_in.requires_processing(call.ctx, call.tenant)


@endpoint(bp, Endpoint("payments_resolve", "merchant/payments/requires-processing/{payment_id}/resolve", ["POST"],
                       "Assign a set-aside payment to a subscriber (and invoice), booking it once (409 if it "
                       "was resolved already or is being resolved)", "Payments",
                       body=ResolveIn, roles=("admin", "support")))
def resolve(call: Call) -> Any:
    body: ResolveIn = call.body
    try:
        return _booked(payments_in.resolve(call.ctx, call.tenant, call.route["payment_id"], body.subscriber_no,
                                           body.organization_id, body.invoice_number))
    except payments_in.PaymentRefused as exc:
        return problem(422, "Not accepted", str(exc))


@endpoint(bp, Endpoint("payments_awaiting_approval", "merchant/payments/awaiting-approval", ["GET"],
                       "Identified payments of organisations that approve payments by hand", "Payments", roles=READ))
def list_awaiting_approval(call: Call) -> Any:
    return payments_in.awaiting_approval(call.ctx, call.tenant)


@endpoint(bp, Endpoint("payments_approve", "merchant/payments/awaiting-approval/{payment_id}/approve", ["POST"],
                       "Approve a payment, which books it once (409 if it was approved already)", "Payments",
                       roles=("admin",)))
def approve(call: Call) -> Any:
    assert call.principal is not None
    return _booked(payments_in.approve(call.ctx, call.tenant, call.route["payment_id"], call.principal.subject))


@endpoint(bp, Endpoint("payments_register", "merchant/payments", ["POST"], "Register a payment by hand", "Payments",
                       body=PaymentIn, roles=("admin", "support"), status=201))
def register(call: Call) -> Any:
    b: PaymentIn = call.body
    return _booked(payments_in.register_payment(call.ctx, call.tenant, b.subscriber_no, b.organization_id,
                                                b.amount_minor, b.payment_date, b.external_id, b.invoice_number,
                                                b.comment))


@endpoint(bp, Endpoint("payments_search", "merchant/payments", ["GET"], "Search booked payments", "Payments",
                       roles=READ, params={"from": "first payment date (YYYY-MM-DD)", "to": "last payment date",
                                           "subscriber_no": "subscriber number", "invoice_number": "invoice number",
                                           "source": "ocr_giro, bgmax or manual"}))
def search_payments(call: Call) -> Any:
    q = call.query
    return payments_in.search(call.ctx, call.tenant,
                              date.fromisoformat(q["from"]) if q.get("from") else None,
                              date.fromisoformat(q["to"]) if q.get("to") else None,
                              int(q["subscriber_no"]) if q.get("subscriber_no") else None,
                              int(q["invoice_number"]) if q.get("invoice_number") else None,
                              q.get("source") or None)


@endpoint(bp, Endpoint("refunds_book", "merchant/refunds", ["POST"],
                       "Book a refund: a debit on the subscriber's ledger", "Payments", body=RefundIn,
                       roles=("admin",), status=201))
def book_refund(call: Call) -> Any:
    b: RefundIn = call.body
    created = payments_in.book_refund(call.ctx, call.tenant, b.subscriber_no, b.organization_id, b.amount_minor,
                                      b.external_reference, b.comment)
    return {"booked": created}


# ---- import reports (P1) ------------------------------------------------------------------

@endpoint(bp, Endpoint("payments_imports", "merchant/payments/imports", ["GET"],
                       "Import reports of the tenant's bank files, newest first: where every record landed, per "
                       "currency, checked against the file's control totals", "Payments",
                       response=list[ImportReport], roles=READ))
def list_imports(call: Call) -> Any:
    return [to_jsonable(r) for r in call.ctx.imports.reports(call.tenant)]


@endpoint(bp, Endpoint("payments_import", "merchant/payments/imports/{report_id}", ["GET"],
                       "One bank file's import report (linked from a rejected file's .error.txt)", "Payments",
                       response=ImportReport, roles=READ))
def get_import(call: Call) -> Any:
    report = call.ctx.imports.report(call.tenant, call.route["report_id"])
    if report is None:
        raise NotFound(f"no import report {call.route['report_id']}")
    return to_jsonable(report)


from . import documents as documents  # noqa: E402  (registers the document endpoints on ``bp``)
from . import providers as providers  # noqa: E402  (registers the agreement and refund endpoints on ``bp``)
from . import sites as sites  # noqa: E402  (registers the site licence endpoint on ``bp``)
