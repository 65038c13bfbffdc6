"""HTTP: orders from the sales poster (S2; manual 5 "New order").

``POST /api/salesposter/{tenant}/orders`` takes JSON or an HTML form post. Field names
follow the sales poster URL where it has them (``templatePackageId`` for the plan,
``PTY`` for the payment type: 1 invoice, 2 Vipps, 9 card, per the manual).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import azure.functions as func
from pydantic import AliasChoices, BaseModel, ConfigDict, EmailStr, Field, field_validator

from functions.http import Call, Endpoint, endpoint, json_response
from shared.domain.catalogue import PaymentType
from shared.service.orders import OrderPlaced, PlaceOrder, place_order

bp = func.Blueprint()


class OrderForm(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    plan_id: Annotated[str, Field(min_length=1, validation_alias=AliasChoices("plan_id", "templatePackageId"))]
    payment_type: Annotated[str, Field(validation_alias=AliasChoices("payment_type", "PTY", "pty"),
                                       description="PTY code (1 invoice, 2 Vipps, 9 card) or a payment type name")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailStr
    phone: Annotated[str | None, Field(max_length=30)] = None
    address: Annotated[str | None, Field(max_length=200)] = None
    postal_code: Annotated[str | None, Field(max_length=20)] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    organization_number: str | None = None
    start_date: date | None = None
    copies: Annotated[int, Field(ge=1, le=1000)] = 1
    order_ref: Annotated[str | None, Field(max_length=100, description="idempotency key of the order")] = None

    @field_validator("payment_type")
    @classmethod
    def known_payment_type(cls, value: str) -> str:
        return PaymentType.from_pty(value.split(",")[0]).value


class OrderInvoice(BaseModel):
    number: int
    kid: str
    total_minor: int
    currency: str
    due_date: date


class OrderResult(BaseModel):
    subscriber_no: int
    subscription_id: str
    created: bool
    invoices: list[OrderInvoice]


def result(placed: OrderPlaced) -> dict[str, Any]:
    invoices = [OrderInvoice(number=i.number, kid=i.kid, total_minor=i.total_minor, currency=i.draft.currency,
                             due_date=i.draft.due_date) for i in placed.invoices]
    return OrderResult(subscriber_no=placed.subscriber_no, subscription_id=placed.subscription_id,
                       created=placed.created, invoices=invoices).model_dump(mode="json")


@endpoint(bp, Endpoint("salesposter_order", "salesposter/{tenant}/orders", ["POST"],
                       "Place an order from the sales poster (JSON or form post)", "Sales poster",
                       body=OrderForm, response=OrderResult, status=201))
def order(call: Call) -> Any:
    form: OrderForm = call.body
    key = form.order_ref or call.request.headers.get("idempotency-key")
    placed = place_order(call.ctx, PlaceOrder(
        tenant=call.route["tenant"], plan_id=form.plan_id, payment_type=PaymentType(form.payment_type),
        name=form.name, email=str(form.email), phone=form.phone, address=form.address,
        postal_code=form.postal_code, city=form.city, organization_number=form.organization_number,
        start_date=form.start_date, copies=form.copies, order_ref=key))
    return result(placed) if placed.created else json_response(result(placed), 200)  # a repeat: 200, not 201
