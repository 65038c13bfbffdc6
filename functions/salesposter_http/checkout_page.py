"""HTTP: the checkout return page (``GET /api/salesposter/{tenant}/checkout/{agreement_key}``).

Where the payer comes back from Vipps (the agreement's redirect URL) or from Swedbank Pay's
payment page (complete or cancel URL). It shows the truth even before a webhook or
callback arrived: ``checkout.checkout_status`` reconciles a pending checkout with the
provider first. A browser (``Accept: text/html``) gets a small page that reloads itself
while the checkout is pending; anyone else JSON. Public and anonymous like the order
form, so it says only the checkout's status and the subscription it made: no name,
amount, subscriber number or card; and it is rate limited as the order form is.
"""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import BaseModel, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint
from shared.service import checkout

from . import bp
from .guard import public_limits

AgreementKey = Annotated[str, StringConstraints(pattern=r"^a[1-9][0-9]{0,11}-[A-Za-z0-9]{1,26}$", max_length=40),
                         Field(description="the checkout's key, as in the redirect URL")]

TEXTS = {
    "pending": ("Venter på betalingen", "Vi venter på svar fra betalingstjenesten. Siden oppdateres av seg selv."),
    "active": ("Takk for bestillingen!", "Abonnementet ditt er aktivt."),
    "rejected": ("Bestillingen ble avbrutt", "Avtalen ble ikke godkjent, så ingenting er bestilt eller trukket."),
    "expired": ("Bestillingen ble ikke fullført", "Avtalen ble ikke godkjent i tide, så ingenting er bestilt."),
    "stopped": ("Avtalen er stoppet", "Betalingsavtalen er ikke lenger aktiv."),
}


class CheckoutOut(BaseModel):
    status: Literal["pending", "active", "rejected", "expired", "stopped"]
    subscription_id: str | None = Field(default=None, description="the subscription the order made, once active")
    payment_type: str | None = Field(default=None, description="how it is paid once placed: vipps, card, or "
                                     "invoice (the organisation places a refused order with invoice)")


def page(status: str) -> str:
    title, text = TEXTS.get(status, TEXTS["pending"])
    refresh = '<meta http-equiv="refresh" content="5">' if status == "pending" else ""
    return (f'<!doctype html><html lang="nb"><head><meta charset="utf-8">{refresh}'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            f'</head><body><main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>')


def wants_html(req: func.HttpRequest) -> bool:
    accept = (req.headers.get("accept") or "").lower()
    return "text/html" in accept and "application/json" not in accept


@endpoint(bp, Endpoint("salesposter_checkout", "salesposter/{tenant}/checkout/{agreement_key}", ["GET"],
                       "The checkout return page: the status of a Vipps or card order (HTML for a browser)",
                       "Sales poster", response=CheckoutOut, guard=public_limits, types={"agreement_key": AgreementKey},
                       statuses={429: "Too many requests from this client (Retry-After)"}))
def checkout_status(call: Call) -> Any:
    status = checkout.checkout_status(call.ctx, call.route["tenant"], call.route["agreement_key"])
    out = CheckoutOut(status=status.status, subscription_id=status.subscription_id,  # type: ignore[arg-type]
                      payment_type=status.payment_type)
    if wants_html(call.request):
        return func.HttpResponse(page(out.status), status_code=200, mimetype="text/html", charset="utf-8",
                                 headers={"Cache-Control": "no-store"})
    return out.model_dump()
