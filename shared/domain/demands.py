"""An open demand: what is still owed on one invoice (P3, D1).

Three concerns, each a value of its own: ``DemandTerms``, what the invoice asked for
when it was issued (never changed while it is open); what is open of it
(``open_minor``, with the reminder fees ``fees_minor`` charged on it); and
``DunningState``, what dunning has done about it (manual 7.7, 7.9). Settlement
(``settlement.settle``) changes what is open, the dunning visit the dunning state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .dunning import Reminder
from .invoicing import DocumentKind
from .ledger import VatPart


@dataclass(frozen=True, slots=True)
class DemandTerms:
    """What the invoice asked for when it was issued: never changed while the demand is open."""

    invoice_number: int
    organization_id: str
    subscription_id: str
    due_date: date
    kind: DocumentKind = DocumentKind.SUBSCRIPTION
    total_minor: int = 0  # the invoice's total (what its ledger entry debited)
    amount_due_minor: int = 0  # what the invoice asked for (total less credit applied)
    period_start: date | None = None
    period_end: date | None = None  # first day after the invoiced period
    vat: tuple[VatPart, ...] = ()  # the invoice's VAT breakdown, for a credit note without the invoice at hand


@dataclass(frozen=True, slots=True)
class DunningState:
    """What dunning has done about a demand (manual 7.7, 7.9)."""

    reminders: tuple[Reminder, ...] = ()
    postponed_to: date | None = None  # of the next reminder (manual 7.9 "Postpone reminder")
    postpone_reason: str = ""
    stop_noticed: bool = False  # "payment stop in N days" sent


@dataclass(frozen=True, slots=True)
class OpenDemand:
    """What is still owed on one invoice: its ``terms``, what is open of it, and its ``dunning``.

    ``open_minor`` includes the unpaid reminder fees (``fees_minor`` charged on it);
    payments pay the invoice before the fees. A reminder's demand number (its KID)
    names this demand too.
    """

    demand_no: int
    terms: DemandTerms
    open_minor: int
    fees_minor: int = 0
    dunning: DunningState = DunningState()

    @property
    def fees_open_minor(self) -> int:
        return min(self.fees_minor, self.open_minor)

    @property
    def principal_open_minor(self) -> int:
        return self.open_minor - self.fees_open_minor

    def answers_to(self, demand_no: int) -> bool:
        return demand_no == self.demand_no or any(r.demand_no == demand_no for r in self.dunning.reminders)
