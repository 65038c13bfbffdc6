"""Service Bus queue ``provider-events``: news from the payment providers, handed to the use
case that re-reads the resource at the provider and applies what it reads.

The HTTP functions that queued it checked who sent it (``vipps_webhook``,
``swedbankpay_callback``); the message names what to re-read:

* Vipps, naming a charge -> ``charges.reconcile_vipps_charge`` (which reconciles a
  still-pending agreement first, for an initial charge);
* Vipps, naming only an agreement -> ``checkout.reconcile_vipps_agreement``;
* Swedbank Pay -> ``checkout.reconcile_card_order`` (GETs the payment order).

The message is only a signal, so a duplicate, a replay or events out of order end in the
same state. A passing failure (the provider or storage unreachable, a lost race) raises:
the bus delivers the message again, and after its max delivery count dead-letters it (the
polling timer still reconciles what it named). A permanent one (the provider refused, the
agreement or charge is not ours, a malformed message) is logged and recorded as needing
attention, and the message completes: one bad message never holds up the queue.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import bootstrap
from shared.adapters.bus import PROVIDER_EVENTS, decode
from shared.domain.agreements import Provider, subscriber_of
from shared.ports import TENANT_RUN, BusMessage, transient
from shared.service import charges, checkout
from shared.service.context import Context
from shared.service.isolation import reason

bp = func.Blueprint()
log = logging.getLogger(__name__)
RUN = checkout.RUN  # the attention rows of payment agreements: customer service's list

ProviderId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")]


class ProviderEvent(BaseModel):
    """What the HTTP functions queue: which resource to re-read, of which tenant."""

    model_config = ConfigDict(extra="ignore")

    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    provider: Provider
    event_type: Annotated[str, Field(max_length=100)] | None = None
    agreement_id: ProviderId | None = None
    charge_id: ProviderId | None = None
    payment_order_id: ProviderId | None = None


def handle(body: bytes | str) -> str:
    """Reconcile what the message names; returns what was done (for the log and tests)."""
    message = decode(body)
    try:
        event = ProviderEvent.model_validate(message.body)
    except ValidationError as exc:  # nothing to retry: it will never read otherwise
        log.error("provider event %s is malformed (%d errors); dropped", message.id, exc.error_count())
        return "malformed"
    ctx = bootstrap.context()
    try:
        return reconcile(ctx, event)
    except Exception as exc:
        if transient(exc):
            raise  # the bus tries again
        _attention(ctx, message, event, exc)
        return "attention"


def reconcile(ctx: Context, event: ProviderEvent) -> str:
    if event.provider is Provider.VIPPS and event.charge_id:
        if not event.agreement_id:
            raise ValueError(f"a Vipps charge event without its agreement ({event.charge_id})")
        charges.reconcile_vipps_charge(ctx, event.tenant, event.agreement_id, event.charge_id)
        return "charge"
    if event.provider is Provider.VIPPS and event.agreement_id:
        checkout.reconcile_vipps_agreement(ctx, event.tenant, event.agreement_id)
        return "agreement"
    if event.provider is Provider.SWEDBANKPAY and event.payment_order_id:
        checkout.reconcile_card_order(ctx, event.tenant, event.payment_order_id)
        return "card order"
    raise ValueError(f"a {event.provider.value} event naming nothing to reconcile")


def _attention(ctx: Context, message: BusMessage, event: ProviderEvent, exc: Exception) -> None:
    """A permanent failure: logged, and on customer service's list (by subscriber where our id
    names one, else for the tenant), with what the message named as its reference."""
    named = event.charge_id or event.agreement_id or event.payment_order_id or message.id
    subscriber = subscriber_of(event.charge_id or "") or TENANT_RUN
    log.error("provider event %s (%s %s) of %s failed for good: %s", message.id, event.provider.value,
              event.event_type or "", event.tenant, reason(exc))
    ctx.attention.record(event.tenant, RUN, subscriber, ctx.clock.now().date(), reason(exc),
                         ref=re.sub(r"[^A-Za-z0-9._-]", "_", named.rsplit("/", 1)[-1])[:100])


@bp.function_name("provider_worker")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=PROVIDER_EVENTS, connection="ServiceBusConnection")
def provider_worker(msg: func.ServiceBusMessage) -> None:
    handle(msg.get_body())
