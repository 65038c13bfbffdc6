"""An in-memory payments inbox (``ports.PaymentsInboxPort``) for service tests without Azurite.

It keeps the records themselves and an ETag per record that changes on every write, so a
claim or take-back based on a stale read conflicts as it does on Table Storage. The
contract test (tests/service/test_payments_inbox_contract.py) runs the same assertions
against it and against ``adapters.payments_inbox.PaymentsInbox`` on Azurite.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from shared.domain.payments import BookedPayment
from shared.ports import AwaitingPayment, ConcurrencyConflict, Handling, Hold, SetAside

Record = SetAside | AwaitingPayment
R = TypeVar("R", SetAside, AwaitingPayment)


class FakePaymentsInbox:
    def __init__(self) -> None:
        self._asides: dict[tuple[str, str], SetAside] = {}
        self._awaiting: dict[tuple[str, str], AwaitingPayment] = {}
        self._booked: dict[str, list[tuple[int, BookedPayment]]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def book(self, tenant: str, subscriber_no: int, booked: BookedPayment) -> None:
        """A payment on a subscriber's ledger (what committing the account does on storage)."""
        self._booked.setdefault(tenant, []).append((subscriber_no, booked))

    # ---- requires processing ----------------------------------------------------------------
    def set_aside(self, tenant: str, aside: SetAside) -> bool:
        with self._lock:
            if (tenant, aside.id) in self._asides:
                return False
            self._asides[tenant, aside.id] = self._stamped(replace(aside, resolved_to=None), Hold(aside.hold.state))
            return True

    def set_asides(self, tenant: str, id_prefix: str = "") -> list[SetAside]:
        return sorted((a for (t, i), a in self._asides.items() if t == tenant and i.startswith(id_prefix)),
                      key=lambda a: a.id)

    def set_aside_record(self, tenant: str, payment_id: str) -> SetAside | None:
        return self._asides.get((tenant, payment_id))

    # ---- awaiting approval ------------------------------------------------------------------
    def await_approval(self, tenant: str, awaiting: AwaitingPayment) -> bool:
        with self._lock:
            if (tenant, awaiting.id) in self._awaiting:
                return False
            self._awaiting[tenant, awaiting.id] = self._stamped(
                replace(awaiting, currency=awaiting.payment.currency, approved_by=None, reversed_by=None),
                Hold(awaiting.hold.state))
            return True

    def awaiting(self, tenant: str) -> list[AwaitingPayment]:
        return sorted((a for (t, _), a in self._awaiting.items() if t == tenant), key=lambda a: a.id)

    def awaiting_payment(self, tenant: str, payment_id: str) -> AwaitingPayment | None:
        return self._awaiting.get((tenant, payment_id))

    # ---- handling ---------------------------------------------------------------------------
    def claim(self, tenant: str, record: Record, target: str, at: datetime) -> None:
        self._write(tenant, record, Hold(Handling.CLAIMED, target, at), guarded=True)

    def release(self, tenant: str, record: Record) -> None:
        current = self._current(tenant, record)
        self._write(tenant, record, replace(current.hold, state=Handling.OPEN, target=""))

    def resolved(self, tenant: str, aside: SetAside, subscriber_no: int) -> None:
        current = self._current(tenant, aside)
        self._write(tenant, aside, replace(current.hold, state=Handling.DONE), resolved_to=subscriber_no)

    def approved(self, tenant: str, awaiting: AwaitingPayment, approved_by: str) -> None:
        current = self._current(tenant, awaiting)
        self._write(tenant, awaiting, replace(current.hold, state=Handling.DONE), approved_by=approved_by)

    def take_back(self, tenant: str, awaiting: AwaitingPayment, reversal_id: str) -> None:
        current = self._current(tenant, awaiting)
        self._write(tenant, awaiting, replace(current.hold, state=Handling.DONE), guarded=True,
                    reversed_by=reversal_id)

    # ---- booked payments --------------------------------------------------------------------
    def booked_payments(self, tenant: str, subscriber_no: int | None = None) -> Iterator[tuple[int, BookedPayment]]:
        for payer, booked in list(self._booked.get(tenant, [])):
            if subscriber_no is None or payer == subscriber_no:
                yield payer, booked

    # ---- the store --------------------------------------------------------------------------
    def _current(self, tenant: str, record: Record) -> Record:
        found: Record | None = (self._asides if isinstance(record, SetAside) else self._awaiting).get(
            (tenant, record.id))
        if found is None:  # Table Storage's upsert would create a row without a body: never done here
            raise AssertionError(f"no inbox record {record.id}")
        return found

    def _write(self, tenant: str, record: Record, hold: Hold, guarded: bool = False, **changes: object) -> None:
        with self._lock:
            current = self._current(tenant, record)
            if guarded and current.hold.etag != record.hold.etag:
                raise ConcurrencyConflict(f"inbox record {record.id} changed since it was read")
            if isinstance(current, SetAside):
                self._asides[tenant, record.id] = self._stamped(replace(current, **changes), hold)  # type: ignore[arg-type]
            else:
                self._awaiting[tenant, record.id] = self._stamped(replace(current, **changes), hold)  # type: ignore[arg-type]

    def _stamped(self, record: R, hold: Hold) -> R:
        return replace(record, hold=replace(hold, etag=f"fake-{next(self._etags)}"))
