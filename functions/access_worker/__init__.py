"""Service Bus queue ``access``: ``AccessChanged`` events, sent by the outbox of every
transaction on a subscriber with logins or IP ranges (``service.access.marked``).

The trigger takes messages in batches; the worker merges them per subscriber (the logins
linked before or after each change, and whether it has or had IP ranges) and rebuilds
each subscriber's rows once (``access.refresh``), from the accounts as they are now, so a
batch with ten changes of one subscriber costs one rebuild, and a message delivered again
rebuilds the same rows. One subscriber never holds up another: each is tried; a failure
that may pass (storage away, rows that kept changing) is raised once all were tried, so
the bus delivers the batch again; anything else is logged and the message dropped (the
next change of the subscriber rebuilds its rows anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import azure.functions as func

from shared import bootstrap
from shared.adapters.bus import ACCESS, decode, event_of
from shared.domain.events import AccessChanged
from shared.ports import transient
from shared.service import access
from shared.service.isolation import reason

bp = func.Blueprint()
log = logging.getLogger(__name__)


def merged(bodies: Sequence[bytes | str]) -> dict[tuple[str, int], tuple[set[str], bool]]:
    """(tenant, subscriber) -> (logins, sites) of the readable ``AccessChanged`` messages."""
    work: dict[tuple[str, int], tuple[set[str], bool]] = {}
    for body in bodies:
        try:
            message = decode(body)
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
    return work


def handle(bodies: Sequence[bytes | str]) -> int:
    """Rebuild the access rows the messages name; returns the subscribers done."""
    ctx = bootstrap.context()
    passing: list[Exception] = []
    done = 0
    for (tenant, subscriber_no), (logins, sites) in merged(bodies).items():
        try:
            access.refresh(ctx, tenant, subscriber_no, logins, sites)
            done += 1
        except Exception as exc:
            if transient(exc):
                log.warning("access rows of %s/%s: %s; the batch comes again", tenant, subscriber_no, reason(exc))
                passing.append(exc)
                continue
            log.error("access rows of %s/%s not rebuilt: %s", tenant, subscriber_no, reason(exc))
    if passing:
        raise passing[0]
    return done


@bp.function_name("access_worker")
@bp.service_bus_queue_trigger(arg_name="msgs", queue_name=ACCESS, connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
def access_worker(msgs: list[func.ServiceBusMessage]) -> None:
    handle([m.get_body() for m in msgs])
