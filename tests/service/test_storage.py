"""The Table Storage adapter refuses what Azure refuses, and detects concurrent writers."""

from __future__ import annotations

import threading
import uuid

import pytest

from shared.adapters.numbering import InvoiceNumbers, SubscriberNumbers
from shared.adapters.tables import BatchRefused, ConcurrencyConflict, Storage
from shared.service.context import Context


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
