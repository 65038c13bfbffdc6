"""HTTP: Vipps MobilePay webhooks (``POST /api/vipps/{tenant}/webhook``; P6).

Vipps posts the Recurring events (``recurring.agreement-activated.v1`` ...
``recurring.charge-creation-failed.v1``) here, signed with the secret of the tenant's
webhook registration. The function does three things and nothing else:

1. **Verifies** the request exactly as Vipps signs it (``adapters.vipps.verify_webhook``):
   the SHA-256 of the RAW body (the bytes as received, never re-serialised), the string
   ``POST\\n{path and query}\\n{x-ms-date};{host};{content hash}`` under HMAC-SHA256,
   compared in constant time, and an ``x-ms-date`` within ``TOLERANCE`` of our clock. The
   path and query are the request URL's as sent (not re-encoded), the host is the Host
   header: what the sender signed, whatever proxy the request passed (Azure's front end
   keeps both). Forged, tampered, stale, signed with another secret, or for a tenant with
   no Vipps registration (not told apart: nothing is revealed): 401 problem+json, nothing
   queued. This is the endpoint's guard, so it comes before anything else is looked at: an
   unsigned request is 401 whatever its size or media type.
2. **Reads** the verified body with a bounded model: it is only a signal naming the
   agreement and the charge. An event type we do not act on is answered 200 and logged.
3. **Queues** one message on ``provider-events`` whose id is the event's identity as Vipps
   guarantees it (its ``eventId``, else event type + agreement + charge + ``occurred``),
   so Service Bus duplicate detection drops a redelivery, and answers 200 only after the
   send succeeded (503 otherwise: Vipps retries). The provider worker re-reads the
   agreement or charge at Vipps and applies what it reads, so a replay that gets through
   (after the detection window, or locally where the queue has none), a duplicate or a
   reordered event ends in the same state.

``COUNTS`` keeps how many webhooks this process received (queued or ignored) and rejected
(401), for the demo's summary.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.parse
from collections import Counter
from datetime import timedelta
from typing import Annotated, Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.http import Call, Endpoint, endpoint, problem, queue_signal
from shared.adapters.auth import is_tenant_id
from shared.adapters.bus import PROVIDER_EVENTS
from shared.adapters.vipps import WebhookRejected, verify_webhook
from shared.domain.agreements import Provider
from shared.ports import BusMessage
from shared.service.context import Context

bp = func.Blueprint()
log = logging.getLogger(__name__)

TOLERANCE = timedelta(minutes=5)  # how far x-ms-date may be from our clock
MAX_BODY = 16 * 1024  # a Recurring event is a few hundred bytes
NEVER_VIPPS = 1024 * 1024  # a body this large is not hashed at all: no event of Vipps' is near it
AGREEMENT_EVENTS = frozenset(f"recurring.agreement-{s}.v1" for s in ("activated", "rejected", "stopped", "expired"))
CHARGE_EVENTS = frozenset(f"recurring.charge-{s}.v1" for s in (
    "reserved", "captured", "canceled", "failed", "creation-failed", "refunded"))
EVENT_TYPES = AGREEMENT_EVENTS | CHARGE_EVENTS

COUNTS: Counter[str] = Counter()  # received (verified; ignored ones too) | ignored | rejected
_counts_lock = threading.Lock()

VippsId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]


class VippsEvent(BaseModel):
    """The fields of a Recurring webhook we read (the rest is ignored: it is re-read at Vipps)."""

    model_config = ConfigDict(extra="ignore")

    eventType: Annotated[str, Field(min_length=1, max_length=100)]
    eventId: VippsId | None = None
    agreementId: VippsId | None = None
    chargeId: VippsId | None = None
    occurred: Annotated[str, Field(max_length=64)] | None = None


class Received(BaseModel):
    status: str = Field(description="queued | ignored")


def _count(what: str) -> None:
    with _counts_lock:
        COUNTS[what] += 1


def path_and_query(req: func.HttpRequest) -> str:
    """The request target as the sender signed it: the URL's path and query, as received."""
    url = urllib.parse.urlsplit(req.url)
    return (url.path or "/") + (f"?{url.query}" if url.query else "")


def message_id(event: VippsEvent) -> str:
    """The event's identity as Vipps guarantees it: its eventId, else what names the event
    (type, agreement, charge, when it occurred), hashed into a bounded id."""
    if event.eventId:
        return f"vipps.{event.eventId}"
    identity = "|".join((event.eventType, event.agreementId or "", event.chargeId or "", event.occurred or ""))
    return "vipps." + hashlib.sha256(identity.encode()).hexdigest()[:48]


def _rejected(tenant: str, why: str) -> func.HttpResponse:
    _count("rejected")
    log.warning("vipps webhook for %s rejected: %s", tenant, why)  # never the body or the headers
    return problem(401, "Unauthorized", "the request is not signed by Vipps for this endpoint")


def signed_by_vipps(req: func.HttpRequest, ctx: Context) -> func.HttpResponse | None:
    """The endpoint's guard, before anything else of the request is looked at (its size, its
    media type): None if Vipps signed it for this tenant's URL, else the 401."""
    tenant = req.route_params.get("tenant", "")
    if not is_tenant_id(tenant):
        return _rejected("?", "not a tenant id")
    try:
        secret = ctx.vipps.webhook_secret(tenant)
    except Exception:  # no registration for the tenant (or none readable): not told apart from a forgery
        return _rejected(tenant, "no webhook secret for the tenant")
    body = req.get_body() or b""
    if len(body) > NEVER_VIPPS:
        return _rejected(tenant, "body far larger than any Vipps event")
    headers = {k.lower(): v for k, v in req.headers.items()}
    try:
        verify_webhook(secret, path_and_query(req), headers, body, now=ctx.clock.now(), tolerance=TOLERANCE)
    except WebhookRejected as exc:
        return _rejected(tenant, str(exc))
    return None


@endpoint(bp, Endpoint("vipps_webhook", "vipps/{tenant}/webhook", ["POST"],
                       "Vipps MobilePay webhook (Recurring events), HMAC-signed", "Providers",
                       response=Received, accepts=("application/json",), max_body=MAX_BODY, guard=signed_by_vipps,
                       statuses={401: "Not signed by Vipps for this tenant: forged, tampered, stale or another "
                                      "secret", 503: "Could not be queued: Vipps sends it again"}))
def webhook(call: Call) -> Any:
    tenant: str = call.route["tenant"]
    try:
        event = VippsEvent.model_validate_json(call.body)
    except ValidationError as exc:
        log.warning("vipps webhook for %s: signed but unreadable (%d errors)", tenant, exc.error_count())
        raise
    if event.eventType not in EVENT_TYPES:
        _count("received")
        _count("ignored")
        log.info("vipps webhook for %s: event type %r ignored", tenant, event.eventType[:100])
        return Received(status="ignored").model_dump()
    message = BusMessage(message_id(event), {
        "tenant": tenant, "provider": Provider.VIPPS.value, "event_type": event.eventType,
        "agreement_id": event.agreementId, "charge_id": event.chargeId if event.eventType in CHARGE_EVENTS else None})
    failed = queue_signal(call, PROVIDER_EVENTS, message, "event")
    if failed is not None:
        return failed
    _count("received")
    log.info("vipps webhook for %s: %s queued as %s", tenant, event.eventType, message.id)
    return Received(status="queued").model_dump()
