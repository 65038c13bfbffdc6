"""HTTP: a subscriber's documents in the merchant API (L7, D3; manual "invoice preview").

List a subscriber's documents with the channel each goes by and its delivery log;
download one as PDF (rendered from the stored demand, with the organisation's logo) or,
for an invoice or credit note to an organisation, as EHF (UBL 2.1); resend one; preview
a subscription's next invoice as PDF before it is issued; store an organisation's logo.
Bearer token required, as for the rest of the merchant API; another tenant's
subscriber, or a document the subscriber does not have, is 404.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic.networks import validate_email

from functions.http import Call, Endpoint, binary, endpoint
from functions.validation import Body
from shared.adapters.catalogue_store import KINDS
from shared.adapters.codec import to_jsonable
from shared.domain.catalogue import Channel
from shared.service import catalogue as catalogue_service
from shared.service import delivery, documents

from . import READ, WRITE, bp

SUPPORT = ("admin", "support")
PHONE = r"\+?[0-9 ()-]{3,30}"  # as the sales poster takes it
SUBSCRIBER = "merchant/subscribers/{subscriber_no}"
DOCUMENT = SUBSCRIBER + "/documents/{document_id}"
PDF = "application/pdf"
XML = "application/xml"


class DeliveryOut(BaseModel):
    channel: str = Field(description="email, ehf, print or sms")
    attempt: int = Field(description="1 for the first; each resend is the next")
    status: str = Field(description="queued, sent, failed or bounced")
    at: str = Field(description="when the status was set (ISO 8601)")
    recipient: str = Field(description="the address, phone, organisation number or postal code it went to")
    provider_id: str = Field(description="the mail provider's message id, the access point's transmission id")
    reason: str = Field(description="why it failed or bounced")


class DocumentOut(BaseModel):
    id: str
    kind: str = Field(description="invoice, additional, balance, credit_note, reminder, stop_notice")
    number: int = Field(description="the invoice or credit note number (a reminder: its invoice's)")
    issue_date: date
    due_date: date | None
    currency: str
    total_minor: int
    amount_due_minor: int
    kid: str | None
    invoice_number: int | None = Field(description="the invoice a credit note or reminder refers to")
    organization_id: str
    subscription_id: str | None
    channel: str | None = Field(description="the channel it went by (its first delivery's), else the one it goes by")
    deliveries: list[DeliveryOut] = Field(description="the delivery log, oldest first")


@endpoint(bp, Endpoint("documents_list", SUBSCRIBER + "/documents", ["GET"],
                       "The subscriber's documents (invoices, credit notes, reminders, stop notices) with their "
                       "delivery log",
                       "Documents", response=list[DocumentOut], roles=READ))
def list_documents(call: Call) -> Any:
    return documents.listing(call.ctx, call.tenant, call.number("subscriber_no"))


class ResendIn(Body):
    channel: Channel | None = Field(default=None, description="email, ehf, print or sms; omitted: the channel the "
                                    "document goes by now")
    to: str | None = Field(default=None, max_length=254, description="another e-mail address (channel email) or "
                           "phone number (channel sms); omitted: the subscriber's")

    @field_validator("to")
    @classmethod
    def fits_the_channel(cls, to: str | None, info: ValidationInfo) -> str | None:
        channel = info.data.get("channel")
        if to is None:
            return to
        if channel is Channel.EMAIL:
            return validate_email(to)[1]
        if channel is Channel.SMS:
            if not re.fullmatch(PHONE, to):
                raise ValueError("not a phone number (digits, spaces, ( ) -, an optional leading +)")
            return to
        raise ValueError("an e-mail address or phone number: give channel email or sms with it")


@endpoint(bp, Endpoint("document_resend", DOCUMENT + "/resend", ["POST"],
                       "Deliver the document again, as a new attempt in its delivery log, by another channel or "
                       "to another address if given; a mail refused for good goes to print, as a first delivery "
                       "does. Answers the new attempt's delivery", "Documents", body=ResendIn,
                       response=DeliveryOut, roles=SUPPORT,
                       statuses={409: "Being delivered by another request, or EHF asked for a document that has "
                                      "none"}))
def resend(call: Call) -> Any:
    b: ResendIn = call.body
    done = delivery.resend(call.ctx, call.tenant, call.number("subscriber_no"), call.route["document_id"],
                           b.channel, b.to)
    return documents.delivery_json(done)


@endpoint(bp, Endpoint("document_pdf", DOCUMENT + "/pdf", ["GET"],
                       "The document as PDF, rendered from the stored demand", "Documents", roles=READ, media=PDF))
def document_pdf(call: Call) -> Any:
    data = documents.pdf(call.ctx, call.tenant, call.number("subscriber_no"),
                         call.route["document_id"])
    return binary(data, PDF, f"{call.route['document_id']}.pdf")


@endpoint(bp, Endpoint("document_ehf", DOCUMENT + "/ehf", ["GET"],
                       "The invoice or credit note as EHF (PEPPOL BIS Billing 3.0, UBL 2.1, its PDF inside); "
                       "409 for a document that has no EHF form (a reminder, or to a person)", "Documents",
                       roles=READ, media=XML, statuses={409: "The document has no EHF form, with the reason"}))
def document_ehf(call: Call) -> Any:
    data = documents.ehf(call.ctx, call.tenant, call.number("subscriber_no"),
                         call.route["document_id"])
    return binary(data, XML, f"{call.route['document_id']}.xml")


@endpoint(bp, Endpoint("subscription_preview", SUBSCRIBER + "/subscriptions/{subscription_id}/preview", ["GET"],
                       "The subscription's next invoice as PDF, before it is issued (no number or KID yet)",
                       "Documents", roles=READ, media=PDF))
def preview(call: Call) -> Any:
    data = documents.preview_pdf(call.ctx, call.tenant, call.number("subscriber_no"),
                                 call.route["subscription_id"])
    return binary(data, PDF, f"preview-{call.route['subscription_id']}.pdf")


@endpoint(bp, Endpoint("organization_logo", "merchant/catalogue/organizations/{id}/logo", ["PUT"],
                       "Store the organisation's logo (PNG or JPEG, at most 512 KiB) and name it in its branding",
                       "Catalogue", response=KINDS["organization"], roles=WRITE,
                       accepts=tuple(catalogue_service.LOGO_KINDS), max_body=catalogue_service.LOGO_MAX))
def put_logo(call: Call) -> Any:
    media = (call.request.headers.get("content-type") or "").split(";")[0].strip().lower()
    org = catalogue_service.put_logo(call.ctx, call.tenant, call.route["id"], call.body, media)
    return to_jsonable(org)
