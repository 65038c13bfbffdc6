"""Timer: the daily invoice run (S3). Fans the work out over the bus to ``run_worker``.

NCRONTAB in UTC: Linux function apps ignore WEBSITE_TIME_ZONE. 03:30 UTC is 04:30 or
05:30 in Oslo, the same calendar day; the billing date is computed in the
organisation's time zone by the use case, not from this schedule. A tenant whose run
cannot be planned is recorded as needing attention and the other tenants run
(``isolation.for_each_tenant``); its watermark stays, so it catches up once fixed.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.service.billing import INVOICE_RUN, start_invoice_run
from shared.service.isolation import for_each_tenant

bp = func.Blueprint()
log = logging.getLogger(__name__)
SCHEDULE = "0 30 3 * * *"


@bp.function_name("invoice_timer")
@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def invoice_timer(timer: func.TimerRequest) -> None:
    for planned in for_each_tenant(bootstrap.context(), INVOICE_RUN, start_invoice_run):
        log.info("invoice run planned: %s", planned)
