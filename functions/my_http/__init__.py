"""HTTP: My page's subscriber API (M1, S8, S10), ``/api/my/{tenant}/...``.

Every endpoint is a subscriber endpoint (``Endpoint(subscriber=True)``): the caller is a
login of the tenant's identity provider (bearer token) or My page's session, and each
acts only on subscribers that login is linked to (``self_service.authorize``): any other
subscriber, subscription or document is 404, as one that does not exist.

Reads: the subscribers the login acts for, their subscriptions, their documents and a
document's PDF. Changes: payment (invoice by e-mail or EHF, AvtaleGiro, Vipps or card),
stop, restart and pause; each one transaction, each harmless when repeated.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import azure.functions as func
from pydantic import BaseModel, Field

from functions.http import Call, Endpoint, binary, endpoint
from functions.validation import Body, Code, Day, Number
from shared.service import self_service
from shared.service import self_service_changes as changes

bp = func.Blueprint()
TAG = "My page"
SUBSCRIBERS = "my/{tenant}/subscribers"
SUBSCRIBER = SUBSCRIBERS + "/{subscriber_no}"
SUBSCRIPTION = SUBSCRIBER + "/subscriptions/{subscription_id}"
NOT_YOURS = {404: "No such subscriber, subscription or document of this login (also when it is another's)"}
REFUSED = NOT_YOURS | {422: "Not allowed for this subscription (the plan's policy, a stop code, a date), with why"}


class SubscriberOut(BaseModel):
    number: int
    name: str
    role: str = Field(description="holder (acts for the subscriber) or admin (of a group subscription only)")


class SubscribersOut(BaseModel):
    subscribers: list[SubscriberOut]


class PeriodOut(BaseModel):
    start: date
    end: date = Field(description="the period's last day")


class PriceOut(BaseModel):
    amount_minor: int = Field(description="a period's price, VAT included, in minor units")
    currency: str
    frequency: str


class NextInvoiceOut(BaseModel):
    date: date
    amount_minor: int
    currency: str


class AgreementOut(BaseModel):
    provider: str = Field(description="vipps, swedbankpay (card) or avtalegiro")
    status: str = Field(description="pending, active, stopped, expired, rejected (AvtaleGiro: active, deleted)")


class PaymentOut(BaseModel):
    type: str = Field(description="invoice, vipps, card, avtalegiro, efaktura or ehf")
    agreement: AgreementOut | None


class GroupOut(BaseModel):
    seats: int
    used: int = Field(description="members linked and invitations open")


class SubscriptionOut(BaseModel):
    id: str
    plan_id: str
    plan_name: str
    status: Literal["active", "future", "ended"]
    start: date
    stop_date: date | None = Field(description="the first day without the subscription")
    stop_kind: str | None = Field(description="customer, payment, pause or automatic")
    current_period: PeriodOut | None
    price: PriceOut | None
    next_invoice: NextInvoiceOut | None
    payment: PaymentOut
    stop_policy: str = Field(description="end_of_period, optional (a chosen day in the period) or none")
    stop_codes: list[str] = Field(description="the stop codes My page offers; one is required when not empty")
    can_stop: bool
    can_restart: bool
    can_pause: bool
    group: GroupOut | None


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


class DocumentOut(BaseModel):
    kind: Literal["invoice", "credit_note", "reminder"]
    number: int = Field(description="the invoice or credit note number (a reminder: its invoice's)")
    demand_no: int | None
    issued: date
    due: date | None
    amount_minor: int = Field(description="what it asks for (a credit note: negative)")
    open_minor: int = Field(description="what is still to pay")
    currency: str
    status: Literal["open", "paid", "reminded", "credited"]
    kid: str | None
    account: str | None = Field(description="the bank account to pay to")
    pdf: str = Field(description="the path of its PDF")


class DocumentsOut(BaseModel):
    documents: list[DocumentOut]


class PaymentIn(Body):
    method: Literal["email", "ehf", "avtalegiro", "vipps", "card"] = Field(
        description="invoice by e-mail or EHF, AvtaleGiro (signed in the bank), Vipps or card (a checkout)")


class PaymentChangeOut(BaseModel):
    payment: PaymentOut
    redirect_url: str | None = Field(description="Vipps / card: where the payer approves the agreement")
    instructions: str | None = Field(description="AvtaleGiro: how to sign it in the online bank")


class StopIn(Body):
    on: Day | None = Field(default=None, description="the first day without the subscription (plans with the "
                           "optional stop policy); null: at the end of the ongoing period")
    code: Code | None = Field(default=None, description="one of the subscription's stop_codes")


class RestartIn(Body):
    pass


class PauseIn(Body):
    restart_on: Day


Lang = Annotated[Literal["nb", "en"], Field(description="the language of instructions")]


@endpoint(bp, Endpoint("my_subscribers", SUBSCRIBERS, ["GET"], "The subscribers this login acts for", TAG,
                       response=SubscribersOut, subscriber=True))
def list_subscribers(call: Call) -> Any:
    return {"subscribers": self_service.subscribers(call.ctx, call.me)}


@endpoint(bp, Endpoint("my_subscriptions", SUBSCRIBER + "/subscriptions", ["GET"],
                       "A subscriber's subscriptions: periods, price, next invoice, payment, what may be done",
                       TAG, response=SubscriptionsOut, subscriber=True, statuses=NOT_YOURS))
def list_subscriptions(call: Call) -> Any:
    return {"subscriptions": self_service.subscriptions(call.ctx, call.me, call.number("subscriber_no"))}


@endpoint(bp, Endpoint("my_invoices", SUBSCRIBER + "/invoices", ["GET"],
                       "A subscriber's invoices, credit notes and reminders with status, KID and what is open",
                       TAG, response=DocumentsOut, subscriber=True, statuses=NOT_YOURS))
def list_invoices(call: Call) -> Any:
    return {"documents": self_service.documents(call.ctx, call.me, call.number("subscriber_no"))}


@endpoint(bp, Endpoint("my_invoice_pdf", SUBSCRIBER + "/invoices/{invoice_number}/pdf", ["GET"],
                       "An invoice's or credit note's PDF (with ?reminder=, its reminder's)", TAG,
                       subscriber=True, media="application/pdf", statuses=NOT_YOURS,
                       params={"reminder": "the demand number of one of the invoice's reminders"},
                       types={"reminder": Number}))
def invoice_pdf(call: Call) -> Any:
    reminder = call.query.get("reminder")
    data, name = self_service.pdf(call.ctx, call.me, call.number("subscriber_no"), call.number("invoice_number"),
                                  int(reminder) if reminder is not None else None)
    return binary(data, "application/pdf", name)


@endpoint(bp, Endpoint("my_payment", SUBSCRIPTION + "/payment", ["PUT"],
                       "Change how a subscription is paid: invoice by e-mail or EHF, AvtaleGiro, Vipps or card",
                       TAG, body=PaymentIn, response=PaymentChangeOut, subscriber=True, statuses=REFUSED,
                       params={"lang": "nb or en: the language of the instructions"}, types={"lang": Lang}))
def change_payment(call: Call) -> Any:
    b: PaymentIn = call.body
    done = changes.change_payment(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"],
                                  b.method, call.query.get("lang", "nb"))
    return done.json()


@endpoint(bp, Endpoint("my_stop", SUBSCRIPTION + "/stop", ["POST"],
                       "Stop a subscription as its plan allows (manual 6.4, 6.13, 6.14.2)", TAG, body=StopIn,
                       response=SubscriptionOut, subscriber=True, statuses=REFUSED))
def stop(call: Call) -> Any:
    b: StopIn = call.body
    return changes.stop(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"], b.on,
                        b.code)


@endpoint(bp, Endpoint("my_restart", SUBSCRIPTION + "/restart", ["POST"],
                       "Withdraw a stop ahead, or restart a subscription stopped less than 3 months ago on the "
                       "same terms; answers the running subscription", TAG, body=RestartIn,
                       response=SubscriptionOut, subscriber=True, statuses=REFUSED))
def restart(call: Call) -> Any:
    return changes.restart(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"])


@endpoint(bp, Endpoint("my_pause", SUBSCRIPTION + "/pause", ["POST"],
                       "Pause a subscription from the end of its period until a restart date, where the plan "
                       "allows it (manual 6.6)", TAG, body=PauseIn, response=SubscriptionOut, subscriber=True,
                       statuses=REFUSED))
def pause(call: Call) -> Any:
    b: PauseIn = call.body
    return changes.pause(call.ctx, call.me, call.number("subscriber_no"), call.route["subscription_id"],
                         b.restart_on)


from . import group, personal  # noqa: E402,F401  (mydata: personal data and group endpoints register on bp)
