"""Service Bus queue ``run-work``: one message is one batch of subscribers to bill
(kind ``invoice``, from the invoice timer) or to dun (kind ``dunning``, from the dunning timer).

Locally the host feeds this function from the Azurite queue of the same name. A
message handled twice issues nothing the second time (``bill_subscribers`` is
idempotent). A subscriber that fails is recorded as needing attention and the rest of
the batch is billed, so the message completes; only a failure to record (storage
unreachable) or a malformed message raises, leaving the message to be retried and,
after the queue's max delivery count, dead-lettered.
"""

from __future__ import annotations

import logging
from datetime import date

import azure.functions as func
from pydantic import BaseModel, Field

from shared import bootstrap
from shared.adapters.bus import RUN_WORK, decode
from shared.service.billing import INVOICE_RUN, BatchResult, bill_subscribers
from shared.service.dunning import DUNNING_RUN, DunningResult, dun_subscribers

bp = func.Blueprint()
log = logging.getLogger(__name__)


class WorkItem(BaseModel):
    kind: str
    tenant: str = Field(min_length=1)
    date: date
    subscribers: list[int] = Field(max_length=500)
    attention: list[int] = Field(default_factory=list, max_length=500,
                                 description="subscribers that failed before: their rows go when they succeed")


def handle(body: bytes) -> BatchResult | DunningResult:
    item = WorkItem.model_validate(decode(body).body)
    result: BatchResult | DunningResult
    if item.kind == INVOICE_RUN:
        result = bill_subscribers(bootstrap.context(), item.tenant, item.date, item.subscribers,
                                  attention=item.attention)
    elif item.kind == DUNNING_RUN:
        result = dun_subscribers(bootstrap.context(), item.tenant, item.date, item.subscribers,
                                 attention=item.attention)
    else:
        raise ValueError(f"unknown work kind {item.kind!r}")
    log.info("%s %s on %s: %s", item.kind, item.tenant, item.date, result)
    return result


@bp.function_name("run_worker")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=RUN_WORK, connection="ServiceBusConnection")
def run_worker(msg: func.ServiceBusMessage) -> None:
    handle(msg.get_body())
