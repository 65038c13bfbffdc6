"""HTTP: orders from the sales poster (S2; manual 5 "New order").

``POST /api/salesposter/{tenant}/orders`` takes JSON or an HTML form post. Field names
follow the sales poster URL where it has them (``templatePackageId`` for the plan,
``PTY`` for the payment type: 1 invoice, 2 Vipps, 9 card, per the manual).

Public and anonymous, so it answers only what the person who posted needs: the order
is accepted and what to pay for it (amount, due date, KID and account of its first
invoice), or it is pending confirmation by customer service (the e-mail address is an
existing subscriber's). Never a subscriber number, another invoice, a balance or why
an order blockage was set. Every field is bounded; the body size and each client's
rate are limited before anything is parsed (``guard``).

Posted with a subscriber's token or My page's session (``buyer``), the order links the
new subscriber it makes to that login, and an order for a subscriber the login is
linked to is placed on it at once instead of waiting for customer service.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, EmailStr, Field, field_validator

from functions.http import Call, Endpoint, endpoint, json_response, problem
from functions.validation import BUYER_REFERENCE_MAX
from shared import bootstrap
from shared.adapters.auth import AuthError
from shared.adapters.subscriber_auth import session_cookie
from shared.domain.catalogue import Channel, PaymentType
from shared.ports import ProviderUnavailable, SubscriberPrincipal
from shared.service.orders import OrderTaken, PlaceOrder, take_order

from .guard import public_limits

bp = func.Blueprint()
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SAFE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


def _printable(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Text = Annotated[str, AfterValidator(_printable)]


class OrderForm(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    plan_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                  validation_alias=AliasChoices("plan_id", "templatePackageId"))]
    payment_type: Annotated[str, Field(max_length=20, validation_alias=AliasChoices("payment_type", "PTY", "pty"),
                                       description="PTY code (1 invoice, 2 Vipps, 9 card) or a payment type name")]
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    email: Annotated[EmailStr, Field(max_length=254), AfterValidator(_printable)]
    phone: Annotated[str | None, Field(max_length=30, pattern=r"^\+?[0-9 ()-]{3,30}$")] = None
    address: Annotated[Text | None, Field(max_length=200)] = None
    postal_code: Annotated[str | None, Field(max_length=20, pattern=r"^[A-Za-z0-9 -]{1,20}$")] = None
    city: Annotated[Text | None, Field(max_length=100)] = None
    organization_number: Annotated[str | None, Field(max_length=20, pattern=r"^[A-Za-z0-9 -]{1,20}$")] = None
    start_date: Annotated[date | None, Field(description="within a year of today")] = None
    copies: Annotated[int, Field(ge=1, le=999)] = 1
    order_ref: Annotated[str | None, Field(max_length=100, pattern=SAFE_ID,
                                           description="idempotency key of the order")] = None
    delivery: Annotated[Channel | None, Field(description="how the documents go: email, ehf (an organisation "
                                              "number needed), print or sms (a phone needed); none: the "
                                              "organisation's default")] = None
    buyer_reference: Annotated[Text, Field(max_length=BUYER_REFERENCE_MAX,
                                           description="your own reference, shown on the invoices")] = ""

    @field_validator("payment_type")
    @classmethod
    def known_payment_type(cls, value: str) -> str:
        return PaymentType.from_pty(value.split(",")[0]).value


class OrderPayment(BaseModel):
    amount_minor: int
    currency: str
    due_date: date
    kid: str
    account: str | None = Field(description="the account to pay to")


Status = Literal["accepted", "pending_confirmation", "awaiting_payment"]


class OrderAnswer(BaseModel):
    status: Status
    payment: OrderPayment | None = Field(
        default=None, description="what to pay for this order: its first invoice (none while pending)")
    redirect_url: str | None = Field(
        default=None, description="awaiting_payment (Vipps, card): where to send the payer to approve the "
        "agreement or pay; they come back to the checkout page")


def answer(taken: OrderTaken) -> dict[str, Any]:
    if taken.redirect_url:  # Vipps or card: nothing is placed until the provider says the payer approved
        return OrderAnswer(status="awaiting_payment", redirect_url=taken.redirect_url).model_dump(
            mode="json", exclude_none=True)
    p = taken.payment
    payment = OrderPayment(amount_minor=p.amount_minor, currency=p.currency, due_date=p.due_date, kid=p.kid,
                           account=p.account) if p else None
    status: Status = "accepted" if taken.accepted else "pending_confirmation"
    return OrderAnswer(status=status, payment=payment).model_dump(mode="json", exclude={"redirect_url"})


def idempotency_key(call: Call, form: OrderForm) -> str | None:
    """The order's reference: ``order_ref`` or the ``Idempotency-Key`` header. Both given and
    different is two identities for one order, refused: taking either would make a retry
    that keeps the other one a second order."""
    header = call.request.headers.get("idempotency-key")
    if header is not None and not re.fullmatch(SAFE_ID, header):  # match's $ lets a trailing newline by
        raise ValueError("Idempotency-Key must be 1-100 letters, digits or . _ : -")
    if form.order_ref is not None and header is not None and header != form.order_ref:
        raise ValueError("order_ref and the Idempotency-Key header differ; send one, or the same in both")
    return form.order_ref or header


@endpoint(bp, Endpoint("salesposter_order", "salesposter/{tenant}/orders", ["POST"],
                       "Place an order from the sales poster (JSON or form post)", "Sales poster",
                       body=OrderForm, response=OrderAnswer, status=201, guard=public_limits,
                       statuses={200: "The same order posted again: the same answer",
                                 202: "Held for customer service: the e-mail is an existing subscriber's",
                                 409: "The order_ref / Idempotency-Key was used for a different order",
                                 413: "Body over 16 KiB", 429: "Too many requests from this client (Retry-After)",
                                 503: "Vipps or card: the payment provider does not answer (Retry-After)"}))
def order(call: Call) -> Any:
    form: OrderForm = call.body
    try:
        taken = _take(call, form)
    except ProviderUnavailable:  # Vipps / Swedbank Pay not answering: the same post again makes one order
        return problem(503, "Unavailable", "the payment provider does not answer; try again shortly",
                       headers={"Retry-After": "30"})
    if not taken.accepted:
        return json_response(answer(taken), 202)  # held for customer service: nothing to pay yet
    return answer(taken) if taken.created else json_response(answer(taken), 200)  # a repeat: 200, not 201


def buyer(call: Call) -> SubscriberPrincipal | None:
    """The subscriber's login the order came with, if any: a bearer token (invalid: 401) or
    My page's session cookie with its X-CSRF-Token (a cookie without it, as a plain form
    post from another site would send it, orders anonymously: nothing is linked)."""
    headers = call.request.headers
    if not headers.get("authorization") and not session_cookie(headers):
        return None
    try:
        return bootstrap.subscriber_authenticator().authenticate(headers, "POST", call.route["tenant"])
    except AuthError:
        if headers.get("authorization"):
            raise
        return None


def _take(call: Call, form: OrderForm) -> OrderTaken:
    return take_order(call.ctx, PlaceOrder(
        tenant=call.route["tenant"], plan_id=form.plan_id, payment_type=PaymentType(form.payment_type),
        name=form.name, email=str(form.email), phone=form.phone, address=form.address,
        postal_code=form.postal_code, city=form.city, organization_number=form.organization_number,
        start_date=form.start_date, copies=form.copies, order_ref=idempotency_key(call, form),
        delivery=form.delivery, buyer_reference=form.buyer_reference), buyer(call))


from . import checkout_page as checkout_page  # noqa: E402  (registers the checkout return page on ``bp``)
