"""Timer: the daily print batch (D3). Every tenant's letters of the day before go to the
print house as one merged PDF and a CSV manifest per organisation
(``print/{tenant}/{day}/``; ``shared.service.printing``).

05:30 UTC, an hour after the dunning run (04:30) and two after the invoice run (03:30):
06:30 or 07:30 in Oslo. The batch is the previous day's (in the tenant's time zone), a
closed day: every letter delivery sent to print that day (including e-mails that bounced
and fell back to print) is in it, and none can arrive after the batch was made; the print
house gets it at the start of its working day. Days before it that have no batch yet (the
timer missed a run) are made too, up to a week back; a day made before writes nothing. A
tenant whose batch fails is recorded as needing attention and the other tenants' run
(``isolation.for_each_tenant``); the next day's run makes the missed day.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap
from shared.service.isolation import for_each_tenant
from shared.service.printing import PRINT_RUN, print_due

bp = func.Blueprint()
log = logging.getLogger(__name__)
SCHEDULE = "0 30 5 * * *"


@bp.function_name("print_timer")
@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def print_timer(timer: func.TimerRequest) -> None:
    for batches in for_each_tenant(bootstrap.context(), PRINT_RUN, print_due):
        for batch in batches:
            if batch.made_now:
                log.info("print batch %s of %s: %d letters, %d pages, %d set aside", batch.day, batch.organization_id,
                         batch.letters, batch.pages, len(batch.set_aside))
