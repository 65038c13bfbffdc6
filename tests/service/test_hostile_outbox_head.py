"""The outbox in the subscriber row (issue 13 review, hostile-data): whatever mix of commits
and commit_many, events per commit (0-40: past the 16 the row keeps) and sizes (past its
12,000 characters), every committed event is in the outbox some later load surfaces (what the
next operation sends before its commit clears it): none is dropped when the row is replaced."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.account import Changes
from shared.domain.events import CorrectionAdded
from shared.service.context import Context
from tests.contract.test_accounts_many import commit_new

pytestmark = pytest.mark.fakes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 3000), st.booleans()), min_size=1, max_size=6))
def test_every_committed_event_is_surfaced_by_a_later_load(ctx: Context, steps: list[tuple[int, int, bool]]) -> None:
    tenant = f"o{uuid.uuid4().hex[:10]}"
    numbers = [8, 24]  # one bucket
    commit_new(ctx, tenant, numbers)
    committed: set[str] = set()
    surfaced: set[str] = set()
    for k, (count, size, many) in enumerate(steps):
        loaded = {n: one for n in numbers if (one := ctx.accounts.load(tenant, n)) is not None}
        for n in numbers:
            surfaced |= {e.id for e in loaded[n].outbox}
        items = []
        for n in numbers:
            events = tuple(CorrectionAdded(f"e.{k}.{n}.{i}", n, f"c{i}", "avisa", i, "x" * size) for i in range(count))
            committed |= {e.id for e in events}
            items.append((loaded[n], Changes(loaded[n].account, events=events)))
        if many:
            answers = ctx.accounts.commit_many(tenant, items)
            assert all(not isinstance(a, Exception) for a in answers), answers
        else:
            for item in items:
                ctx.accounts.commit(tenant, *item)
    for n in numbers:
        last = ctx.accounts.load(tenant, n)
        assert last is not None
        surfaced |= {e.id for e in last.outbox}
    assert committed <= surfaced, sorted(committed - surfaced)[:5]
