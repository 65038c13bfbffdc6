"""In-memory fakes of the self-service ports: access records, one-time codes, sessions."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from shared.domain.identity import AccessRecord, SiteTable
from shared.ports import ConcurrencyConflict, NotFound, OneTimeCode, Session

_etags = itertools.count(1)


def _etag() -> str:
    return f"W/{next(_etags)}"


@dataclass
class FakeAccessRecords:
    records: dict[tuple[str, str], tuple[AccessRecord, str]] = field(default_factory=dict)
    site_tables: dict[str, tuple[SiteTable, str]] = field(default_factory=dict)
    reads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, tenant: str, login: str) -> AccessRecord | None:
        return self.read(tenant, login)[0]

    def read(self, tenant: str, login: str) -> tuple[AccessRecord | None, str | None]:
        with self._lock:
            self.reads += 1
            found = self.records.get((tenant, login))
            return found if found is not None else (None, None)

    def put(self, tenant: str, record: AccessRecord, etag: str | None) -> None:
        with self._lock:
            current = self.records.get((tenant, record.login))
            if (current is None) != (etag is None) or (current is not None and current[1] != etag):
                raise ConcurrencyConflict(f"access record {record.login} changed")
            self.records[(tenant, record.login)] = (record, _etag())

    def delete(self, tenant: str, login: str, etag: str | None = None) -> None:
        with self._lock:
            current = self.records.get((tenant, login))
            if etag is not None and current is not None and current[1] != etag:
                raise ConcurrencyConflict(f"access record {login} changed")
            self.records.pop((tenant, login), None)

    def sites(self, tenant: str) -> tuple[SiteTable, str | None]:
        with self._lock:
            self.reads += 1
            found = self.site_tables.get(tenant)
            return found if found is not None else (SiteTable(), None)

    def put_sites(self, tenant: str, table: SiteTable, etag: str | None) -> None:
        with self._lock:
            current = self.site_tables.get(tenant)
            if (current is None) != (etag is None) or (current is not None and current[1] != etag):
                raise ConcurrencyConflict(f"site table of {tenant} changed")
            self.site_tables[tenant] = (table, _etag())


@dataclass
class FakeOneTimeCodes:
    codes: dict[tuple[str, str, str], tuple[OneTimeCode, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, code: OneTimeCode) -> None:
        with self._lock:
            self.codes[(code.tenant, code.purpose, code.target)] = (code, _etag())

    def get(self, tenant: str, purpose: str, target: str) -> tuple[OneTimeCode, str] | None:
        with self._lock:
            return self.codes.get((tenant, purpose, target))

    def replace(self, code: OneTimeCode, etag: str) -> None:
        with self._lock:
            key = (code.tenant, code.purpose, code.target)
            current = self.codes.get(key)
            if current is None:
                raise NotFound(f"no code for {code.purpose}")
            if current[1] != etag:
                raise ConcurrencyConflict("the code changed")
            self.codes[key] = (code, _etag())

    def delete(self, tenant: str, purpose: str, target: str, etag: str) -> None:
        with self._lock:
            current = self.codes.get((tenant, purpose, target))
            if current is None:
                raise NotFound(f"no code for {purpose}")
            if current[1] != etag:
                raise ConcurrencyConflict("the code changed")
            del self.codes[(tenant, purpose, target)]


@dataclass
class FakeSessions:
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    now: object = None  # a clock (``now()``) for expiry; None: never expires

    def put(self, session: Session) -> None:
        self.sessions[(session.tenant, session.key)] = session

    def get(self, tenant: str, key: str) -> Session | None:
        found = self.sessions.get((tenant, key))
        if found is None:
            return None
        clock = self.now
        if clock is not None and found.expires <= clock.now():  # type: ignore[attr-defined]
            return None
        return found

    def delete(self, tenant: str, key: str) -> None:
        self.sessions.pop((tenant, key), None)
