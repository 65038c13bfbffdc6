"""The delivery log (D3): one row per document, channel and attempt, in the subscriber's
partition of ``Subscribers`` (``adapters.accounts``), so the log is read with the
subscriber's documents and goes wherever the subscriber goes.

| RowKey                                   | what                                        |
|------------------------------------------|---------------------------------------------|
| ``1|dlv|{document id}|{channel}|{attempt:03d}`` | status, time, recipient, provider id, reason |

The rows are outside the ``Account``: a unit of work never writes them, and ``load``
(``RowKey lt '1'``) never reads them; ``accounts._documents`` picks its rows by prefix
(``1|crn|``, ``1|inv|``, ...), and ``1|dlv|`` sorts between ``1|crn|`` and ``1|inv|``
without being any of them. ``claim`` creates a row (``If-None-Match``: of two callers one
creates it, the other reads it back); ``update`` replaces it under its ETag.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from ..ports import ConcurrencyConflict, Delivery, DeliveryStatus
from .accounts import TABLE, AccountRepository, Place
from .tables import Storage, check_entity

PREFIX = "1|dlv|"


def row_key(document_id: str, channel: str, attempt: int) -> str:
    return f"{PREFIX}{document_id}|{channel}|{attempt:03d}"


def _entity(place: Place, d: Delivery) -> dict[str, Any]:
    return {"PartitionKey": place.pk, "RowKey": place.rk(row_key(d.document_id, d.channel, d.attempt)),
            "Status": d.status.value,
            "At": d.at.isoformat(), "Recipient": d.recipient, "ProviderId": d.provider_id, "Reason": d.reason,
            "ClaimedAt": d.claimed_at.isoformat() if d.claimed_at else ""}


def _delivery(row: dict[str, Any]) -> Delivery:
    document_id, channel, attempt = row["RowKey"][len(PREFIX):].rsplit("|", 2)
    claimed = row.get("ClaimedAt") or ""
    return Delivery(document_id, channel, int(attempt), DeliveryStatus(row["Status"]),
                    datetime.fromisoformat(row["At"]), row.get("Recipient") or "", row.get("ProviderId") or "",
                    row.get("Reason") or "", datetime.fromisoformat(claimed) if claimed else None,
                    str(row.get("etag") or ""))


class DeliveryRows:
    def __init__(self, storage: Storage, accounts: AccountRepository | None = None) -> None:
        self.storage = storage
        self.accounts = accounts or AccountRepository(storage)

    def _place(self, tenant: str, subscriber_no: int) -> Place:
        return self.accounts.place(tenant, subscriber_no)

    def claim(self, tenant: str, subscriber_no: int, delivery: Delivery) -> tuple[Delivery, bool]:
        entity = _entity(self._place(tenant, subscriber_no), delivery)
        check_entity(entity)
        self.storage.round_trips.add()
        try:
            meta = self.storage.table(TABLE).create_entity(entity)
            return replace(delivery, etag=str(meta.get("etag") or "")), True
        except ResourceExistsError:
            pass
        found = self.get(tenant, subscriber_no, delivery.document_id, delivery.channel, delivery.attempt)
        if found is None:  # created and deleted in between: never done; say so rather than guess
            raise ConcurrencyConflict(f"delivery row of {delivery.document_id} vanished")
        return found, False

    def update(self, tenant: str, subscriber_no: int, delivery: Delivery) -> Delivery:
        entity = _entity(self._place(tenant, subscriber_no), delivery)
        check_entity(entity)
        self.storage.round_trips.add()
        try:
            meta = self.storage.table(TABLE).update_entity(entity, mode=UpdateMode.REPLACE, etag=delivery.etag,
                                                           match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(f"delivery row of {delivery.document_id} changed") from exc
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                raise ConcurrencyConflict(f"delivery row of {delivery.document_id} changed") from exc
            raise
        return replace(delivery, etag=str(meta.get("etag") or ""))

    def get(self, tenant: str, subscriber_no: int, document_id: str, channel: str, attempt: int) -> Delivery | None:
        row = self.accounts.row(tenant, subscriber_no, row_key(document_id, channel, attempt))
        return _delivery(row) if row else None

    def list(self, tenant: str, subscriber_no: int, document_id: str | None = None) -> list[Delivery]:
        lo = f"{PREFIX}{document_id}|" if document_id else PREFIX
        hi = lo[:-1] + chr(ord(lo[-1]) + 1)
        return [_delivery(r) for r in self.accounts.history_rows(tenant, subscriber_no, lo, hi)]
