"""Azure Table Storage: the one client, round-trip counting, and transaction guards.

Every call that goes to the service passes through ``Storage`` so round trips can be
counted per operation (the figure the benchmarks steer by). ``transact`` refuses what
Azure would refuse but Azurite accepts: a batch spanning partitions, or more than 100
entities (Table service, "Performing entity group transactions").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError
from requests import Session
from requests.adapters import HTTPAdapter

T = TypeVar("T")
MAX_BATCH = 100
TRANSPORT_ATTEMPTS = 4
TABLES = ("Catalogue", "Subscribers", "Numbering", "Indexes", "Tenants", "Payments")


class BatchRefused(ValueError):
    """A transaction Azure Table Storage would reject."""


class ConcurrencyConflict(Exception):
    """Someone else changed the partition since it was read (ETag mismatch or insert race)."""


@dataclass
class RoundTrips:
    """Thread-safe count of calls to the storage service."""

    count: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n


Operation = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]


def pooled_transport(pool_size: int = 64) -> RequestsTransport:
    """One HTTP session with a pool large enough for the concurrency we run at."""
    session = Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)


class Storage:
    def __init__(self, service: TableServiceClient) -> None:
        self.service = service
        self.round_trips = RoundTrips()
        self._clients: dict[str, TableClient] = {}

    @classmethod
    def from_connection_string(cls, conn_str: str, pool_size: int = 64) -> Storage:
        return cls(TableServiceClient.from_connection_string(conn_str, transport=pooled_transport(pool_size)))

    def table(self, name: str) -> TableClient:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.service.get_table_client(name)
        return client

    def ensure_tables(self) -> None:
        for name in TABLES:
            try:
                self.service.create_table(name)
            except ResourceExistsError:
                pass

    def get(self, table: str, pk: str, rk: str) -> dict[str, Any] | None:
        self.round_trips.add()
        try:
            entity = self.table(table).get_entity(pk, rk)
            return dict(entity) | {"etag": entity.metadata.get("etag")}
        except ResourceNotFoundError:
            return None

    def query(self, table: str, query_filter: str, parameters: dict[str, Any] | None = None,
              select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Entities matching ``query_filter``, counting one round trip per page."""
        pages = self.table(table).query_entities(query_filter, parameters=parameters, select=select,
                                                 results_per_page=1000).by_page()
        for page in pages:
            self.round_trips.add()
            for entity in page:
                yield dict(entity) | {"etag": entity.metadata.get("etag")}

    def upsert(self, table: str, entity: dict[str, Any]) -> None:
        self.round_trips.add()
        self.table(table).upsert_entity(entity)

    def insert(self, table: str, entity: dict[str, Any]) -> bool:
        """Insert; False if the entity already exists (the atomic create-if-absent).

        Retried on a lost response like ``transact``: a retry of an insert that did
        happen answers "exists", which every caller treats as "someone has it; read it".
        """
        try:
            self._retrying(lambda: self.table(table).create_entity(entity))
            return True
        except ResourceExistsError:
            return False

    def delete(self, table: str, pk: str, rk: str) -> None:
        self.round_trips.add()
        self.table(table).delete_entity(pk, rk)

    def transact(self, table: str, operations: Sequence[Operation]) -> list[dict[str, Any]]:
        """One entity-group transaction; ConcurrencyConflict on an ETag or insert race.

        A transport failure (connection reset, no response) leaves it unknown whether the
        transaction committed; azure-core does not retry a POST, so it is retried here.
        That is safe because every transaction we send is guarded: it replaces a row
        under ``If-Match`` or creates rows, so a retry of one that did commit fails as a
        ``ConcurrencyConflict``, and the caller reloads and finds its work done.
        """
        check_batch(operations)
        return self._retrying(lambda: self._submit(table, operations))

    def _retrying(self, call: Callable[[], T]) -> T:
        """Run a non-idempotent call (POST), again after a transport failure; counts round trips."""
        for attempt in range(TRANSPORT_ATTEMPTS):
            self.round_trips.add()
            try:
                return call()
            except (ServiceRequestError, ServiceResponseError):
                if attempt == TRANSPORT_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _submit(self, table: str, operations: Sequence[Operation]) -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self.table(table).submit_transaction(list(operations))]
        except TableTransactionError as exc:
            if exc.error_code in ("UpdateConditionNotSatisfied", "EntityAlreadyExists", "ConditionNotMet"):
                raise ConcurrencyConflict(str(exc.error_code)) from exc
            raise
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise ConcurrencyConflict(str(exc.status_code)) from exc
            raise


def check_batch(operations: Iterable[Operation]) -> None:
    ops = list(operations)
    if not ops:
        raise BatchRefused("empty transaction")
    if len(ops) > MAX_BATCH:
        raise BatchRefused(f"{len(ops)} entities in one transaction; Azure allows {MAX_BATCH}")
    partitions = {op[1]["PartitionKey"] for op in ops}
    if len(partitions) != 1:
        raise BatchRefused(f"transaction spans {len(partitions)} partitions")
    keys = [op[1]["RowKey"] for op in ops]
    if len(set(keys)) != len(keys):
        raise BatchRefused("an entity appears twice in one transaction")


def prefix_filter(prefix: str, column: str = "PartitionKey") -> tuple[str, dict[str, Any]]:
    """A range filter for keys starting with ``prefix`` (Table Storage has no LIKE)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"{column} ge @lo and {column} lt @hi", {"lo": prefix, "hi": upper}
