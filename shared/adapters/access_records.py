"""Each login's access row and each tenant's site table in Table Storage (``ports.AccessRecords``).

Table ``Access``:

| PartitionKey | RowKey | holds |
|---|---|---|
| ``{tenant}|{login}`` | ``record`` | the login's ``AccessRecord`` as JSON |
| ``{tenant}|sites`` | ``table`` | the tenant's ``SiteTable`` as JSON (a login key starts with ``l``: no clash) |

One partition per row, so a lookup is one point read (``GET`` by both keys) and rows of
different logins never contend. The JSON is cut into properties ``B0``, ``B1``, ... of at
most ``CHUNK`` characters (a string property holds 64 KiB, 32 Ki UTF-16 characters; an
entity 1 MiB), so a login linked to many subscribers, or a tenant with many campus
ranges, still fits one row. Writes are guarded by ETags: create-if-absent for a new row,
``If-Match`` for a replace or delete, so two racing rebuilds cannot both win.
"""

from __future__ import annotations

from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from ..domain.identity import AccessRecord, SiteTable
from ..ports import ConcurrencyConflict
from .codec import dumps, loads
from .tables import EntityTooLarge, Storage, check_entity

TABLE = "Access"
RECORD, SITES = "record", "table"
CHUNK = 30_000  # characters per property (all of them ASCII JSON: under the 64 KiB property limit)
MAX_CHUNKS = 30  # about 900 kB: under the 1 MiB entity limit


def record_key(tenant: str, login: str) -> str:
    return f"{tenant}|{login}"


def sites_key(tenant: str) -> str:
    return f"{tenant}|sites"


def _entity(pk: str, rk: str, body: str) -> dict[str, Any]:
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise EntityTooLarge(f"the access row {pk} would hold {len(body)} characters; at most {CHUNK * MAX_CHUNKS}")
    return {"PartitionKey": pk, "RowKey": rk, "Chunks": len(chunks)} | {f"B{i}": c for i, c in enumerate(chunks)}


def _body(row: dict[str, Any]) -> str:
    return "".join(str(row[f"B{i}"]) for i in range(int(row.get("Chunks") or 1)))


class AccessRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, tenant: str, login: str) -> AccessRecord | None:
        return self.read(tenant, login)[0]

    def read(self, tenant: str, login: str) -> tuple[AccessRecord | None, str | None]:
        row = self.storage.get(TABLE, record_key(tenant, login), RECORD)
        if row is None:
            return None, None
        return loads(AccessRecord, _body(row)), row["etag"]

    def put(self, tenant: str, record: AccessRecord, etag: str | None) -> None:
        self._write(_entity(record_key(tenant, record.login), RECORD, dumps(record)), etag)

    def delete(self, tenant: str, login: str, etag: str | None = None) -> None:
        """Delete the row (under ``If-Match`` when ``etag`` is given; gone already is done)."""
        self.storage.round_trips.add()
        try:
            if etag is None:
                self.storage.table(TABLE).delete_entity(record_key(tenant, login), RECORD)
            else:
                self.storage.table(TABLE).delete_entity(record_key(tenant, login), RECORD, etag=etag,
                                                        match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:  # gone already: what the delete wanted
            return
        except (ResourceModifiedError, HttpResponseError) as exc:
            if isinstance(exc, ResourceModifiedError) or exc.status_code == 412:
                raise ConcurrencyConflict(f"access row of {login} changed") from exc
            raise

    def sites(self, tenant: str) -> tuple[SiteTable, str | None]:
        row = self.storage.get(TABLE, sites_key(tenant), SITES)
        if row is None:
            return SiteTable(), None
        return loads(SiteTable, _body(row)), row["etag"]

    def put_sites(self, tenant: str, table: SiteTable, etag: str | None) -> None:
        self._write(_entity(sites_key(tenant), SITES, dumps(table)), etag)

    def _write(self, entity: dict[str, Any], etag: str | None) -> None:
        """Create (``etag`` None) or replace under ``If-Match``; ``ConcurrencyConflict`` if raced."""
        check_entity(entity)
        client = self.storage.table(TABLE)
        self.storage.round_trips.add()
        try:
            if etag is None:
                client.create_entity(entity)
            else:
                client.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"{entity['PartitionKey']} changed") from exc
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                raise ConcurrencyConflict(f"{entity['PartitionKey']} changed") from exc
            raise
