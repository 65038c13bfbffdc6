"""The Table Storage adapter refuses what Azure refuses, and detects concurrent writers."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from azure.data.tables import EdmType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost import issuer
from shared.adapters.numbering import InvoiceNumbers, SubscriberNumbers
from shared.adapters.tables import (
    BatchRefused,
    ConcurrencyConflict,
    EntityTooLarge,
    Storage,
    StorageLimit,
    ValueOutOfRange,
    check_entity,
)
from shared.service.context import Context
from shared.service.orders import place_order
from tests.fixtures import order
from tests.integration.test_merchant import call


def test_a_transaction_spanning_two_partitions_is_refused_before_it_is_sent(ctx: Context) -> None:
    before = ctx.storage.round_trips.count
    with pytest.raises(BatchRefused, match="partitions"):
        ctx.storage.transact("Indexes", [("upsert", {"PartitionKey": "a", "RowKey": "1"}),
                                         ("upsert", {"PartitionKey": "b", "RowKey": "1"})])
    assert ctx.storage.round_trips.count == before


def test_a_transaction_of_more_than_100_entities_is_refused(ctx: Context) -> None:
    with pytest.raises(BatchRefused, match="100"):
        ctx.storage.transact("Indexes", [("upsert", {"PartitionKey": "a", "RowKey": str(i)}) for i in range(101)])


def test_a_stale_etag_loses_the_race(ctx: Context) -> None:
    pk = f"etag-{uuid.uuid4().hex}"
    ctx.storage.insert("Indexes", {"PartitionKey": pk, "RowKey": "x", "V": 1})
    row = ctx.storage.get("Indexes", pk, "x")
    assert row is not None
    from azure.core import MatchConditions

    update = ("update", {"PartitionKey": pk, "RowKey": "x", "V": 2},
              {"mode": "replace", "etag": row["etag"], "match_condition": MatchConditions.IfNotModified})
    ctx.storage.transact("Indexes", [update])
    with pytest.raises(ConcurrencyConflict):
        ctx.storage.transact("Indexes", [update])


def test_concurrent_workers_claim_consecutive_invoice_numbers_without_gaps_or_duplicates(azurite) -> None:  # type: ignore[no-untyped-def]
    # Four "processes" (separate adapters, separate caches) claim 60 numbers each, in batches.
    pk = f"tenant|org|{uuid.uuid4().hex[:6]}"
    workers = [InvoiceNumbers(Storage.from_connection_string(azurite.connection_string)) for _ in range(4)]
    claimed: list[dict[str, int]] = []
    lock = threading.Lock()

    def work(w: int) -> None:
        for batch in range(6):
            got = workers[w].claim(pk, [f"w{w}.b{batch}.{i}" for i in range(10)])
            with lock:
                claimed.append(got)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(n for c in claimed for n in c.values())
    assert numbers == list(range(1, 241))
    assert workers[0].unissued(pk, set(numbers)) == {}


def test_two_workers_claiming_the_same_demand_get_the_same_number(azurite) -> None:  # type: ignore[no-untyped-def]
    pk = f"tenant|org|{uuid.uuid4().hex[:6]}"
    a, b = (InvoiceNumbers(Storage.from_connection_string(azurite.connection_string)) for _ in range(2))
    first = a.claim(pk, ["sub1.0", "sub2.0"])
    second = b.claim(pk, ["sub2.0", "sub3.0"])
    assert second["sub2.0"] == first["sub2.0"]
    assert sorted({**first, **second}.values()) == [1, 2, 3]


def test_subscriber_numbers_are_unique_across_processes(azurite) -> None:  # type: ignore[no-untyped-def]
    tenant = uuid.uuid4().hex[:8]
    a, b = (SubscriberNumbers(Storage.from_connection_string(azurite.connection_string), block=5)
            for _ in range(2))
    numbers = [a.next(tenant) for _ in range(7)] + [b.next(tenant) for _ in range(7)]
    assert len(set(numbers)) == 14


# ---- storage limits: refused before anything is sent (issue 8, part 4) ----

def _rows(ctx: Context, pk: str) -> list[dict[str, object]]:
    return list(ctx.storage.query("Indexes", "PartitionKey eq @pk", {"pk": pk}))


@pytest.mark.parametrize(("bad", "error"), [
    ({"Text": "ø" * (32 * 1024)}, EntityTooLarge),  # UTF-16: 2 bytes a character, 64 KiB + 4
    ({"Blob": b"x" * (64 * 1024)}, EntityTooLarge),
    ({f"P{i}": "x" * 30000 for i in range(18)}, EntityTooLarge),  # each fits, together over 1 MiB
    ({f"P{i}": 1 for i in range(253)}, EntityTooLarge),
    ({"Amount": 2**63}, ValueOutOfRange),
    ({"Amount": -(2**63) - 1}, ValueOutOfRange),
    ({"Amount": (2**63, EdmType.INT64)}, ValueOutOfRange),
    ({"When": datetime(1600, 12, 31, tzinfo=UTC)}, ValueOutOfRange),
    ({"RowKey": "a#b"}, ValueOutOfRange),
    ({"RowKey": "a\nb"}, ValueOutOfRange),
    ({"RowKey": "k" * 1025}, ValueOutOfRange),
])
def test_a_value_table_storage_cannot_hold_fails_the_whole_transaction_before_anything_is_sent(
        ctx: Context, bad: dict[str, object], error: type[Exception]) -> None:
    pk = f"limit-{uuid.uuid4().hex}"
    before = ctx.storage.round_trips.count
    with pytest.raises(error):
        ctx.storage.transact("Indexes", [("upsert", {"PartitionKey": pk, "RowKey": "fine", "V": 1}),
                                         ("upsert", {"PartitionKey": pk, "RowKey": "bad"} | bad)])
    with pytest.raises(error):
        ctx.storage.insert("Indexes", {"PartitionKey": pk, "RowKey": "bad"} | bad)
    assert ctx.storage.round_trips.count == before and _rows(ctx, pk) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_int64_is_stored_and_read_back_as_an_int_by_every_write(ctx: Context, value: int) -> None:
    # the SDK sends a bare int as Int32: the adapter types a larger one Int64, and reads it back plain
    pk = f"int64-{uuid.uuid4().hex}"
    ctx.storage.transact("Indexes", [("create", {"PartitionKey": pk, "RowKey": "t", "Amount": value})])
    ctx.storage.upsert("Indexes", {"PartitionKey": pk, "RowKey": "u", "Amount": value})
    assert ctx.storage.insert("Indexes", {"PartitionKey": pk, "RowKey": "i", "Amount": value})
    got = [(r["Amount"], type(r["Amount"])) for r in _rows(ctx, pk)]
    assert got == [(value, int)] * 3
    row = ctx.storage.get("Indexes", pk, "t")
    assert row is not None and type(row["Amount"]) is int and row["Amount"] == value


def test_values_at_the_limits_are_stored() -> None:
    check_entity({"PartitionKey": "p", "RowKey": "r", "Text": "x" * (32 * 1024 - 2),
                  "Small": 2**31 - 1, "Big": (2**63 - 1, EdmType.INT64), "When": datetime(1601, 1, 1, tzinfo=UTC)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.from_regex(r"[A-Z][a-z]{0,8}", fullmatch=True),
                       st.one_of(st.text(max_size=40), st.integers(), st.booleans(),
                                 st.datetimes(timezones=st.just(UTC))), max_size=6))
def test_whatever_the_guard_lets_through_azurite_stores_and_gives_back(ctx: Context,
                                                                      props: dict[str, object]) -> None:
    entity = {"PartitionKey": f"fuzz-{uuid.uuid4().hex}", "RowKey": "r"} | props
    try:
        check_entity(entity)
    except StorageLimit:
        assert any(type(v) is int and not -(2**31) <= v < 2**31 for v in props.values()) or any(
            isinstance(v, datetime) and v.year < 1601 for v in props.values())
        return
    ctx.storage.upsert("Indexes", entity)  # never a TypeError from the SDK
    row = ctx.storage.get("Indexes", entity["PartitionKey"], "r")  # type: ignore[arg-type]
    assert row is not None and {k: row[k] for k in props if not isinstance(props[k], datetime)} == {
        k: v for k, v in props.items() if not isinstance(v, datetime)}


def test_a_correction_too_large_to_store_is_422_and_changes_nothing(ctx: Context, shop: str) -> None:
    placed = place_order(ctx, order(shop))
    before = ctx.accounts.load(shop, placed.subscriber_no)
    status, problem = call("correction_add", "POST", issuer.token(shop, ["admin"]),
                           {"subscriber_no": str(placed.subscriber_no)},
                           {"organization_id": "avisa", "amount_minor": -100, "text": "x" * 40_000})
    assert status == 422 and problem["title"] in ("Too large to store", "Invalid request"), problem
    after = ctx.accounts.load(shop, placed.subscriber_no)
    assert before is not None and after is not None and after.account == before.account and after.etag == before.etag
