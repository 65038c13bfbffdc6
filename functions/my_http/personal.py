"""HTTP: the subscriber's personal data on My page (M1, S8): the profile, a verified change
of the e-mail address, the GDPR export and erasure. Subscriber endpoints: the caller must
be the subscriber's holder (``personal_data``); anyone else gets 404."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import azure.functions as func
from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints

from functions.http import Call, Endpoint, endpoint
from functions.salesposter_http.guard import CODE_RATE, LINK_RATE, per_login
from functions.validation import PRINTABLE, Body
from shared.service import personal_data

from . import bp

TAG = "My page: personal data"
SUBSCRIBER = "my/{tenant}/subscribers/{subscriber_no}"
CONFIRM_STATUSES = {422: "the code is wrong, used or expired, or the address is another account's",
                    429: "too many codes tried by this login (Retry-After)"}
NOT_CONTROL = r"^[^\x00-\x1f\x7f]*$"


def _printable(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_printable)]
Address = Annotated[str, StringConstraints(pattern=PRINTABLE, max_length=200)]
City = Annotated[str, StringConstraints(pattern=PRINTABLE, max_length=100)]


class ProfileIn(Body):
    """The fields to change; a field left out stays as it is, null removes it."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_CONTROL)] | None = None
    address: Address | None = None
    postal_code: Annotated[str, Field(max_length=20, pattern=r"^[A-Za-z0-9 -]{1,20}$")] | None = None
    city: City | None = None
    phone: Annotated[str, Field(max_length=30, pattern=r"^\+?[0-9 ()-]{3,30}$")] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. NO")] | None = None


class EmailIn(Body):
    email: Email


class CodeIn(Body):
    code: Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]


class ProfileOut(BaseModel):
    number: int
    name: str
    email: str
    phone: str | None
    address: str | None
    postal_code: str | None
    city: str | None
    country: str
    organization_number: str | None
    erased: date | None = Field(description="the day the personal data were erased (pseudonymised), if they were")


class SentOut(BaseModel):
    sent: bool = Field(description="always true: the same answer whoever owns the address")


class ErasedOut(BaseModel):
    subscriber: int
    erased: date
    kept: list[str] = Field(description="what bookkeeping law keeps (bokføringsloven: 5 years)")


def language(req: func.HttpRequest) -> str:
    """nb unless the caller prefers English (Accept-Language)."""
    wanted = (req.headers.get("accept-language") or "").strip().lower()
    return "en" if wanted.startswith("en") else "nb"


@endpoint(bp, Endpoint("my_profile", SUBSCRIBER + "/profile", ["GET"], "The subscriber's name, address and contact "
                       "details", TAG, response=ProfileOut, subscriber=True))
def get_profile(call: Call) -> Any:
    return personal_data.profile(call.ctx, call.me, call.number("subscriber_no"))


@endpoint(bp, Endpoint("my_profile_change", SUBSCRIBER + "/profile", ["PATCH"], "Change name, address, phone or "
                       "country (the e-mail address is changed by a code: profile/email)", TAG, body=ProfileIn,
                       response=ProfileOut, subscriber=True))
def patch_profile(call: Call) -> Any:
    b: ProfileIn = call.body
    fields = {name: getattr(b, name) for name in b.model_fields_set}
    return personal_data.change_profile(call.ctx, call.me, call.number("subscriber_no"), fields)


@endpoint(bp, Endpoint("my_email_change", SUBSCRIBER + "/profile/email", ["POST"], "Ask to change the e-mail "
                       "address: a code is sent to the new address (the same answer whoever owns it)", TAG,
                       body=EmailIn, response=SentOut, status=202,
                       subscriber=True, statuses={429: "too many codes asked for by this login (Retry-After)"}))
def post_email(call: Call) -> Any:
    refused = per_login(call, "ABONNO_LINK_RATE_LIMIT", LINK_RATE, "e-mail change")
    if refused is not None:
        return refused
    b: EmailIn = call.body
    personal_data.request_email_change(call.ctx, call.me, call.number("subscriber_no"), str(b.email),
                                       language(call.request))
    return {"sent": True}


@endpoint(bp, Endpoint("my_email_confirm", SUBSCRIBER + "/profile/email/confirm", ["POST"], "Confirm the new "
                       "e-mail address with the code sent to it", TAG, body=CodeIn,
                       response=ProfileOut, subscriber=True, statuses=CONFIRM_STATUSES))
def confirm_email(call: Call) -> Any:
    refused = per_login(call, "ABONNO_CODE_RATE_LIMIT", CODE_RATE, "code")
    if refused is not None:
        return refused
    b: CodeIn = call.body
    return personal_data.confirm_email_change(call.ctx, call.me, call.number("subscriber_no"), b.code)


@endpoint(bp, Endpoint("my_export", SUBSCRIBER + "/export", ["GET"], "GDPR: all the subscriber's data as JSON "
                       "(profile, subscriptions, documents, ledger, payments, agreements, deliveries, logins)", TAG,
                       subscriber=True))
def get_export(call: Call) -> Any:
    return personal_data.export(call.ctx, call.me, call.number("subscriber_no"))


@endpoint(bp, Endpoint("my_erase", SUBSCRIBER + "/erase", ["POST"], "GDPR: erase the personal data (pseudonymised; "
                       "invoices, credit notes and the ledger are kept 5 years by bokføringsloven)", TAG,
                       response=ErasedOut, subscriber=True,
                       statuses={422: "refused while money is owed or a subscription is active or future: the "
                                      "reasons are given"}))
def post_erase(call: Call) -> Any:
    done = personal_data.erase(call.ctx, call.me, call.number("subscriber_no"))
    return {"subscriber": done.subscriber_no, "erased": done.erased.isoformat(), "kept": list(done.kept)}
