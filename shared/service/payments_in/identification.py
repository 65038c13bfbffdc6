"""Identification of a bank file's payment (P2; manual 10.2): who paid what.

The organisation by the account paid to *and* the currency (the catalogue refuses two
organisations on one account and currency), the subscriber and demand by the KID decoded
with that organisation's scheme. Pure: what cannot be identified says why (``Failed``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.exceptions import ValidationError

from ...domain.catalogue import Catalogue
from ...domain.import_report import Reason
from ...domain.payments import MatchType, ReceivedPayment
from ...formats.payments import IncomingPayment


@dataclass(frozen=True)
class Failed:
    """Why a record cannot be identified."""

    reason: Reason
    text: str


def identify(catalogue: Catalogue, pid: str, payment: IncomingPayment) -> tuple[int, ReceivedPayment] | Failed:
    """(subscriber number, payment), or why it cannot be identified."""
    account = payment.payee_account or ""
    org = catalogue.organization_by_account(account, payment.currency)
    if org is None:
        other = catalogue.organization_by_account(account, None)
        if other is not None:
            return Failed(Reason.WRONG_CURRENCY, f"paid in {payment.currency} to account {account}; no "
                          f"organisation keeps its books in {payment.currency} on it")
        return Failed(Reason.UNKNOWN_ACCOUNT, f"paid to account {payment.payee_account}, which belongs to no "
                      "organisation")
    if not payment.reference:
        return Failed(Reason.NO_REFERENCE, "no reference (KID/OCR) on the payment")
    try:
        ref = org.kid.decode(payment.reference)
    except ValidationError as exc:
        return Failed(Reason.NOT_A_KID, f"reference {payment.reference} is not a KID of {org.id}: {exc}")
    return ref.subscriber_no, ReceivedPayment(pid, org.id, payment.currency, payment.amount_minor,
                                              payment.payment_date, payment.source, MatchType.EXTERNAL_IDENTIFIER,
                                              payment.reference, ref.demand_no)
