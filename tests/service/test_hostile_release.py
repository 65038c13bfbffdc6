"""A release cut short (issue 8 part 3): the claim is marked void, then the storage fails
before the number is freed (the fence, the read of the documents or the free itself). A
void claim is handed to no one and was skipped by the sweep, so its number was lost for
good when its document was never to be made (a transaction that failed for good). The
sweep now finishes such releases once they are older than its grace."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.numbering import InvoiceNumbers
from shared.service.billing import bill_one
from shared.service.context import Context
from shared.service.orders import place_order
from shared.service.unit_of_work import release_unissued
from tests.conftest import oslo_morning
from tests.fixtures import install_catalogue, order
from tests.service.test_numbering_gapless import TooLarge, flaky, issued

STEPS = ["fence", "documents", "free"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(step=st.sampled_from(STEPS), sweeps=st.integers(1, 3))
def test_a_release_cut_short_after_the_void_is_finished_by_the_sweep(ctx: Context, step: str, sweeps: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = f"v{uuid.uuid4().hex[:10]}"
    install_catalogue(ctx, tenant)
    ctx.clock.set(oslo_morning(date(2026, 1, 5)))  # type: ignore[attr-defined]
    placed = place_order(ctx, order(tenant, 1))  # number 1
    place_order(ctx, order(tenant, 2))  # number 2
    today = date(2026, 1, 22)
    ctx.clock.set(oslo_morning(today))  # type: ignore[attr-defined]
    failing, _ = flaky(ctx, [True])  # the renewal fails for good (number 3 claimed)...
    calls = {"n": 0}

    def broken(*args: Any, **kwargs: Any) -> Any:  # ...and the storage goes away mid-release
        calls["n"] += 1
        raise ServiceRequestError("storage unreachable")

    if step == "free":
        monkeypatch.setattr(InvoiceNumbers, "free", broken)
    else:
        monkeypatch.setattr(ctx.accounts, step, broken)
    with pytest.raises(TooLarge):
        bill_one(failing, tenant, today, placed.subscriber_no)
    monkeypatch.undo()
    assert calls["n"] == 1
    assert issued(ctx, tenant) == [1, 2]
    place_order(ctx, order(tenant, 3))  # 4: number 3 is void, a gap for now
    for _ in range(sweeps):  # the sweep, once its grace is over (run more than once: releases once)
        release_unissued(ctx, tenant, grace_s=-1)
    place_order(ctx, order(tenant, 4))
    numbers = issued(ctx, tenant)
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # was [1, 2, 4, 5]: 3 lost for good
