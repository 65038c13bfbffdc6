"""One-time codes and My page's sessions in Table Storage (``ports.OneTimeCodes``, ``ports.Sessions``).

Both live in the ``Indexes`` table, each row in a partition of its own so no tenant's
sign-ins queue behind one hot partition:

| PartitionKey                              | RowKey | what                                  |
|-------------------------------------------|--------|---------------------------------------|
| ``code|{tenant}|{purpose}|{target}``       | ``""`` | a ``OneTimeCode`` (salted hash only)  |
| ``session|{tenant}|{key}``                 | ``""`` | a ``Session`` (``key``: the cookie's SHA-256) |

A code is replaced and used up under ``If-Match`` (its ETag), so of two concurrent
redeemers exactly one deletes it; the other gets ``ConcurrencyConflict`` or ``NotFound``.
A session past its ``expires`` reads as None (and is removed when read): the Table
service has no time to live, so an expired row that is never read again stays until a
sweep; it holds no token that could be replayed (the cookie is not stored, only its hash).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError

from ..ports import Clock, NotFound, OneTimeCode, Session, SubscriberPrincipal
from .tables import Storage

TABLE = "Indexes"


def _code_pk(tenant: str, purpose: str, target: str) -> str:
    return f"code|{tenant}|{purpose}|{target}"


def _session_pk(tenant: str, key: str) -> str:
    return f"session|{tenant}|{key}"


def _if_match(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


class CodeRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, code: OneTimeCode) -> None:
        self.storage.upsert(TABLE, _code_entity(code))

    def get(self, tenant: str, purpose: str, target: str) -> tuple[OneTimeCode, str] | None:
        row = self.storage.get(TABLE, _code_pk(tenant, purpose, target), "")
        if row is None:
            return None
        return OneTimeCode(tenant, purpose, target, row["code_hash"], _utc(row["expires"]),
                           json.loads(row.get("payload") or "{}"), int(row.get("attempts") or 0)), row["etag"]

    def replace(self, code: OneTimeCode, etag: str) -> None:
        self._guarded(("update", _code_entity(code), {"mode": "replace"} | _if_match(etag)))

    def delete(self, tenant: str, purpose: str, target: str, etag: str) -> None:
        self._guarded(("delete", {"PartitionKey": _code_pk(tenant, purpose, target), "RowKey": ""}, _if_match(etag)))

    def _guarded(self, operation: Any) -> None:
        """One conditional write; ``ConcurrencyConflict`` if the row changed, ``NotFound`` if it is gone."""
        try:
            self.storage.transact(TABLE, [operation])
        except (TableTransactionError, ResourceNotFoundError) as exc:
            if getattr(exc, "error_code", None) == "ResourceNotFound" or isinstance(exc, ResourceNotFoundError):
                raise NotFound("the code is gone") from exc
            raise


def _code_entity(code: OneTimeCode) -> dict[str, Any]:
    return {"PartitionKey": _code_pk(code.tenant, code.purpose, code.target), "RowKey": "",
            "code_hash": code.code_hash, "expires": code.expires, "payload": json.dumps(dict(code.payload)),
            "attempts": code.attempts}


class SessionRows:
    def __init__(self, storage: Storage, clock: Clock | None = None) -> None:
        self.storage = storage
        self.clock = clock  # None: the system clock decides expiry

    def put(self, session: Session) -> None:
        p = session.principal
        self.storage.upsert(TABLE, {
            "PartitionKey": _session_pk(session.tenant, session.key), "RowKey": "", "csrf": session.csrf,
            "expires": session.expires, "return_to": session.return_to,
            "flow": json.dumps(dict(session.flow)) if session.flow is not None else "",
            "principal": json.dumps({"login": p.login, "issuer": p.issuer, "subject": p.subject,
                                     "email": p.email, "name": p.name}) if p is not None else ""})

    def get(self, tenant: str, key: str) -> Session | None:
        row = self.storage.get(TABLE, _session_pk(tenant, key), "")
        if row is None:
            return None
        expires = _utc(row["expires"])
        if expires <= (self.clock.now() if self.clock is not None else datetime.now(UTC)):
            self.delete(tenant, key)
            return None
        p = json.loads(row["principal"]) if row.get("principal") else None
        principal = SubscriberPrincipal(tenant=tenant, login=p["login"], issuer=p["issuer"], subject=p["subject"],
                                        email=p.get("email"), name=p.get("name"), session=key) if p else None
        return Session(key, tenant, row["csrf"], expires, principal,
                       json.loads(row["flow"]) if row.get("flow") else None, row.get("return_to") or "")

    def delete(self, tenant: str, key: str) -> None:
        try:
            self.storage.delete(TABLE, _session_pk(tenant, key), "")
        except ResourceNotFoundError:
            pass


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
