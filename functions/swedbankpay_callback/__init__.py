"""HTTP: Swedbank Pay callbacks (``POST /api/swedbankpay/{tenant}/callback``; P6).

Swedbank Pay calls the ``callbackUrl`` of a payment order when something happened to it
(the payer completed or aborted the payment page). The callback is unsigned, so its
body is never trusted: the function takes only the payment order's id (its shape
checked: ``/psp/paymentorders/{id}``) and queues ``{tenant, provider, payment_order_id}``
on ``provider-events``; the provider worker GETs the payment order from Swedbank Pay and
acts on what it reads (``checkout.reconcile_card_order``). A forged callback costs one
re-read and changes nothing. The message id is the payment order and the callback's
number (of its latest transaction), so Service Bus drops a repeated callback, not a later one.
Answered 200 after the send succeeded, 503 otherwise (Swedbank Pay calls again).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from functions.http import Call, Endpoint, endpoint, queue_signal
from shared.adapters.bus import PROVIDER_EVENTS
from shared.domain.agreements import Provider
from shared.ports import BusMessage

bp = func.Blueprint()
log = logging.getLogger(__name__)

PAYMENT_ORDER_ID = r"^/psp/paymentorders/[A-Za-z0-9-]{1,64}$"


Number = Annotated[int, Field(ge=0, le=10**15)]


class Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(max_length=100, pattern=PAYMENT_ORDER_ID)]
    number: Number | None = None


class Transaction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: Number | None = None


class CallbackIn(BaseModel):
    """What we read of the callback (v3.1: ``paymentOrder.id`` and ``.number``; v3.0 has the
    number in ``transaction``): the payment order's id, and the number for the message id
    only. Everything else in it is ignored."""

    model_config = ConfigDict(extra="ignore")

    paymentOrder: Ref
    transaction: Transaction | None = None


class Received(BaseModel):
    status: str = Field(description="queued")


@endpoint(bp, Endpoint("swedbankpay_callback", "swedbankpay/{tenant}/callback", ["POST"],
                       "Swedbank Pay callback: the payment order is re-read from Swedbank Pay", "Providers",
                       body=CallbackIn, response=Received,
                       statuses={503: "Could not be queued: Swedbank Pay calls again"}))
def callback(call: Call) -> Any:
    tenant: str = call.route["tenant"]
    body: CallbackIn = call.body
    order_id = body.paymentOrder.id
    number = body.paymentOrder.number if body.paymentOrder.number is not None else (
        body.transaction.number if body.transaction and body.transaction.number is not None else "")
    message = BusMessage(f"swedbankpay.{order_id.rsplit('/', 1)[-1]}.{number}",
                         {"tenant": tenant, "provider": Provider.SWEDBANKPAY.value, "payment_order_id": order_id})
    failed = queue_signal(call, PROVIDER_EVENTS, message, "callback")
    if failed is not None:
        return failed
    log.info("swedbank pay callback for %s queued as %s", tenant, message.id)
    return Received(status="queued").model_dump()
