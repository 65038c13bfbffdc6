"""Service Bus queue ``access``: ``AccessChanged`` events, sent by the outbox of every
transaction on a subscriber with logins or IP ranges (``service.access.marked``).

The trigger takes messages in batches; the worker merges them per subscriber (the logins
linked before or after each change, and whether it has or had IP ranges) and rebuilds
each subscriber's rows once (``access.refresh``), from the accounts as they are now, so a
batch with ten changes of one subscriber costs one rebuild, and a message delivered again
rebuilds the same rows. One subscriber never holds up another: each is tried; a failure
that may pass (storage away, rows that kept changing) is raised once all were tried, so
the bus delivers the batch again; anything else is logged and the message dropped (the
next change of the subscriber rebuilds its rows anyway). A catalogue change that changes what
grants are made of (``access.catalogue_changed``: a plan's products, a grace period) sends one
message that rebuilds every row of the tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

import azure.functions as func

from shared import bootstrap
from shared.adapters.bus import ACCESS, decode, event_of
from shared.domain.events import AccessChanged
from shared.service import access
from shared.service.isolation import each_job, reason

bp = func.Blueprint()
log = logging.getLogger(__name__)


def merged(bodies: Sequence[bytes | str]) -> tuple[dict[tuple[str, int], tuple[set[str], bool]], set[str]]:
    """(tenant, subscriber) -> (logins, sites) of the readable ``AccessChanged`` messages, and the
    tenants whose catalogue changed (every row rebuilt)."""
    work: dict[tuple[str, int], tuple[set[str], bool]] = {}
    tenants: set[str] = set()
    for body in bodies:
        try:
            message = decode(body)
            if message.body.get("type") == access.TENANT_REFRESH:
                tenants.add(str(message.body["tenant"]))
                continue
            event = event_of(message)
            tenant = str(message.body["tenant"])
        except Exception as exc:  # unreadable: it never reads otherwise, so it is not retried
            log.error("access: a message could not be read (%s); dropped", reason(exc))
            continue
        if not isinstance(event, AccessChanged):
            log.error("access: message %s is a %s, not AccessChanged; dropped", message.id, event.type)
            continue
        logins, sites = work.get((tenant, event.subscriber_no), (set(), False))
        work[(tenant, event.subscriber_no)] = (logins | set(event.logins), sites or event.sites)
    return work, tenants


def handle(bodies: Sequence[bytes | str]) -> int:
    """Rebuild the access rows the messages name; returns the subscribers (and tenants) done."""
    ctx = bootstrap.context()
    work, tenants = merged(bodies)
    jobs: list[tuple[str, Callable[[], object]]] = [
        (f"{tenant}/all", partial(access.refresh_tenant, ctx, tenant)) for tenant in sorted(tenants)]
    jobs += [(f"{tenant}/{n}", partial(access.refresh, ctx, tenant, n, logins, sites))
             for (tenant, n), (logins, sites) in work.items()]  # a login linked first has no row the tenant's finds
    return len(each_job(jobs, "access rows"))


@bp.function_name("access_worker")
@bp.service_bus_queue_trigger(arg_name="msgs", queue_name=ACCESS, connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def access_worker(msgs: list[func.ServiceBusMessage]) -> None:
    handle([m.get_body() for m in msgs])
