"""HTTP: a subscriber's payment agreements and provider charges in the merchant API (P6).

* ``GET /api/merchant/subscribers/{subscriber_no}/agreements``: the subscriber's Vipps and
  card agreements (status, who stopped one and when it stops, the card's mask and expiry;
  never the card token, never the pending order's personal data) and the charges not yet
  settled (a settled charge is a payment on the ledger, ``vipps.{charge id}``).
* ``POST /api/merchant/subscribers/{subscriber_no}/charges/{charge_id}/refunds``: refund
  (part of) a captured charge at the provider (Vipps refund, Swedbank Pay reversal), at
  most what was captured. ``refund_id`` (or the ``Idempotency-Key`` header) is the
  provider call's idempotency key: the same refund sent again refunds nothing more. The
  refund is booked on the ledger when the provider confirms it (the re-read shows the
  refunded amount), which may be at once or on a later poll.

Bearer token required; another tenant's subscriber, or a charge that is not theirs, is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint, json_response, problem
from functions.validation import Body, PositiveMinor, Ref
from shared.adapters.codec import to_jsonable
from shared.domain.agreements import PaymentAgreement
from shared.ports import NotFound, ProviderRefused, ProviderUnavailable
from shared.service import charges

from . import READ, bp

REFUND = ("admin",)
SUBSCRIBER = "merchant/subscribers/{subscriber_no}"
ChargeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,40}$"), Field(
    description="our charge id (c{subscriber}-{demand}-{attempt}, i{subscriber}-{subscription})")]
HIDDEN = ("token", "order")  # the card token is never shown; the pending order is the payer's data


class RefundIn(Body):
    amount_minor: PositiveMinor
    refund_id: Ref | None = Field(default=None, description="idempotency key of the refund (or the "
                                  "Idempotency-Key header): the same refund twice refunds once")


class RefundOut(BaseModel):
    refund_id: str
    charge_id: str
    amount_minor: int
    status: Literal["booked", "already_booked", "pending"]
    refunded_minor: int = Field(description="of the charge, booked on the ledger after this call")


def agreement_json(agreement: PaymentAgreement) -> dict[str, Any]:
    data = to_jsonable(agreement)
    return {k: v for k, v in data.items() if k not in HIDDEN} | {"pending_order": agreement.order is not None}


@endpoint(bp, Endpoint("subscriber_agreements", SUBSCRIBER + "/agreements", ["GET"],
                       "A subscriber's payment agreements (Vipps, card) and charges not yet settled", "Subscribers",
                       roles=READ))
def agreements(call: Call) -> Any:
    loaded = call.ctx.accounts.load(call.tenant, call.number("subscriber_no"))
    if loaded is None:
        raise NotFound(f"subscriber {call.number('subscriber_no')}")
    account = loaded.account
    return {"agreements": [agreement_json(a) for _, a in sorted(account.agreements.items())],
            "charges": [to_jsonable(c) for _, c in sorted(account.charges.items())]}


@endpoint(bp, Endpoint("charge_refund", SUBSCRIBER + "/charges/{charge_id}/refunds", ["POST"],
                       "Refund (part of) a captured Vipps or card charge at the provider; booked when it confirms",
                       "Payments", body=RefundIn, response=RefundOut, roles=REFUND, status=201,
                       types={"charge_id": ChargeId},
                       statuses={200: "The same refund sent again: nothing more refunded",
                                 202: "Sent to the provider, which does not show it yet: booked when it does (send "
                                      "the same refund again to look)",
                                 503: "The payment provider does not answer: send the same refund again"}))
def refund(call: Call) -> Any:
    body: RefundIn = call.body
    header = call.request.headers.get("idempotency-key")
    if body.refund_id is not None and header is not None and header != body.refund_id:
        raise ValueError("refund_id and the Idempotency-Key header differ; send one, or the same in both")
    refund_id = body.refund_id or header
    if not refund_id:
        raise ValueError("refund_id (or an Idempotency-Key header) is required: it makes a retried refund harmless")
    try:
        result = charges.refund_charge(call.ctx, call.tenant, call.number("subscriber_no"), call.route["charge_id"],
                                       body.amount_minor, refund_id)
    except charges.RefundRefused as exc:
        return problem(422, "Not accepted", str(exc))
    except ProviderRefused as exc:
        return problem(422, "Not accepted", f"the payment provider refused the refund: {exc.detail[:300]}")
    except ProviderUnavailable:  # nothing booked; the same refund id sent again refunds once
        return problem(503, "Unavailable", "the payment provider does not answer; send the same refund again",
                       headers={"Retry-After": "30"})
    out = RefundOut(refund_id=result.refund_id, charge_id=result.charge_id, amount_minor=result.amount_minor,
                    status=result.status, refunded_minor=result.refunded_minor)  # type: ignore[arg-type]
    return json_response(out.model_dump(), {"booked": 201, "pending": 202}.get(result.status, 200))
