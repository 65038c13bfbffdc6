"""Timer: the daily invoice run (S3). Fans the work out over the bus to ``billing_worker``.

NCRONTAB in UTC: Linux function apps ignore WEBSITE_TIME_ZONE. 03:30 UTC is 04:30 or
05:30 in Oslo, the same calendar day; the billing date is computed in the
organisation's time zone by the use case, not from this schedule.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.service.billing import plan_invoice_run

bp = func.Blueprint()
log = logging.getLogger(__name__)
SCHEDULE = "0 30 3 * * *"


@bp.function_name("invoice_timer")
@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def invoice_timer(timer: func.TimerRequest) -> None:
    ctx = bootstrap.context()
    for tenant in ctx.tenants.all():
        planned = plan_invoice_run(ctx, tenant)
        log.info("invoice run planned: %s", planned)
