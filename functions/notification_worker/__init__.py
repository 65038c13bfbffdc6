"""Service Bus queue ``notices``: delivers each issued document (invoice, credit note,
reminder, "payment stop in N days") on the subscriber's channel (``service.delivery``:
e-mail with the PDF, EHF, print, SMS with a link). The transaction that issued the
document put its event in the outbox, so no document is lost and none is delivered for
a demand that was not issued. A message may come more than once (the outbox re-sends;
the local queue has no duplicate detection; a failed envelope is redelivered whole):
the delivery log row claimed before sending makes the second handling send nothing. A
message that cannot be handled is recorded as needing attention and completes; a passing
failure (the mail server down) raises, and the bus delivers it again (``delivery_count``
tells ``deliver`` when to fall back to print instead)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.adapters.bus import NOTICES, decode
from shared.ports import Delivery
from shared.service.delivery import deliver

bp = func.Blueprint()
log = logging.getLogger(__name__)


def handle(body: bytes, delivery_count: int = 1) -> list[Delivery] | None:
    message = decode(body)
    rows = deliver(bootstrap.context(), message.id, message.body, delivery_count)
    for row in rows or ():
        log.info("message %s: document %s %s by %s", message.id, row.document_id, row.status.value,
                 row.channel)  # no address in the log
    return rows


@bp.function_name("notification_worker")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=NOTICES, connection="ServiceBusConnection")
def notification_worker(msg: func.ServiceBusMessage) -> None:
    handle(msg.get_body(), msg.delivery_count or 1)
