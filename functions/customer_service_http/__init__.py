"""HTTP: customer service on a subscriber, and the dunning run (S4, S5, S7, L4-L6, D1).

Stop (at the period's end or on a date, with a stop code or reason), change or remove
a future stop, pause with a restart date, credit notes, postponed reminders,
corrections for the next invoice, write-offs (one subscriber, or in bulk for stopped
subscriptions), additional invoices and order blockage; what the invoice run, the
dunning run or a notice could not do (needs attention). Bearer token required, as for
the rest of the merchant API.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import BaseModel, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint
from functions.validation import (
    BUYER_REFERENCE_MAX,
    NUMBER_OR_ZERO,
    PRINTABLE,
    Body,
    Code,
    Day,
    Days,
    Id,
    MinorAmount,
    Name,
    Note,
    Quantity,
    Reason,
    SignedMinor,
    VatBp,
)
from shared.domain.calendar import Frequency
from shared.domain.catalogue import Channel
from shared.ports import NotFound
from shared.service import customer_service as cs
from shared.service import isolation

bp = func.Blueprint()
ADMIN = ("admin",)
SUPPORT = ("admin", "support")
READ = ("admin", "support", "reader")
SUBSCRIBER = "merchant/subscribers/{subscriber_no}"
SUBSCRIPTION = SUBSCRIBER + "/subscriptions/{subscription_id}"
INVOICE = SUBSCRIBER + "/invoices/{invoice_number}"


class StopIn(Body):
    at_period_end: bool = Field(default=True, description="stop when the current (or last paid) period ends")
    stop_date: Day | None = Field(default=None, description="first day without delivery, when not at period end")
    code: Code | None = Field(default=None, description="one of the organisation's stop codes (manual 6.13)")
    reason: Note = ""


class ChangeStopIn(Body):
    stop_date: Day | None = Field(description="the new stop date; null removes the stop")
    reason: Reason


class PauseIn(Body):
    restart_on: Day
    plan_id: Id | None = Field(default=None, description="restart with another plan")


class ReasonIn(Body):
    reason: Reason


class PostponeIn(Body):
    to: Day
    reason: Reason


class CorrectionIn(Body):
    organization_id: Id
    amount_minor: SignedMinor = Field(description="negative: a credit off the next invoice; positive: a debit on it")
    text: Name
    id: Id | None = Field(default=None, description="makes posting it twice harmless")


class WriteOffIn(Body):
    organization_id: Id
    reason: Reason


class BulkWriteOffIn(WriteOffIn):
    due_from: Day
    due_to: Day


class LineIn(Body):
    product_id: Id | None = None
    text: Name | None = None
    amount_minor: MinorAmount | None = Field(default=None, description="gross per unit; the product's price if omitted")
    vat_rate_bp: VatBp = 0
    quantity: Quantity = 1
    frequency: Frequency = Field(default=Frequency.MONTHLY, description="which product price, if no amount")


class AdditionalInvoiceIn(Body):
    organization_id: Id
    ref: Id = Field(description="unique per subscriber: posting twice issues once")
    due_days: Days = 14
    lines: list[LineIn] = Field(min_length=1, max_length=100)


BuyerReference = Annotated[str, StringConstraints(pattern=PRINTABLE, max_length=BUYER_REFERENCE_MAX),
                          Field(description=f"at most {BUYER_REFERENCE_MAX} characters, no control characters")]


class DeliveryIn(Body):
    delivery: Channel | None = Field(default=None, description="email, ehf, print or sms; null: the organisation's "
                                     "default channel (document_channel). Omitted: unchanged")
    buyer_reference: BuyerReference = Field(default="", description="the subscriber's order reference, shown on "
                                            "invoices and sent as EHF BuyerReference; '' clears it. Omitted: unchanged")


class OrderBlockIn(Body):
    reason: Reason


@endpoint(bp, Endpoint("subscription_stop", SUBSCRIPTION + "/stop", ["POST"],
                       "Stop a subscription at the period's end or on a date (manual 6.4)", "Customer service",
                       body=StopIn, roles=SUPPORT))
def stop(call: Call) -> Any:
    b: StopIn = call.body
    return cs.summary_of(cs.stop(call.ctx, call.tenant, call.number("subscriber_no"), call.route["subscription_id"],
                                 b.at_period_end and b.stop_date is None, b.stop_date, b.code, b.reason))


@endpoint(bp, Endpoint("subscription_change_stop", SUBSCRIPTION + "/stop", ["PUT"],
                       "Move or remove a future stop; a reason is required (manual 6.5)", "Customer service",
                       body=ChangeStopIn, roles=SUPPORT))
def change_stop(call: Call) -> Any:
    b: ChangeStopIn = call.body
    return cs.summary_of(cs.change_stop(call.ctx, call.tenant, call.number("subscriber_no"),
                                        call.route["subscription_id"], b.stop_date, b.reason))


@endpoint(bp, Endpoint("subscription_pause", SUBSCRIPTION + "/pause", ["POST"],
                       "Pause from the renewal date until a restart date (manual 6.6)", "Customer service",
                       body=PauseIn, roles=SUPPORT))
def pause(call: Call) -> Any:
    b: PauseIn = call.body
    return cs.summary_of(cs.pause(call.ctx, call.tenant, call.number("subscriber_no"), call.route["subscription_id"],
                                  b.restart_on, b.plan_id))


@endpoint(bp, Endpoint("invoice_credit_note", INVOICE + "/credit-note", ["POST"],
                       "Credit a whole invoice (manual 7.15)", "Customer service", body=ReasonIn, roles=SUPPORT,
                       status=201))
def credit_note(call: Call) -> Any:
    b: ReasonIn = call.body
    return cs.summary_of(cs.credit_invoice(call.ctx, call.tenant, call.number("subscriber_no"),
                                           call.number("invoice_number"), b.reason))


@endpoint(bp, Endpoint("invoice_postpone_reminder", INVOICE + "/postpone-reminder", ["POST"],
                       "Postpone the invoice's next reminder (manual 7.9)", "Customer service", body=PostponeIn,
                       roles=SUPPORT))
def postpone(call: Call) -> Any:
    b: PostponeIn = call.body
    return cs.summary_of(cs.postpone_reminder(call.ctx, call.tenant, call.number("subscriber_no"),
                                              call.number("invoice_number"), b.to, b.reason))


@endpoint(bp, Endpoint("correction_add", SUBSCRIBER + "/corrections", ["POST"],
                       "A credit or debit for the next invoice (manual 7.5)", "Customer service", body=CorrectionIn,
                       roles=SUPPORT, status=201))
def add_correction(call: Call) -> Any:
    b: CorrectionIn = call.body
    ident = b.id or call.request.headers.get("idempotency-key") or uuid.uuid4().hex  # checked by dispatch
    return cs.summary_of(cs.add_correction(call.ctx, call.tenant, call.number("subscriber_no"), b.organization_id,
                                           b.amount_minor, b.text, ident)) | {"id": ident}


@endpoint(bp, Endpoint("correction_delete", SUBSCRIBER + "/corrections/{correction_id}", ["DELETE"],
                       "Delete a correction not yet invoiced (manual 7.5)", "Customer service", roles=SUPPORT,
                       status=204))
def delete_correction(call: Call) -> Any:
    cs.delete_correction(call.ctx, call.tenant, call.number("subscriber_no"), call.route["correction_id"])
    return func.HttpResponse(status_code=204)


@endpoint(bp, Endpoint("subscriber_write_off", SUBSCRIBER + "/write-off", ["POST"],
                       "Write off what the subscriber owes the organisation", "Customer service", body=WriteOffIn,
                       roles=ADMIN))
def write_off(call: Call) -> Any:
    b: WriteOffIn = call.body
    return cs.summary_of(cs.write_off(call.ctx, call.tenant, call.number("subscriber_no"), b.organization_id,
                                      b.reason))


@endpoint(bp, Endpoint("bulk_write_off", "merchant/write-offs", ["POST"],
                       "Write off balances and overdue demands of stopped subscriptions (manual 7.6)",
                       "Customer service", body=BulkWriteOffIn, roles=ADMIN))
def bulk_write_off(call: Call) -> Any:
    b: BulkWriteOffIn = call.body
    if b.due_to < b.due_from:
        raise ValueError("due_to is before due_from")
    done = cs.bulk_write_off(call.ctx, call.tenant, b.organization_id, b.reason, b.due_from, b.due_to)
    return {"subscribers": done.subscribers, "amount_minor": done.amount_minor,
            "failed": [{"subscriber_no": n, "reason": r} for n, r in sorted(done.failed.items())]}


@endpoint(bp, Endpoint("additional_invoice", SUBSCRIBER + "/additional-invoices", ["POST"],
                       "Issue an invoice of products or free lines at once (manual 7.10)", "Customer service",
                       body=AdditionalInvoiceIn, roles=SUPPORT, status=201))
def additional_invoice(call: Call) -> Any:
    b: AdditionalInvoiceIn = call.body
    specs = [cs.LineSpec(li.text, li.amount_minor, li.vat_rate_bp, li.product_id, li.quantity, li.frequency)
             for li in b.lines]
    return cs.summary_of(cs.additional_invoice(call.ctx, call.tenant, call.number("subscriber_no"),
                                               b.organization_id, specs, b.ref, b.due_days))


@endpoint(bp, Endpoint("subscription_delivery", SUBSCRIPTION + "/delivery", ["PATCH"],
                       "How the subscription's documents go: its channel and the buyer's reference (manual 16); "
                       "422 for a channel the subscriber cannot receive", "Customer service", body=DeliveryIn,
                       roles=SUPPORT))
def set_delivery(call: Call) -> Any:
    b: DeliveryIn = call.body
    settings = {name: getattr(b, name) for name in cs.DELIVERY_FIELDS if name in b.model_fields_set}
    return cs.summary_of(cs.set_delivery(call.ctx, call.tenant, call.number("subscriber_no"),
                                         call.route["subscription_id"], settings))


@endpoint(bp, Endpoint("order_block_set", SUBSCRIBER + "/order-blocks/{organization_id}", ["PUT"],
                       "Block new orders from the subscriber (manual 6.9)", "Customer service", body=OrderBlockIn,
                       roles=SUPPORT))
def set_order_block(call: Call) -> Any:
    b: OrderBlockIn = call.body
    cs.set_order_block(call.ctx, call.tenant, call.number("subscriber_no"), call.route["organization_id"], b.reason)
    return {"blocked": True}


@endpoint(bp, Endpoint("order_block_delete", SUBSCRIBER + "/order-blocks/{organization_id}", ["DELETE"],
                       "Remove a manual order blockage", "Customer service", roles=SUPPORT, status=204))
def delete_order_block(call: Call) -> Any:
    cs.set_order_block(call.ctx, call.tenant, call.number("subscriber_no"), call.route["organization_id"], None)
    return func.HttpResponse(status_code=204)


class AttentionOut(BaseModel):
    operation: str = Field(description="invoice run, dunning visit or notice")
    run: str = Field(description="invoice, dunning or notice: the path segment to dismiss it")
    subscriber_no: int | None = Field(description="null: the tenant's whole run could not be planned")
    ref: str | None = Field(description="the notice's event id, for a notice")
    first_day: date
    day: date = Field(description="the last day it failed")
    count: int = Field(description="how many times it failed")
    reason: str = Field(description="the error's type and message")


@endpoint(bp, Endpoint("attention_list", "merchant/attention", ["GET"],
                       "Subscribers (or runs) the invoice run, dunning run, a notice or the print batch could not "
                       "handle; each run retries them and removes them when they go through", "Customer service",
                       response=list[AttentionOut], roles=READ))
def attention_list(call: Call) -> Any:
    return isolation.needs_attention(call.ctx, call.tenant)


@endpoint(bp, Endpoint("attention_dismiss", "merchant/attention/{run}/{subscriber_no}", ["DELETE"],
                       "Mark one as handled (a notice sent by hand, a subscriber dealt with)", "Customer service",
                       roles=SUPPORT, status=204, params={"ref": "the notice's event id, for a notice"},
                       types={"subscriber_no": NUMBER_OR_ZERO,
                              "run": Literal["invoice", "dunning", "notice", "print"]}))
def attention_dismiss(call: Call) -> Any:
    if not isolation.dismiss(call.ctx, call.tenant, call.route["run"], call.number("subscriber_no"),
                             call.query.get("ref", "")):
        raise NotFound(f"nothing needs attention for {call.route['run']} of subscriber {call.route['subscriber_no']}")
    return func.HttpResponse(status_code=204)
