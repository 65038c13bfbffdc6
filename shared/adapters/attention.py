"""Needs attention: what a run could not do for one subscriber, or for a whole tenant.

When one subscriber of a batch fails (a value billing cannot compute with, a document
that will not store), the worker records it here and bills the rest of the batch; when a
tenant's run cannot even be planned, the timer records it at tenant level and runs the
other tenants. Customer service sees the rows (``GET /api/merchant/attention``); each
run retries the subscribers it holds and removes a row once its subscriber succeeds.

Table ``Tenants``, beside the run's watermark (``Tenants``), so the timer reads the
watermark and the subscribers to retry in the one round trip it made for the watermark
alone:

| PartitionKey | RowKey                                 | holds                                  |
|--------------|----------------------------------------|----------------------------------------|
| ``run|{run}``| ``{tenant}``                           | the run's watermark                    |
| ``run|{run}``| ``{tenant}|{subscriber_no:010d}``      | needs attention; subscriber 0 is the   |
|              | ``{tenant}|{subscriber_no:010d}|{ref}``| tenant's run itself; ``ref`` a notice  |

A row is keyed by what failed, not by when or how often: the same failure recorded
again (a redelivered message, the next day's retry) counts up on the one row.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceNotFoundError,
)

from ..ports import TENANT_RUN, Attention, ConcurrencyConflict, RunState
from ..ports import transient as transient  # re-exported: its home is the ports module
from .tables import Storage

TABLE = "Tenants"
ATTEMPTS = 5





def _pk(run: str) -> str:
    return f"run|{run}"


def _rk(tenant: str, subscriber_no: int, ref: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._:-]", "_", ref)[:200]  # a key holds no '/', '#', '?', '|' or controls
    return f"{tenant}|{subscriber_no:010d}" + (f"|{safe}" if safe else "")


def _range(tenant: str) -> dict[str, str]:
    return {"lo": f"{tenant}|", "hi": f"{tenant}}}"}  # '}' follows '|': every row key under the tenant


def _attention(row: dict[str, Any]) -> Attention:
    _tenant, number, *ref = row["RowKey"].split("|", 2)
    return Attention(row["PartitionKey"].split("|", 1)[1], int(number), ref[0] if ref else "",
                     date.fromisoformat(row["FirstDay"]), date.fromisoformat(row["Day"]), row["Reason"],
                     int(row["Count"]))


class AttentionStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def run_state(self, tenant: str, run: str) -> RunState:
        """The watermark row and the attention rows of one tenant's run: one query."""
        rows = list(self.storage.query(  # the SDK finds @names between spaces: "@hi ))", not "@hi))"
            TABLE, "PartitionKey eq @pk and (RowKey eq @tenant or (RowKey gt @lo and RowKey lt @hi ))",
            {"pk": _pk(run), "tenant": tenant, **_range(tenant)}, ["RowKey", "Through", "FirstDay"]))
        head = next((r for r in rows if r["RowKey"] == tenant), None)
        failed = next((r for r in rows if r["RowKey"] == _rk(tenant, TENANT_RUN, "")), None)
        return RunState(date.fromisoformat(head["Through"]) if head else None,
                        frozenset(int(r["RowKey"].split("|")[1]) for r in rows if r["RowKey"] != tenant),
                        date.fromisoformat(failed["FirstDay"]) if failed else None)

    def record(self, tenant: str, run: str, subscriber_no: int, day: date, reason: str, ref: str = "") -> Attention:
        """Enter the failure, or count it again on the row already there (ETag-guarded)."""
        pk, rk = _pk(run), _rk(tenant, subscriber_no, ref)
        for _ in range(ATTEMPTS):
            row = self.storage.get(TABLE, pk, rk)
            entity = {"PartitionKey": pk, "RowKey": rk, "Day": day.isoformat(), "Reason": reason,
                      "FirstDay": row["FirstDay"] if row else day.isoformat(),
                      "Count": int(row["Count"]) + 1 if row else 1}
            if row is None:
                if self.storage.insert(TABLE, entity):
                    return _attention(entity)
                continue
            try:
                self.storage.transact(TABLE, [("update", entity, {"mode": "replace", "etag": row["etag"],
                                                                  "match_condition": MatchConditions.IfNotModified})])
            except ConcurrencyConflict:
                continue
            return _attention(entity)
        raise ConcurrencyConflict(f"attention row {rk} kept changing")

    def find(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> Attention | None:
        row = self.storage.get(TABLE, _pk(run), _rk(tenant, subscriber_no, ref))
        return _attention(row) if row else None

    def resolve(self, tenant: str, run: str, subscriber_no: int, ref: str = "") -> None:
        """Remove the row (a row already gone is no error)."""
        try:
            self.storage.delete(TABLE, _pk(run), _rk(tenant, subscriber_no, ref))
        except ResourceNotFoundError:
            pass

    def all(self, tenant: str) -> list[Attention]:
        """Every row of the tenant, of every run: for customer service, never a hot path."""
        rows = self.storage.query(TABLE, "PartitionKey ge 'run|' and PartitionKey lt 'run}' "
                                         "and RowKey gt @lo and RowKey lt @hi", _range(tenant))
        return [_attention(r) for r in rows]
