"""Service Bus queue ``charges``: ``ChargeRequested`` events, sent by the outbox of the
transaction that issued the invoice (or the extra payment request) they charge.

The trigger takes messages in batches (``cardinality=many``); the worker groups them by
tenant and hands each tenant's requests to ``charges.create_requested`` in one call, which
creates them at the provider in bulk (Vipps: the bulk charges endpoint, within its rate
limit) and watches each for its outcome. Every charge id is the provider call's
Idempotency-Key, so a batch delivered again creates nothing twice.

One tenant never holds up another: a permanent failure (the provider refused, the
tenant has no provider credentials) is logged and recorded as needing attention, and the
other tenants' requests go on; a passing failure (the provider or storage unreachable)
is raised once every tenant was tried, so the bus delivers the batch again (the tenants
that went through create nothing the second time). A message that is no ``ChargeRequested``
is logged and dropped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import partial

import azure.functions as func

from shared import bootstrap
from shared.adapters.bus import CHARGES, decode, event_of
from shared.domain.events import ChargeRequested
from shared.ports import TENANT_RUN
from shared.service import charges, checkout
from shared.service.isolation import each_job, reason

bp = func.Blueprint()
log = logging.getLogger(__name__)
RUN = checkout.RUN  # the attention rows of payment agreements: customer service's list


def handle(bodies: Sequence[bytes | str]) -> dict[str, int]:
    """Create the charges the messages request, per tenant; returns requests per tenant handled."""
    by_tenant: dict[str, list[ChargeRequested]] = defaultdict(list)
    for body in bodies:
        try:
            message = decode(body)
            event = event_of(message)
            tenant = str(message.body["tenant"])
        except Exception as exc:  # unreadable: it never reads otherwise, so it is not retried
            log.error("charges: a message could not be read (%s); dropped", reason(exc))
            continue
        if not isinstance(event, ChargeRequested):
            log.error("charges: message %s is a %s, not ChargeRequested; dropped", message.id, event.type)
            continue
        by_tenant[tenant].append(event)
    ctx = bootstrap.context()

    def failed(tenant: str, exc: Exception) -> None:
        ctx.attention.record(tenant, RUN, TENANT_RUN, ctx.clock.now().date(), reason(exc), ref="charges")

    jobs = [(tenant, partial(charges.create_requested, ctx, tenant, requests))
            for tenant, requests in by_tenant.items()]
    return {tenant: len(by_tenant[tenant]) for tenant in each_job(jobs, "charges", failed)}


@bp.function_name("charges_worker")
@bp.service_bus_queue_trigger(arg_name="msgs", queue_name=CHARGES, connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def charges_worker(msgs: list[func.ServiceBusMessage]) -> None:
    handle([m.get_body() for m in msgs])
