"""Service Bus queue ``notices``: sends each reminder or stop notice through the
notification port (``shared.adapters.notify``; locally, files in the ``notices``
blob container). The dunning visit puts the notice in the outbox in the same
transaction as the reminder, so no notice is lost and none is sent for a reminder
that was not made. The outbox may send a message again (Service Bus drops the repeat
by its id; the local queue does not): the notice is named by the event and dated by
the day it was made, so handling it twice writes the same file again. A notice that
cannot be made is recorded as needing attention for its subscriber, and its message
completes (``notices.send``)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.adapters.bus import NOTICES, decode
from shared.ports import Notice
from shared.service.notices import send

bp = func.Blueprint()
log = logging.getLogger(__name__)


def handle(body: bytes) -> Notice | None:
    message = decode(body)
    notice = send(bootstrap.context(), bootstrap.notifier(), message.id, message.body)
    if notice is not None:
        log.info("notice %s sent by %s", notice.id, notice.channel)  # no address in the log
    return notice


@bp.function_name("notification_worker")
@bp.service_bus_queue_trigger(arg_name="msg", queue_name=NOTICES, connection="ServiceBusConnection")
def notification_worker(msg: func.ServiceBusMessage) -> None:
    handle(msg.get_body())
