"""One-time codes and My page's sessions in Table Storage (``ports.OneTimeCodes``, ``ports.Sessions``).

Placeholder of the ground commit: the helper who owns sign-in writes it."""

from __future__ import annotations

from ..ports import OneTimeCode, Session
from .tables import Storage


class CodeRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, code: OneTimeCode) -> None:
        raise NotImplementedError

    def get(self, tenant: str, purpose: str, target: str) -> tuple[OneTimeCode, str] | None:
        raise NotImplementedError

    def replace(self, code: OneTimeCode, etag: str) -> None:
        raise NotImplementedError

    def delete(self, tenant: str, purpose: str, target: str, etag: str) -> None:
        raise NotImplementedError


class SessionRows:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, session: Session) -> None:
        raise NotImplementedError

    def get(self, tenant: str, key: str) -> Session | None:
        raise NotImplementedError

    def delete(self, tenant: str, key: str) -> None:
        raise NotImplementedError
