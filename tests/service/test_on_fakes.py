"""Service tests that need the fakes' fault injection (``tests/fakes``): a failure is
injected into one port call, which Azurite cannot be made to do on cue. The fakes are
held to the adapters' behaviour by ``tests/contract``."""

from __future__ import annotations

from datetime import date

import pytest

from shared.ports import ConcurrencyConflict, Unavailable, transient
from shared.service.billing import bill_subscribers
from shared.service.orders import place_order
from tests.fakes import FakeContext
from tests.fixtures import install_catalogue, order
from tests.service.test_numbering_gapless import series

RENEWAL_RUN = date(2026, 1, 22)  # the first renewals of orders placed on 5 Jan are issued


@pytest.mark.parametrize("failure", [Unavailable("storage busy"), ConcurrencyConflict("etag")])
def test_a_transient_failure_in_a_batch_is_tried_again_and_every_subscriber_is_billed(
        fake_ctx: FakeContext, tenant: str, failure: Exception) -> None:
    install_catalogue(fake_ctx, tenant)
    placed = [place_order(fake_ctx, order(tenant, n)) for n in (1, 2, 3)]
    assert transient(failure)
    fake_ctx.accounts.inject("commit", failure)  # the first commit of the batch fails, once
    result = bill_subscribers(fake_ctx, tenant, RENEWAL_RUN, [p.subscriber_no for p in placed])
    assert (result.invoices, result.needs_attention) == (3, 0)
    assert fake_ctx.attention.all(tenant) == []
    numbers = sorted(i.number for p in placed for i in fake_ctx.accounts.documents(tenant, p.subscriber_no).invoices)
    assert numbers == list(range(1, 7))  # three first invoices, three renewals: no gap


def test_a_permanent_failure_in_a_batch_is_recorded_and_the_others_are_billed(
        fake_ctx: FakeContext, tenant: str) -> None:
    install_catalogue(fake_ctx, tenant)
    placed = [place_order(fake_ctx, order(tenant, n)) for n in (1, 2, 3)]
    assert not transient(ValueError())
    poisoned = placed[1].subscriber_no
    fake_ctx.accounts.inject("commit", *[ValueError("a value storage refuses")] * 10,
                             when=lambda _tenant, number: number == poisoned)  # every try of that one
    result = bill_subscribers(fake_ctx, tenant, RENEWAL_RUN, [p.subscriber_no for p in placed])
    assert (result.invoices, result.needs_attention) == (2, 1)
    (row,) = fake_ctx.attention.all(tenant)
    assert row.subscriber_no == poisoned
    issued = sorted(i.number for p in placed for i in fake_ctx.accounts.documents(tenant, p.subscriber_no).invoices)
    free = fake_ctx.invoice_numbers.free_numbers(series(fake_ctx, tenant))
    assert (len(issued), sorted([*issued, *free])) == (5, list(range(1, 7)))  # its number released: no gap
