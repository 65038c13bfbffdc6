"""Hostile timing for invoice numbers (L1, issue 8 part 3): a number may go on the free
list only when nobody can still commit it. A new subscriber has no row to fence, so a
commit whose outcome is in doubt (a timeout, a 5xx, a dropped connection) or a racer
posting the same order may still land the number after the release: the number is then
on an invoice *and* free, and the next order gets it again."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.adapters.accounts import AccountRepository
from shared.domain.account import Changes
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fakes.accounts import commit_each
from tests.fixtures import order
from tests.service.test_numbering_gapless import issued, series

pytestmark = pytest.mark.fakes  # each test runs on Azurite and on the in-memory fakes


def busy() -> HttpResponseError:
    error = HttpResponseError("ServerBusy")
    error.status_code = 503
    return error


IN_DOUBT = [lambda: ServiceResponseError("read timed out"), lambda: ServiceRequestError("connection reset"), busy]


@dataclass
class LateCommit:
    """A commit that fails with ``error`` at once while its transaction lands later, when
    ``land`` is set (the timeout case), or never (``lands=False``: the racer case, where
    the other request commits the same number)."""

    real: AccountRepository
    error: Any
    lands: bool
    land: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> None:
        if self.lands:
            def later() -> None:
                self.land.wait(30)
                self.real.commit(tenant, loaded, changes)
            self.threads.append(threading.Thread(target=later))
            self.threads[-1].start()
        raise self.error()

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@dataclass
class HeldCommit:
    """The racer: its commit waits until ``go`` is set."""

    real: AccountRepository
    at_commit: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def commit(self, tenant: str, loaded: Any, changes: Changes) -> Any:
        self.at_commit.set()
        self.go.wait(30)
        return self.real.commit(tenant, loaded, changes)

    def commit_many(self, tenant: str, items: Any) -> Any:  # each through this commit, faults and all
        return commit_each(self, tenant, items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("error", IN_DOUBT)
@pytest.mark.parametrize("racer", [False, True], ids=["timed-out-commit-lands-later", "same-order-racing"])
def test_a_new_subscribers_number_in_doubt_is_never_freed_while_it_may_still_land(
        ctx: Context, shop: str, error: Any, racer: bool) -> None:
    held = HeldCommit(ctx.accounts)
    winner: list[Any] = []
    if racer:  # the same order (same order_ref) posted twice; the first is at its commit
        thread = threading.Thread(target=lambda: winner.append(
            place_order(replace(ctx, accounts=held), order(shop, 1, ref="twice"))))  # type: ignore[arg-type]
        thread.start()
        assert held.at_commit.wait(30)
    late = LateCommit(ctx.accounts, error, lands=not racer)
    with pytest.raises((ServiceResponseError, ServiceRequestError, HttpResponseError)):
        place_order(replace(ctx, accounts=late), order(shop, 1, ref="twice"))  # type: ignore[arg-type]
    late.land.set()  # the timed-out transaction lands after all
    for t in late.threads:
        t.join()
    if racer:
        held.go.set()
        thread.join()
        assert winner and winner[0].invoices[0].number == 1
    assert issued(ctx, shop) == [1]
    assert ctx.invoice_numbers.free_numbers(series(ctx, shop)) == ()  # 1 is on an invoice: never free
    place_order(ctx, order(shop, 2, ref="next"))
    assert issued(ctx, shop) == [1, 2]  # was [1, 1]: the next order got the freed number
    assert place_order(ctx, order(shop, 1, ref="twice")).created is False  # the client's retry: placed once


def test_a_claim_kept_for_a_commit_in_doubt_waits_out_the_sweeps_grace(ctx: Context, shop: str) -> None:
    from shared.service.unit_of_work import release_unissued

    late = LateCommit(ctx.accounts, IN_DOUBT[0], lands=False)  # it never lands: the sweep frees it, later
    with pytest.raises(ServiceResponseError):
        place_order(replace(ctx, accounts=late), order(shop, 1, ref="lost"))  # type: ignore[arg-type]
    assert release_unissued(ctx, shop) == 0  # it might still land
    assert release_unissued(ctx, shop, grace_s=-1) == 1
    place_order(ctx, order(shop, 2, ref="next"))
    assert issued(ctx, shop) == [1]
