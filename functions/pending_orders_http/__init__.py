"""HTTP: orders held for customer service (S2; manual 5, 6.9).

An anonymous sales-poster order whose e-mail address is an existing subscriber's is not
attached to that account; it waits here. Confirming places it on that subscriber (the
order blockage is checked then, and its reason shown to customer service); rejecting
drops it. Deciding twice answers 409.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel, Field

from functions.http import Call, Endpoint, endpoint, problem
from shared.service.orders import PENDING, OrderBlocked, confirm_pending, pending_orders, reject_pending

bp = func.Blueprint()
SUPPORT = ("admin", "support")
READ = ("admin", "support", "reader")
BASE = "merchant/pending-orders"


class PendingOrderOut(BaseModel):
    id: str
    subscriber_no: int
    received: str
    state: str
    order: dict[str, Any]


class ConfirmedOut(BaseModel):
    subscriber_no: int
    subscription_id: str
    invoice_numbers: list[int]
    redirect_url: str | None = Field(default=None, description=(
        "a Vipps / card order: where the payer approves it (send it to them); placed, and invoiced, once they do"))


@endpoint(bp, Endpoint("pending_orders_list", BASE, ["GET"],
                       "Orders held because their e-mail is an existing subscriber's", "Orders",
                       response=list[PendingOrderOut], roles=READ,
                       params={"state": "pending (default), confirmed or rejected"}))
def list_pending(call: Call) -> Any:
    state = call.query.get("state", PENDING)
    if state not in ("pending", "confirmed", "rejected"):
        raise ValueError("state must be pending, confirmed or rejected")
    held = pending_orders(call.ctx, call.tenant, state)
    return [PendingOrderOut(id=p.id, subscriber_no=p.subscriber_no, received=p.received, state=p.state,
                            order=p.order).model_dump(mode="json") for p in held]


@endpoint(bp, Endpoint("pending_order_confirm", BASE + "/{id}/confirm", ["POST"],
                       "Confirm a held order: place it on the subscriber whose e-mail it gave", "Orders",
                       response=ConfirmedOut, roles=SUPPORT,
                       statuses={409: "Decided already", 422: "Order blockage, with customer service's reason"}))
def confirm(call: Call) -> Any:
    try:
        placed = confirm_pending(call.ctx, call.tenant, call.route["id"])
    except OrderBlocked as exc:
        return problem(422, "Order blockage", exc.reason)
    return ConfirmedOut(subscriber_no=placed.subscriber_no, subscription_id=placed.subscription_id,
                        invoice_numbers=[i.number for i in placed.invoices],
                        redirect_url=placed.redirect_url).model_dump(mode="json")


@endpoint(bp, Endpoint("pending_order_reject", BASE + "/{id}/reject", ["POST"], "Reject a held order", "Orders",
                       roles=SUPPORT, status=204, statuses={409: "Decided already"}))
def reject(call: Call) -> Any:
    reject_pending(call.ctx, call.tenant, call.route["id"])
    return func.HttpResponse(status_code=204)
