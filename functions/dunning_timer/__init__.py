"""Timer: the daily dunning run (D1-D3). Fans the work out over the bus to
``run_worker`` (messages of kind ``dunning``), like the invoice timer.

An hour after the invoice run (04:30 UTC), so the day's invoices are issued first;
the dunning date is computed in the organisation's time zone by the use case.
Two runs for one date plan nothing the second time (the watermark), and a visit
repeated by a redelivered message does nothing more (``dunning_visit.dun``). A tenant
whose run cannot be planned is recorded and skipped, as in the invoice timer.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.service.dunning import DUNNING_RUN, start_dunning_run
from shared.service.isolation import for_each_tenant

bp = func.Blueprint()
log = logging.getLogger(__name__)
SCHEDULE = "0 30 4 * * *"


@bp.function_name("dunning_timer")
@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def dunning_timer(timer: func.TimerRequest) -> None:
    for planned in for_each_tenant(bootstrap.context(), DUNNING_RUN, start_dunning_run):
        log.info("dunning run planned: %s", planned)
