"""An in-memory import journal (bank-file transmissions, reports, attempts) and file drop."""

from __future__ import annotations

import hashlib
import threading

from shared.domain.import_report import ImportReport
from shared.ports import TransmissionClaim


class FakeImportJournal:
    def __init__(self) -> None:
        self.transmissions: dict[tuple[str, str], TransmissionClaim] = {}
        self.saved: dict[tuple[str, str], ImportReport] = {}
        self.attempts: dict[str, tuple[int, str | None, str]] = {}  # file version -> (attempts, decision, report)
        self._lock = threading.Lock()

    def claim(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> TransmissionClaim:
        with self._lock:
            found = self.transmissions.get((tenant, key))
            if found is not None:
                return TransmissionClaim(found.digest, found.state, found.file, found.report_id)
            claim = TransmissionClaim(digest, "importing", file, report or key, fresh=True)
            self.transmissions[(tenant, key)] = claim
            return claim

    def imported(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> None:
        self.transmissions[(tenant, key)] = TransmissionClaim(digest, "imported", file, report or key)

    def release(self, tenant: str, key: str) -> None:
        self.transmissions.pop((tenant, key), None)

    def save(self, tenant: str, report: ImportReport) -> None:
        self.saved[(tenant, report.id)] = report

    def report(self, tenant: str, report_id: str) -> ImportReport | None:
        return self.saved.get((tenant, report_id))

    def reports(self, tenant: str) -> list[ImportReport]:
        return sorted((r for (t, _i), r in self.saved.items() if t == tenant), key=lambda r: r.created, reverse=True)

    @staticmethod
    def _version(name: str, data: bytes) -> str:
        return f"{hashlib.sha256(name.encode()).hexdigest()}.{hashlib.sha256(data).hexdigest()}"

    def attempt(self, name: str, data: bytes) -> tuple[int, str | None]:
        with self._lock:
            key = self._version(name, data)
            attempts, decision, report = self.attempts.get(key, (0, None, ""))
            if decision:
                return attempts, decision
            self.attempts[key] = (attempts + 1, None, report)
            return attempts + 1, None

    def decide(self, name: str, data: bytes, decision: str, report_id: str = "") -> None:
        key = self._version(name, data)
        attempts = self.attempts.get(key, (0, None, ""))[0]
        self.attempts[key] = (attempts, decision, report_id)


class FakeFileDrop:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], tuple[bytes, str]] = {}  # (container, name) -> (data, report)

    def reject(self, name: str, data: bytes, report: str) -> None:
        self.files[("rejected", name)] = (data, report)

    def quarantine(self, name: str, data: bytes, report: str) -> None:
        self.files[("quarantine", name)] = (data, report)
