"""The contract of ``ports.AccessRecords``, asserted against ``AccessRows`` on Azurite and the
in-memory fake alike (``[azurite]``, ``[in_memory]``): creation is create-if-absent, a
replace or delete needs the ETag read, a row too big for one property still round-trips,
and a lookup is one round trip."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from shared.domain.identity import AccessRecord, Grant, Membership, Role, SiteEntry, SiteTable, login_key
from shared.ports import ConcurrencyConflict
from shared.service.context import Context

pytestmark = pytest.mark.fakes
DAY = date(2026, 1, 5)
LOGIN = login_key("https://idp.example/v2.0", "subject-1")


def record(products: tuple[str, ...] = ("avis",), n: int = 1) -> AccessRecord:
    return AccessRecord(LOGIN, holder_of=(n,), member_of=(Membership(9, "g1", Role.USER),),
                        grants=(Grant(n, "s1", products, DAY, None, date(2026, 2, 1)),), email="kari@example.no")


def test_a_record_is_created_once_then_replaced_only_under_the_etag_read(ctx: Context, tenant: str) -> None:
    assert ctx.access.read(tenant, LOGIN) == (None, None) and ctx.access.get(tenant, LOGIN) is None
    ctx.access.put(tenant, record(), None)
    with pytest.raises(ConcurrencyConflict):  # created meanwhile by someone else
        ctx.access.put(tenant, record(("kryssord",)), None)
    found, etag = ctx.access.read(tenant, LOGIN)
    assert found == record() and etag is not None
    ctx.access.put(tenant, record(("avis", "kryssord")), etag)
    with pytest.raises(ConcurrencyConflict):  # the etag read before that replace is stale now
        ctx.access.put(tenant, record(), etag)
    assert ctx.access.get(tenant, LOGIN) == record(("avis", "kryssord"))
    assert ctx.access.get("another-tenant", LOGIN) is None


def test_a_delete_under_a_stale_etag_conflicts_and_a_row_gone_already_is_no_error(
        ctx: Context, tenant: str) -> None:
    ctx.access.put(tenant, record(), None)
    _, first = ctx.access.read(tenant, LOGIN)
    assert first is not None
    ctx.access.put(tenant, record(("kryssord",)), first)
    with pytest.raises(ConcurrencyConflict):
        ctx.access.delete(tenant, LOGIN, first)
    _, current = ctx.access.read(tenant, LOGIN)
    ctx.access.delete(tenant, LOGIN, current)
    assert ctx.access.read(tenant, LOGIN) == (None, None)
    ctx.access.delete(tenant, LOGIN)  # gone already: done, with an ETag or without
    ctx.access.delete(tenant, LOGIN, current)


def test_of_racing_creators_exactly_one_wins(ctx: Context, tenant: str) -> None:
    def create(i: int) -> bool:
        try:
            ctx.access.put(tenant, record((f"p{i}",)), None)
            return True
        except ConcurrencyConflict:
            return False

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(create, range(8)))
    assert won.count(True) == 1
    assert ctx.access.get(tenant, LOGIN) == record((f"p{won.index(True)}",))


def test_a_record_larger_than_one_property_round_trips(ctx: Context, tenant: str) -> None:
    grants = tuple(Grant(n, f"subscription-{n}-{i}", ("avis", "kryssord", f"product-{i:04d}"), DAY)
                   for n in range(1, 51) for i in range(6))  # 50 subscribers, 300 grants: ~40 kB of JSON
    big = AccessRecord(LOGIN, holder_of=tuple(range(1, 51)), grants=grants)
    ctx.access.put(tenant, big, None)
    assert ctx.access.get(tenant, LOGIN) == big


def test_the_site_table_starts_empty_and_is_replaced_under_its_etag(ctx: Context, tenant: str) -> None:
    assert ctx.access.sites(tenant) == (SiteTable(), None)
    table = SiteTable((SiteEntry(7, "192.0.2.0/24", (Grant(7, "s1", ("avis",), DAY),)),))
    ctx.access.put_sites(tenant, table, None)
    with pytest.raises(ConcurrencyConflict):
        ctx.access.put_sites(tenant, SiteTable(), None)
    found, etag = ctx.access.sites(tenant)
    assert found == table and etag is not None
    ctx.access.put_sites(tenant, SiteTable(), etag)
    with pytest.raises(ConcurrencyConflict):
        ctx.access.put_sites(tenant, table, etag)
    assert ctx.access.sites(tenant)[0] == SiteTable()
    assert found.products_for("192.0.2.200", DAY) == ("avis",)


def test_a_lookup_is_one_storage_round_trip(ctx: Context, tenant: str, backend: str) -> None:
    ctx.access.put(tenant, record(), None)
    if backend == "in_memory":
        before = ctx.access.reads  # type: ignore[attr-defined]
        ctx.access.get(tenant, LOGIN)
        assert ctx.access.reads - before == 1  # type: ignore[attr-defined]
        return
    storage = ctx.storage  # type: ignore[attr-defined]
    before = storage.round_trips.count
    ctx.access.get(tenant, LOGIN)
    ctx.access.sites(tenant)
    assert storage.round_trips.count - before == 2
