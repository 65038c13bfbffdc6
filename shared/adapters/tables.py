"""Azure Table Storage: the one client, round-trip counting, and transaction guards.

Every call that goes to the service passes through ``Storage`` so round trips can be
counted per operation (the figure the benchmarks steer by). ``transact`` refuses what
Azure would refuse but Azurite accepts: a batch spanning partitions, or more than 100
entities (Table service, "Performing entity group transactions"). Every write also
refuses, before anything is sent, an entity Azure would reject or the SDK could not
encode ("Understanding the Table service data model"): a property over 64 KiB (a
string is UTF-16: 32 Ki characters), an entity over 1 MiB, more than 252 properties,
an ``int`` outside Int32 (an Int64 goes as ``(value, EdmType.INT64)``), a datetime
before 1601, a key over 1 KiB or with ``/ \\ # ?`` or a control character. So a value
that cannot be stored fails the whole operation with a typed ``StorageLimit`` and
writes nothing, instead of half-writing or failing inside the SDK.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient, TableTransactionError
from requests import Session
from requests.adapters import HTTPAdapter

from ..ports import BatchRefused, ConcurrencyConflict, StorageLimit, TooManyEntities
from . import batch

T = TypeVar("T")
MAX_BATCH = 100
MAX_BATCH_BYTES = 4 * 1024 * 1024  # an entity-group transaction's payload (Table service limit)
TRANSPORT_ATTEMPTS = 4
TABLES = ("Catalogue", "Subscribers", "Numbering", "Indexes", "Tenants", "Payments", "Access")


class EntityTooLarge(StorageLimit):
    """A property over 64 KiB, an entity over 1 MiB, or too many properties."""


class ValueOutOfRange(StorageLimit):
    """A value the Table service cannot hold (Int32/Int64 bounds, dates before 1601, a bad key)."""


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
            return _from_table(entity) | {"etag": entity.metadata.get("etag")}
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
                yield _from_table(entity) | {"etag": entity.metadata.get("etag")}

    def first(self, table: str, query_filter: str, parameters: dict[str, Any] | None = None,
              select: list[str] | None = None) -> dict[str, Any] | None:
        """The first entity matching ``query_filter`` (one round trip), or None."""
        pages = self.table(table).query_entities(query_filter, parameters=parameters, select=select,
                                                 results_per_page=1).by_page()
        self.round_trips.add()
        for entity in next(pages, []):
            return _from_table(entity) | {"etag": entity.metadata.get("etag")}
        return None

    def upsert(self, table: str, entity: dict[str, Any]) -> None:
        entity = _to_table(entity)
        check_entity(entity)
        self.round_trips.add()
        self.table(table).upsert_entity(entity)

    def insert(self, table: str, entity: dict[str, Any]) -> bool:
        """Insert; False if the entity already exists (the atomic create-if-absent).

        Retried on a lost response like ``transact``: a retry of an insert that did
        happen answers "exists", which every caller treats as "someone has it; read it".
        """
        entity = _to_table(entity)
        check_entity(entity)
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
        operations = [(op[0], _to_table(op[1]), *op[2:]) for op in operations]
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
            client = self.table(table)
            if "submit_transaction" in vars(client):  # replaced on this client (a wrapper injecting faults): its call
                return [dict(r) for r in client.submit_transaction(list(operations))]
            return batch.submit(client, operations)  # what the SDK's call sends and answers, built cheaply (batch.py)
        except TableTransactionError as exc:
            code = getattr(exc, "error_code", None)  # set by the SDK's error decoding, not declared on the class
            if code in ("UpdateConditionNotSatisfied", "EntityAlreadyExists", "ConditionNotMet"):
                conflict = ConcurrencyConflict(str(code))
                conflict.at = getattr(exc, "index", None)  # which operation (Azure says "{index}:...")
                raise conflict from exc
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
        raise TooManyEntities(f"{len(ops)} entities in one transaction; Azure allows {MAX_BATCH}")
    partitions = {op[1]["PartitionKey"] for op in ops}
    if len(partitions) != 1:
        raise BatchRefused(f"transaction spans {len(partitions)} partitions")
    keys = [op[1]["RowKey"] for op in ops]
    if len(set(keys)) != len(keys):
        raise BatchRefused("an entity appears twice in one transaction")
    for op in ops:
        if op[0] != "delete":
            check_entity(op[1])


MAX_PROPERTY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTIES = 252  # besides PartitionKey, RowKey and Timestamp
MAX_KEY_CHARS = 1024
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
EARLIEST = datetime(1601, 1, 1, tzinfo=UTC)
BAD_KEY = re.compile("[/\\\\#?\x00-\x1f\x7f-\x9f]")
SYSTEM = ("PartitionKey", "RowKey", "etag", "Timestamp")


def _to_table(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity with every int beyond Int32 typed Int64 (the SDK sends a plain int as
    Int32 and refuses a larger one), so money within business limits always stores."""
    return {k: (v, EdmType.INT64) if type(v) is int and not INT32[0] <= v <= INT32[1] else v
            for k, v in entity.items()}


def _from_table(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity with Int64 values as plain ints again (the SDK returns them wrapped)."""
    return {k: v.value if isinstance(v, EntityProperty) and v.edm_type is EdmType.INT64 else v
            for k, v in entity.items()}


def _utf16_bytes(text: str) -> int:
    return 2 * len(text) if text.isascii() else len(text.encode("utf-16-le"))


def check_entity(entity: Mapping[str, Any]) -> int:
    """Refuse an entity the Table service (or the SDK) would refuse; its size as the
    service counts it (returned): 4 bytes + keys in UTF-16 + per property 8 bytes, its
    name in UTF-16 and its value."""
    size = 4
    for key in ("PartitionKey", "RowKey"):
        value = str(entity.get(key, ""))
        if len(value) > MAX_KEY_CHARS or BAD_KEY.search(value):
            raise ValueOutOfRange(f"{key} {value[:60]!r}...: at most {MAX_KEY_CHARS} characters, "
                                  "no / \\ # ? or control characters")
        size += _utf16_bytes(value)
    names = [n for n in entity if n not in SYSTEM]
    if len(names) > MAX_PROPERTIES:
        raise EntityTooLarge(f"{len(names)} properties; Table Storage allows {MAX_PROPERTIES}")
    for name in names:
        size += 8 + _utf16_bytes(name) + _value_bytes(name, entity[name])
    if size > MAX_ENTITY_BYTES:
        raise EntityTooLarge(f"entity {entity.get('RowKey')!r} is {size} bytes; Table Storage allows "
                             f"{MAX_ENTITY_BYTES} (1 MiB)")
    return size


def _value_bytes(name: str, value: Any) -> int:
    kind: Any = None
    if isinstance(value, tuple):
        value, kind = value
    if isinstance(value, str) and kind not in (EdmType.INT64, "Edm.Int64"):
        size = 4 + _utf16_bytes(value)
    elif isinstance(value, (bytes, bytearray)):
        size = 4 + len(value)
    elif type(value) is int or kind in (EdmType.INT64, "Edm.Int64"):
        low, high = INT32 if kind is None else INT64
        if not low <= int(value) <= high:
            raise ValueOutOfRange(f"{name} = {value} is outside {'Int32' if kind is None else 'Int64'} "
                                  f"[{low}, {high}]")
        return 8
    elif isinstance(value, datetime):
        if (value if value.tzinfo else value.replace(tzinfo=UTC)) < EARLIEST:
            raise ValueOutOfRange(f"{name} = {value}: Table Storage dates start in 1601")
        return 8
    else:
        return 16  # bool, float, GUID, None: fixed and small
    if size > MAX_PROPERTY_BYTES:
        raise EntityTooLarge(f"property {name} is {size} bytes; Table Storage allows {MAX_PROPERTY_BYTES} (64 KiB)")
    return size


def prefix_filter(prefix: str, column: str = "PartitionKey") -> tuple[str, dict[str, Any]]:
    """A range filter for keys starting with ``prefix`` (Table Storage has no LIKE)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"{column} ge @lo and {column} lt @hi", {"lo": prefix, "hi": upper}
