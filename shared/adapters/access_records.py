"""Each login's access row and each tenant's site table in Table Storage (``ports.AccessRecords``).

Placeholder of the ground commit: the helper who owns access claims writes it."""

from __future__ import annotations

from ..domain.identity import AccessRecord, SiteTable
from .tables import Storage


class AccessRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, tenant: str, login: str) -> AccessRecord | None:
        raise NotImplementedError

    def read(self, tenant: str, login: str) -> tuple[AccessRecord | None, str | None]:
        raise NotImplementedError

    def put(self, tenant: str, record: AccessRecord, etag: str | None) -> None:
        raise NotImplementedError

    def delete(self, tenant: str, login: str) -> None:
        raise NotImplementedError

    def sites(self, tenant: str) -> tuple[SiteTable, str | None]:
        raise NotImplementedError

    def put_sites(self, tenant: str, table: SiteTable, etag: str | None) -> None:
        raise NotImplementedError
