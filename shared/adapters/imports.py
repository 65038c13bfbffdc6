"""Bank file bookkeeping in table ``Payments`` and the ``rejected``/``quarantine`` containers.

| PartitionKey     | RowKey                         | holds                                                  |
|------------------|--------------------------------|--------------------------------------------------------|
| ``tx|{tenant}``  | transmission key               | a transmission seen: content digest, state, its report |
| ``rep|{tenant}`` | report id                      | an import report (JSON), one per file received         |
| ``att``          | ``{name hash}.{bytes digest}`` | attempts at one blob version and the decision taken    |

The transmission row is *created* when an import starts, so the identity the bank gives
a transmission is taken once per tenant; its digest tells the same transmission sent again
(in another encoding or with other line endings) from a different one under the same
identity. The attempt row keeps the blob trigger's retry decision in storage, not in a
host's memory: a file is rejected after one failed attempt, and a host restart finds the
decision instead of trying again.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobServiceClient, ContentSettings

from ..domain.import_report import ImportReport
from ..ports import TransmissionClaim
from . import blobs
from .codec import dumps, loads
from .tables import Storage

TABLE = "Payments"
MAX_ATTEMPTS = 3  # a file whose import died this often (process killed, storage down) is rejected
REJECTED, QUARANTINE = "rejected", "quarantine"


def key_of(identity: str) -> str:
    """A table key (and URL segment) for a transmission identity: ``:`` becomes ``.``, anything
    else outside ``[A-Za-z0-9-]`` ``_xx`` (so distinct identities keep distinct keys)."""
    return re.sub(r"[^A-Za-z0-9-]", lambda m: "." if m.group() == ":" else f"_{ord(m.group()):02x}", identity)


def is_transient(exc: BaseException) -> bool:
    """Storage that did not answer or answered 'busy': worth trying the file again."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(exc, HttpResponseError) and (exc.status_code or 0) in (408, 429, 500, 502, 503, 504)



Claim = TransmissionClaim


class ImportLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # ---- transmissions --------------------------------------------------------------------
    def claim(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> Claim:
        """Take a transmission's identity for this content for import ``report`` (default: the
        transmission's own key), or learn who has it."""
        report = report or key
        row = {"PartitionKey": f"tx|{tenant}", "RowKey": key, "Digest": digest, "State": "importing", "File": file,
               "Report": report}
        if self.storage.insert(TABLE, row):
            return Claim(digest, "importing", file, report, fresh=True)
        found = self.storage.get(TABLE, f"tx|{tenant}", key)
        assert found is not None
        return Claim(found["Digest"], found["State"], found["File"], found.get("Report") or key)

    def imported(self, tenant: str, key: str, digest: str, file: str, report: str = "") -> None:
        self.storage.upsert(TABLE, {"PartitionKey": f"tx|{tenant}", "RowKey": key, "Digest": digest,
                                    "State": "imported", "File": file, "Report": report or key})

    def release(self, tenant: str, key: str) -> None:
        """Give back a claim this import took and will not use (another part of its file was refused)."""
        self.storage.delete(TABLE, f"tx|{tenant}", key)

    # ---- reports --------------------------------------------------------------------------
    def save(self, tenant: str, report: ImportReport) -> None:
        self.storage.upsert(TABLE, {"PartitionKey": f"rep|{tenant}", "RowKey": report.id, "Body": dumps(report),
                                    "Status": report.status.value, "File": report.file,
                                    "Created": report.created})

    def report(self, tenant: str, report_id: str) -> ImportReport | None:
        row = self.storage.get(TABLE, f"rep|{tenant}", report_id)
        return loads(ImportReport, row["Body"]) if row else None

    def reports(self, tenant: str) -> list[ImportReport]:
        rows = self.storage.query(TABLE, "PartitionKey eq @pk", {"pk": f"rep|{tenant}"})
        return sorted((loads(ImportReport, r["Body"]) for r in rows), key=lambda r: r.created, reverse=True)

    # ---- attempts (the blob trigger's retry decision) ----------------------------------------
    def attempt(self, name: str, data: bytes) -> tuple[int, str | None]:
        """Count an attempt at this blob version; (attempts so far, decision if one was taken)."""
        rk = _attempt_key(name, data)
        row = self.storage.get(TABLE, "att", rk)
        if row is None:
            self.storage.insert(TABLE, {"PartitionKey": "att", "RowKey": rk, "Name": name, "Attempts": 1})
            return 1, None
        if row.get("Decision"):
            return int(row["Attempts"]), str(row["Decision"])
        attempts = int(row["Attempts"]) + 1
        self.storage.transact(TABLE, [("update", _plain(row) | {"Attempts": attempts},
                                       {"mode": "replace", "etag": row["etag"],
                                        "match_condition": MatchConditions.IfNotModified})])
        return attempts, None

    def decide(self, name: str, data: bytes, decision: str, report_id: str = "") -> None:
        self.storage.upsert(TABLE, {"PartitionKey": "att", "RowKey": _attempt_key(name, data), "Name": name,
                                    "Decision": decision, "Report": report_id})


def _attempt_key(name: str, data: bytes) -> str:
    return f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.{hashlib.sha256(data).hexdigest()[:32]}"


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "etag"}


class BankFileDrop:
    """The containers a refused file goes to, each with a readable ``.error.txt`` beside it."""

    def __init__(self, blobs: BlobServiceClient) -> None:
        self.blobs = blobs

    def reject(self, name: str, data: bytes, report: str, container: str = REJECTED) -> None:
        client = blobs.container(self.blobs, container)
        client.upload_blob(name, data, overwrite=True)
        client.upload_blob(f"{name}.error.txt", report.encode(), overwrite=True,
                           content_settings=ContentSettings(content_type="text/plain; charset=utf-8"))

    def quarantine(self, name: str, data: bytes, report: str) -> None:
        self.reject(name, data, report, QUARANTINE)
