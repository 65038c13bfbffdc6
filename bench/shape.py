"""The storage shape the runs are measured against (issue 13), done directly with the SDK.

``Ceiling``: the same partitions as the run's tenant (buckets of the same layout, or a
partition per subscriber for layout 2), the same subscriber numbers, the same hot rows;
per partition ONE query of its hot rows (``RowKey lt '1'``) and, for the subscribers the
run changes, the same entities per subscriber packed whole into transactions of at most
100 entities (what ``Accounts.commit_many`` does), sent one after another as a bucket's
are. Partitions are worked ``concurrency`` at a time: the number of partitions the run
works at once. It is seeded before the run's own data (``seed``) and measured half just
before the run and half just after (``measure_half``), because Azurite slows as its
store grows and its speed drifts within a run.

``raw_entity_rate``: Azurite's own rate for the cheapest writes there are, 100-entity
create transactions at the same concurrency, in the same run: the most entities per
second this Azurite can take at all.

``EntityCount``: how many entities the run's transactions carried (wraps
``Storage.transact`` of the run's context), so the run's ``entities_per_s`` can be set
beside the ceiling's and the raw rate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.data.tables import TableClient, TableTransactionError

from shared.adapters import batch
from shared.adapters.accounts import Place, bucket_key, first_shape_key
from shared.adapters.tables import MAX_BATCH, Storage
from shared.domain.placement import Layout

HEAD = "0|subscriber"
OUTBOX_ROWS = 0  # outbox rows a commit deletes: none, the events ride in the subscriber row (issue 13)


class Ceiling:
    """Per partition: one query of the hot rows, then the changes of the chosen subscribers
    (``entities`` each: the head replaced under its ETag, the subscription upserted, the two
    outbox rows deleted, the rest created) in transactions of at most 100 entities."""

    def __init__(self, storage: Storage, numbers: Sequence[int], layout: Layout, entities: int,
                 concurrency: int, changed: Callable[[int], bool] = lambda _n: True,
                 index_per_partition: bool = False) -> None:
        self.table = storage.table("Subscribers")
        self.index = storage.table("Indexes")
        self.tenant = f"ceiling-{uuid.uuid4().hex[:6]}"
        self.entities = entities
        self.concurrency = concurrency
        self.changed = changed
        self.index_per_partition = index_per_partition
        groups: dict[str, list[Place]] = {}
        for n in numbers:
            if layout.bucketed:
                place = Place(bucket_key(self.tenant, layout.bucket(n)), n, True)
            else:
                place = Place(first_shape_key(self.tenant, n), n, False)
            groups.setdefault(place.pk, []).append(place)
        self.partitions = list(groups.values())
        self.concurrency = min(concurrency, len(self.partitions))  # never more at once than there are
        self.subscribers = len(numbers)
        self.cpu_s = 0.0  # this process's CPU time in ``measure``: what the SDK costs the client
        self.measured = 0

    def seed(self) -> None:
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(self._seed_one, self.partitions))

    def measure(self, partitions: Sequence[list[Place]] | None = None) -> float:
        """Subscribers worked per second, over all partitions or over ``partitions``."""
        partitions = self.partitions if partitions is None else partitions
        with ThreadPoolExecutor(self.concurrency) as pool:
            started, cpu = time.perf_counter(), time.process_time()
            done = sum(pool.map(self._work, partitions))
            elapsed = time.perf_counter() - started
            self.cpu_s += time.process_time() - cpu
            self.measured += done
            return done / elapsed

    @property
    def cpu_ms_per_subscriber(self) -> float:
        return 1000 * self.cpu_s / max(self.measured, 1)

    def measure_half(self, second: bool) -> float:
        half = len(self.partitions) // 2
        return self.measure(self.partitions[half:] if second else self.partitions[:half])

    def _seed_one(self, places: list[Place]) -> int:
        ops: list[tuple[str, dict[str, Any]]] = []
        for p in places:
            ops += [("create", {"PartitionKey": p.pk, "RowKey": p.rk(HEAD), "Body": "x" * 600}),
                    ("create", {"PartitionKey": p.pk, "RowKey": p.rk("0|sub|s"), "Body": "x" * 300}),
                    *[("create", {"PartitionKey": p.pk, "RowKey": p.rk(f"0|out|{k}"), "Body": "x" * 300})
                      for k in range(OUTBOX_ROWS)]]
        for chunk in _packed([ops[i:i + 2 + OUTBOX_ROWS] for i in range(0, len(ops), 2 + OUTBOX_ROWS)]):
            submit(self.table, chunk)
        return len(places)

    def _work(self, places: list[Place]) -> int:
        pk = places[0].pk
        rows = {r["RowKey"]: r for r in self.table.query_entities("PartitionKey eq @pk and RowKey lt '1'",
                                                                  parameters={"pk": pk})}
        chosen = [p for p in places if self.changed(p.number)]
        if chosen and self.index_per_partition:  # the dunning run's next visits: one write per day
            submit(self.index, [("upsert", {"PartitionKey": f"dun|{self.tenant}|2026-02-10",
                                                       "RowKey": f"{p.number:010d}"}) for p in chosen])
        items = []
        for p in chosen:
            head = rows[p.rk(HEAD)]
            ops: list[Any] = [("update", {"PartitionKey": pk, "RowKey": p.rk(HEAD), "Body": "y" * 600},
                               {"mode": "replace", "etag": head.metadata["etag"],
                                "match_condition": MatchConditions.IfNotModified}),
                              ("upsert", {"PartitionKey": pk, "RowKey": p.rk("0|sub|s"), "Body": "y" * 300})]
            ops += [("delete", {"PartitionKey": pk, "RowKey": p.rk(f"0|out|{k}")}) for k in range(OUTBOX_ROWS)]
            ops += [("create", {"PartitionKey": pk, "RowKey": p.rk(f"1|new|{k}"), "Body": "y" * 800})
                    for k in range(self.entities - len(ops))]
            items.append(ops)
        for chunk in _packed(items):
            submit(self.table, chunk)
        return len(places)


def submit(table: TableClient, ops: list[Any], attempts: int = 4) -> None:
    """One transaction; sent again after a transport failure (a loaded Azurite resets
    connections), as ``Storage.transact`` does. A repeat refused because the first did
    commit (its ETag or its new rows already there) counts as done."""
    for attempt in range(attempts):
        try:
            batch.submit(table, ops)  # the transaction writer the run uses (adapters.batch), not the SDK's
            return
        except (ServiceRequestError, ServiceResponseError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
        except TableTransactionError:
            if attempt == 0:
                raise
            return


class PerSubscriber:
    """The shape of a single-subscriber operation (a webhook, an order, customer service):
    one read of a subscriber's hot rows and one transaction of ``entities`` entities, a
    subscriber at a time, ``threads`` at once. In a bucket that read is a range of the
    subscriber's own row keys, which Azurite serves as fast as a partition of its own, so
    the partitions here are one per subscriber (the shape before issue 13)."""

    def __init__(self, storage: Storage, n: int, entities: int, threads: int = 64) -> None:
        self.table = storage.table("Subscribers")
        tenant = f"ceiling-{uuid.uuid4().hex[:6]}"
        self.pks = [f"{tenant}|{i:010d}" for i in range(n)]
        self.entities = entities
        self.threads = threads

    def seed(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self._seed_one, self.pks))

    def measure(self, pks: list[str] | None = None) -> float:
        pks = self.pks if pks is None else pks
        with ThreadPoolExecutor(self.threads) as pool:
            started = time.perf_counter()
            list(pool.map(self._work, pks))
            return len(pks) / (time.perf_counter() - started)

    def _seed_one(self, pk: str) -> None:
        submit(self.table, [("create", {"PartitionKey": pk, "RowKey": HEAD, "Body": "x" * 600}),
                            ("create", {"PartitionKey": pk, "RowKey": "0|sub|s", "Body": "x" * 300}),
                            *[("create", {"PartitionKey": pk, "RowKey": f"0|out|{k}", "Body": "x" * 300})
                              for k in range(OUTBOX_ROWS)]])

    def _work(self, pk: str) -> None:
        rows = list(self.table.query_entities("PartitionKey eq @pk and RowKey lt '1'", parameters={"pk": pk}))
        head = next(r for r in rows if r["RowKey"] == HEAD)
        ops: list[Any] = [("update", {"PartitionKey": pk, "RowKey": HEAD, "Body": "y" * 600},
                           {"mode": "replace", "etag": head.metadata["etag"],
                            "match_condition": MatchConditions.IfNotModified}),
                          ("upsert", {"PartitionKey": pk, "RowKey": "0|sub|s", "Body": "y" * 300})]
        ops += [("delete", {"PartitionKey": pk, "RowKey": f"0|out|{k}"}) for k in range(OUTBOX_ROWS)]
        ops += [("create", {"PartitionKey": pk, "RowKey": f"1|new|{k}", "Body": "y" * 800})
                for k in range(self.entities - len(ops))]
        submit(self.table, ops)


def _packed(items: Sequence[list[Any]]) -> list[list[Any]]:
    """Items whole into transactions of at most ``MAX_BATCH`` (100) operations."""
    out: list[list[Any]] = []
    current: list[Any] = []
    for ops in items:
        if current and len(current) + len(ops) > MAX_BATCH:
            out.append(current)
            current = []
        current += ops
    if current:
        out.append(current)
    return out


def raw_entity_rate(storage: Storage, concurrency: int, transactions: int = 64) -> float:
    """Entities per second Azurite takes in 100-entity create transactions, ``concurrency`` at a time."""
    table = storage.table("Subscribers")
    tenant = f"raw-{uuid.uuid4().hex[:6]}"

    def one(i: int) -> int:
        pk = f"{tenant}||{i:04d}"
        submit(table, [("create", {"PartitionKey": pk, "RowKey": f"{k:03d}", "Body": "z" * 400})
                       for k in range(MAX_BATCH)])
        return MAX_BATCH

    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        entities = sum(pool.map(one, range(transactions)))
        return entities / (time.perf_counter() - started)


class EntityCount:
    """Counts what the run's storage sends, wrapping the context's ``Storage``: the entities
    (operations) of every transaction, any table (``count``, ``by_table``), and the calls by
    method and table (``calls``: ``"transact Subscribers"`` and so on; a query counts once
    however many pages), so the round trips per unit can be told apart."""

    def __init__(self, storage: Storage) -> None:
        self.count = 0
        self.transactions = 0
        self.by_table: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()
        for method in ("get", "query", "first", "upsert", "insert", "delete", "transact"):
            setattr(storage, method, self._counted(method, getattr(storage, method)))

    def _counted(self, method: str, inner: Callable[..., Any]) -> Callable[..., Any]:
        def call(table: str, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                key = f"{method} {table}"
                self.calls[key] = self.calls.get(key, 0) + 1
                if method == "transact":
                    self.count += len(args[0])
                    self.transactions += 1
                    self.by_table[table] = self.by_table.get(table, 0) + len(args[0])
            return inner(table, *args, **kwargs)

        return call


def layout_of(version: int, bucket_size: int) -> Layout:
    return Layout(version) if version == 2 else Layout(3, bucket_size, 16)
