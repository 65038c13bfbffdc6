"""Nets OCR giro transmissions (Norway): incoming payments with KID, read with netsgiro.

Nets OCR giro system manual (``../shared/references/nets/``), chapter 3: a transmission
(``NY000010`` ... ``NY000089``) holds assignments (``NY090020`` ... ``NY090088``), each
with transactions of two or three records (amount items 1, 2 and 3). netsgiro parses the
records; it does not check the end records' control totals, so this module does: per
assignment and for the transmission, the number of transactions, the number of
records and the total amount. Amounts stay integer øre end to end (netsgiro's records
carry øre; its ``Decimal`` kroner are not used).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import netsgiro
from netsgiro import records as nr

from .payments import ControlTotalError, IncomingPayment


@dataclass
class _Totals:
    transactions: set[int] = field(default_factory=set)
    records: int = 0
    amount: int = 0

    def add(self, record: Any) -> None:
        self.records += 1
        if isinstance(record, nr.TransactionAmountItem1):
            self.transactions.add(record.transaction_number)
            self.amount += int(record.amount)
        elif isinstance(record, nr.AvtaleGiroAgreement):
            self.transactions.add(record.transaction_number)

    def check(self, what: str, end: Any) -> None:
        found = (len(self.transactions), self.records, self.amount)
        said = (int(end.num_transactions), int(end.num_records), int(end.total_amount or 0))
        if found != said:
            raise ControlTotalError(f"{what}: end record says {said[0]} transactions, {said[1]} records, "
                                    f"{said[2]} øre; the file holds {found[0]}, {found[1]}, {found[2]}")


def check_totals(parsed: Sequence[Any]) -> None:
    """Raise ControlTotalError unless every end record agrees with what it closes."""
    transmission, assignment = _Totals(), None
    for record in parsed:
        transmission.add(record)
        if isinstance(record, nr.AssignmentStart):
            assignment = _Totals()
        if assignment is not None:
            assignment.add(record)
        if isinstance(record, nr.AssignmentEnd):
            if assignment is None:
                raise ControlTotalError("assignment end without its start")
            assignment.check("assignment", record)
            assignment = None
        elif isinstance(record, nr.TransmissionEnd):
            transmission.check("transmission", record)
            return
    raise ControlTotalError("the transmission has no end record: it may be cut short")


def read(text: str) -> netsgiro.Transmission:
    """The transmission, parsed once, after its control totals are checked."""
    records = nr.parse(text)
    check_totals(records)
    return netsgiro.Transmission.from_records(records)


def payments(text: str) -> Iterator[IncomingPayment]:
    """The OCR giro payments of a transmission, after its control totals are checked."""
    return payments_of(read(text))


def payments_of(transmission: netsgiro.Transmission) -> Iterator[IncomingPayment]:
    for assignment in transmission.assignments:
        if assignment.service_code != netsgiro.ServiceCode.OCR_GIRO:
            continue  # AvtaleGiro agreements and claims are read elsewhere
        for tx in assignment.transactions:
            yield IncomingPayment(
                source="ocr_giro",
                line_id=f"{transmission.number}.{assignment.number}.{tx.number}",
                amount_minor=int(tx.amount_in_cents),
                currency="NOK",
                reference=(tx.kid or "").strip() or None,
                payment_date=tx.date or transmission.date or date.min,
                payer_account=(tx.debit_account or "").strip() or None,
                payee_account=assignment.account,
                information=tuple(t for t in ((tx.text or "").strip(),) if t),
            )


def transmission(paid: Sequence[tuple[str, int]], on: date, number: str = "1000001",
                 account: str = "88888888888") -> str:
    """An OCR giro transmission paying ``(kid, amount in øre)`` pairs, written by netsgiro.

    What a bank sends; the demo's simulated bank and the tests use it. Øre become kroner
    exactly (``Decimal(øre) / 100``), never through a float.
    """
    from decimal import Decimal

    out = netsgiro.Transmission(number=number, data_transmitter="00008080", data_recipient=netsgiro.NETS_ID,
                                date=on)
    assignment = netsgiro.Assignment(service_code=netsgiro.ServiceCode.OCR_GIRO,
                                     type=netsgiro.AssignmentType.TRANSACTIONS, number=number[-7:].rjust(7, "0"),
                                     account=account, agreement_id="000000000", date=on)
    for i, (kid, amount) in enumerate(paid, 1):
        assignment.transactions.append(netsgiro.Transaction(
            service_code=netsgiro.ServiceCode.OCR_GIRO, type=netsgiro.TransactionType.PURCHASE_WITH_TEXT, number=i,
            date=on, amount=Decimal(amount) / 100, kid=kid, reference="000000001", text=None, centre_id="13",
            day_code=on.day, partial_settlement_number=1, partial_settlement_serial_number="00001", sign="0",
            form_number="9876543210", bank_date=on, debit_account="12345678903", filler=None))
    out.assignments.append(assignment)
    return str(out.to_ocr())


@dataclass(frozen=True, slots=True)
class MandateRecord:
    """An AvtaleGiro agreement record (AvtaleGiro system specification, "avtaler"):
    the payer's bank reports a new or changed mandate, a deleted one, or an active one."""

    line_id: str
    payee_account: str
    kid: str
    registration: str  # "new_or_updated" | "deleted" | "active"
    notify: bool  # the payer wants a notice from the payee before each claim


_REGISTRATION = {
    netsgiro.AvtaleGiroRegistrationType.NEW_OR_UPDATED_AGREEMENT: "new_or_updated",
    netsgiro.AvtaleGiroRegistrationType.DELETED_AGREEMENT: "deleted",
    netsgiro.AvtaleGiroRegistrationType.ACTIVE_AGREEMENT: "active",
}


def mandates(text: str) -> Iterator[MandateRecord]:
    """The AvtaleGiro agreement records of a transmission (after its control totals)."""
    return mandates_of(read(text))


def mandates_of(transmission: netsgiro.Transmission) -> Iterator[MandateRecord]:
    for assignment in transmission.assignments:
        if assignment.type != netsgiro.AssignmentType.AVTALEGIRO_AGREEMENTS:
            continue
        for agreement in assignment.transactions:
            yield MandateRecord(f"{transmission.number}.{assignment.number}.{agreement.number}",
                                assignment.account, str(agreement.kid).strip(),
                                _REGISTRATION[agreement.registration_type], bool(agreement.notify))


def agreements_transmission(changes: Sequence[tuple[str, str, bool]], on: date, number: str = "2000001",
                            account: str = "88888888888") -> str:
    """A transmission of AvtaleGiro agreement records ``(kid, registration, notify)``, by netsgiro."""
    by_name = {v: k for k, v in _REGISTRATION.items()}
    out = netsgiro.Transmission(number=number, data_transmitter="00008080", data_recipient=netsgiro.NETS_ID,
                                date=on)
    assignment = netsgiro.Assignment(service_code=netsgiro.ServiceCode.AVTALEGIRO,
                                     type=netsgiro.AssignmentType.AVTALEGIRO_AGREEMENTS,
                                     number=number[-7:].rjust(7, "0"), account=account)
    for i, (kid, registration, notify) in enumerate(changes, 1):
        assignment.transactions.append(netsgiro.Agreement(service_code=netsgiro.ServiceCode.AVTALEGIRO, number=i,
                                                          registration_type=by_name[registration], kid=kid,
                                                          notify=notify))
    out.assignments.append(assignment)
    return str(out.to_ocr())
