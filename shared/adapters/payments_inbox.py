"""The payments inbox in table ``Payments``: payments awaiting approval and records set aside.

| PartitionKey    | RowKey      | holds                                                            |
|-----------------|-------------|------------------------------------------------------------------|
| ``aa|{tenant}`` | payment id  | an identified payment awaiting approval (manual 10.2)            |
| ``rp|{tenant}`` | payment id  | a record set aside for customer service ("requires processing") |

Columns of an ``aa`` row: ``Body`` (the ``ReceivedPayment``), ``SubscriberNo``, ``File``,
``Amount``, ``Currency``, ``State``, and as it is handled ``Target``, ``ClaimedAt``,
``ApprovedBy`` or ``ReversedBy``. Of an ``rp`` row: ``Body`` (the ``IncomingPayment``,
``UnreadableRecord`` or mandate as imported), ``Kind``, ``ReasonCode``, ``Reason``,
``File``, ``Report``, ``Amount``, ``Currency``, ``Raw`` (not on mandates), ``State``, and
as it is handled ``Target``, ``ClaimedAt``, ``ResolvedTo``. Rows are *created*, so a
record imported twice is kept once. Rows written before handling states existed have no
``State``: they are done if their ``ResolvedTo``/``ApprovedBy`` says so, else open; rows
without ``Kind`` are payments. A claim and a take-back merge under the row's ETag.

The other rows of table ``Payments`` (transmissions, import reports, attempts) are the
import log's (``adapters.imports``). ``booked_payments`` reads the ``1|pay|`` rows of the
subscribers' partitions (``adapters.accounts``) for customer service's search.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core import MatchConditions

from ..domain.payments import BookedPayment, ReceivedPayment
from ..formats.payments import IncomingPayment, UnreadableRecord
from ..ports import AwaitingPayment, Handling, Hold, MandateAside, SetAside
from .accounts import AccountRepository
from .codec import dumps, loads
from .tables import Storage, prefix_filter

TABLE = "Payments"
BOOKED = ("1|pay|", "1|pay}")  # the RowKey range of a partition's booked payments


def _awaiting_pk(tenant: str) -> str:
    return f"aa|{tenant}"


def _aside_pk(tenant: str) -> str:
    return f"rp|{tenant}"


class PaymentsInbox:
    def __init__(self, storage: Storage, accounts: AccountRepository | None = None) -> None:
        self.storage = storage
        self.accounts = accounts or AccountRepository(storage)

    # ---- requires processing ----------------------------------------------------------------
    def set_aside(self, tenant: str, aside: SetAside) -> bool:
        return self.storage.insert(TABLE, _aside_row(tenant, aside))

    def set_asides(self, tenant: str, id_prefix: str = "") -> list[SetAside]:
        query, params = "PartitionKey eq @pk", {"pk": _aside_pk(tenant)}
        if id_prefix:
            rk_query, rk_params = prefix_filter(id_prefix, "RowKey")
            query, params = f"{query} and {rk_query}", params | rk_params
        return [_aside(r) for r in self.storage.query(TABLE, query, params)]

    def set_aside_record(self, tenant: str, payment_id: str) -> SetAside | None:
        row = self.storage.get(TABLE, _aside_pk(tenant), payment_id)
        return _aside(row) if row else None

    # ---- awaiting approval ------------------------------------------------------------------
    def await_approval(self, tenant: str, awaiting: AwaitingPayment) -> bool:
        return self.storage.insert(TABLE, {
            "PartitionKey": _awaiting_pk(tenant), "RowKey": awaiting.id, "Body": dumps(awaiting.payment),
            "SubscriberNo": awaiting.subscriber_no, "File": awaiting.file, "Amount": awaiting.payment.amount_minor,
            "Currency": awaiting.payment.currency, "State": awaiting.hold.state.value})

    def awaiting(self, tenant: str) -> list[AwaitingPayment]:
        rows = self.storage.query(TABLE, "PartitionKey eq @pk", {"pk": _awaiting_pk(tenant)})
        return sorted((_awaiting(r) for r in rows), key=lambda a: a.id)

    def awaiting_payment(self, tenant: str, payment_id: str) -> AwaitingPayment | None:
        row = self.storage.get(TABLE, _awaiting_pk(tenant), payment_id)
        return _awaiting(row) if row else None

    # ---- handling ---------------------------------------------------------------------------
    def claim(self, tenant: str, record: SetAside | AwaitingPayment, target: str, at: datetime) -> None:
        self._guarded(tenant, record, {"State": Handling.CLAIMED.value, "Target": target, "ClaimedAt": at})

    def release(self, tenant: str, record: SetAside | AwaitingPayment) -> None:
        self.storage.upsert(TABLE, _key(tenant, record) | {"State": Handling.OPEN.value, "Target": ""})

    def resolved(self, tenant: str, aside: SetAside, subscriber_no: int) -> None:
        self.storage.upsert(TABLE, _key(tenant, aside) | {"State": Handling.DONE.value, "ResolvedTo": subscriber_no})

    def approved(self, tenant: str, awaiting: AwaitingPayment, approved_by: str) -> None:
        self.storage.upsert(TABLE, _key(tenant, awaiting) | {"State": Handling.DONE.value, "ApprovedBy": approved_by})

    def take_back(self, tenant: str, awaiting: AwaitingPayment, reversal_id: str) -> None:
        self._guarded(tenant, awaiting, {"State": Handling.DONE.value, "ReversedBy": reversal_id})

    def _guarded(self, tenant: str, record: SetAside | AwaitingPayment, columns: dict[str, Any]) -> None:
        """Merge ``columns`` into the record's row if it is as read; ConcurrencyConflict if not."""
        self.storage.transact(TABLE, [("update", _key(tenant, record) | columns, {
            "mode": "merge", "etag": record.hold.etag, "match_condition": MatchConditions.IfNotModified})])

    # ---- booked payments (the subscribers' partitions) -------------------------------------------
    def booked_payments(self, tenant: str, subscriber_no: int | None = None) -> Iterator[tuple[int, BookedPayment]]:
        if subscriber_no is not None:
            for row in self.accounts.history_rows(tenant, subscriber_no, *BOOKED):
                yield subscriber_no, loads(BookedPayment, row["Body"])
            return
        for number, rows in self.accounts.scan_rows(tenant):
            for row in rows:
                if row["RowKey"].startswith(BOOKED[0]):
                    yield number, loads(BookedPayment, row["Body"])


def _key(tenant: str, record: SetAside | AwaitingPayment) -> dict[str, Any]:
    pk = _aside_pk(tenant) if isinstance(record, SetAside) else _awaiting_pk(tenant)
    return {"PartitionKey": pk, "RowKey": record.id}


def _hold(row: dict[str, Any], done_column: str) -> Hold:
    """The row's handling state (rows written before states existed say done by their column)."""
    state = Handling(row.get("State") or (Handling.DONE if row.get(done_column) else Handling.OPEN))
    return Hold(state, str(row.get("Target") or ""), row.get("ClaimedAt") or None, str(row.get("etag") or ""))


def _aside_row(tenant: str, aside: SetAside) -> dict[str, Any]:
    row = {"PartitionKey": _aside_pk(tenant), "RowKey": aside.id, "Body": _body(aside.record), "Kind": aside.kind,
           "ReasonCode": aside.reason_code, "Reason": aside.reason, "File": aside.file, "Report": aside.report_id,
           "Amount": aside.amount_minor, "Currency": aside.currency, "Raw": aside.raw,
           "State": aside.hold.state.value}
    if isinstance(aside.record, MandateAside):
        del row["Raw"]  # mandate rows never had one
    return {k: v for k, v in row.items() if v is not None}


def _body(record: IncomingPayment | UnreadableRecord | MandateAside) -> str:
    if isinstance(record, MandateAside):  # as the first mandate rows were written
        return json.dumps({"kid": record.kid, "registration": record.registration, "notify": record.notify,
                           "account": record.account})
    return dumps(record)


def _aside(row: dict[str, Any]) -> SetAside:
    kind = str(row.get("Kind") or "payment")
    record: IncomingPayment | UnreadableRecord | MandateAside
    if kind == "mandate":
        record = MandateAside(**json.loads(row["Body"]))
    elif kind == "unreadable":
        record = loads(UnreadableRecord, row["Body"])
    else:
        record = loads(IncomingPayment, row["Body"])
    resolved_to = row.get("ResolvedTo")
    return SetAside(row["RowKey"], kind, record, row.get("ReasonCode") or None, str(row.get("Reason") or ""),
                    str(row.get("File") or ""), str(row.get("Report") or ""), int(row.get("Amount") or 0),
                    str(row.get("Currency") or ""), str(row.get("Raw") or ""),
                    int(resolved_to) if resolved_to not in (None, "") else None, _hold(row, "ResolvedTo"))


def _awaiting(row: dict[str, Any]) -> AwaitingPayment:
    return AwaitingPayment(loads(ReceivedPayment, row["Body"]), int(row["SubscriberNo"]), str(row.get("File") or ""),
                           row.get("Currency") or None, row.get("ApprovedBy") or None, row.get("ReversedBy") or None,
                           _hold(row, "ApprovedBy"))
