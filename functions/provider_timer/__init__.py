"""Timer: polls the payment providers (P6). Webhooks and callbacks are not the only source
of truth: a lost or never-sent one must not leave a charge or an agreement unsettled.

For every tenant, ``charges.poll`` takes the watches due by today (the provider watch
index, never a scan of subscribers): charges whose outcome should be known (due date +
retry days passed), agreements pending too long, agreement stops due at the end of the
paid period, card expiry notices; each is reconciled by the same use case a webhook's
message reaches, re-reading the provider. A tenant whose poll fails is recorded as needing
attention and the other tenants are polled (``isolation.for_each_tenant``); a watch that
failed stays due and is polled again on the next run.

Every six hours (UTC): 06:00 is after the providers' night batches and before the working
day, 12:00 and 18:00 after Vipps' retries in Norway; polling more often changes nothing,
since a watch that finds nothing left to do is harmless. Today is the tenant's calendar
day (its organisations' time zone).
"""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap
from shared.service import charges, checkout
from shared.service.context import Context
from shared.service.isolation import for_each_tenant

bp = func.Blueprint()
SCHEDULE = "0 0 */6 * * *"
RUN = checkout.RUN  # the attention rows of payment agreements: customer service's list


def poll_tenant(ctx: Context, tenant: str) -> object:
    return charges.poll(ctx, tenant, ctx.today(ctx.catalogue.get(tenant)))  # it logs its report


@bp.function_name("provider_timer")
@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def provider_timer(timer: func.TimerRequest) -> None:
    for_each_tenant(bootstrap.context(), RUN, poll_tenant)
