"""One subscriber's account: everything that lives in the subscriber's partition.

The aggregate the use cases load, change with pure functions and commit as one
entity-group transaction. ``issue`` turns drafts that have invoice numbers into
invoices with demand numbers and KIDs, ledger debits and outbox events, and advances
each subscription past the invoiced periods; it reads no clock and does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from .agreements import Charge, PaymentAgreement
from .catalogue import Catalogue, DunningProcess, Organization, PaymentType
from .demands import DemandTerms, OpenDemand
from .dunning import Reminder
from .events import (
    AvtaleGiroMandateChanged,
    Event,
    InvoiceIssued,
    InvoicePaid,
    PaymentCompleted,
    PaymentReversed,
    RefundBooked,
    SubscriptionCreated,
)
from .identity import Invitation, LoginLink
from .invoicing import (
    CreditNote,
    DocumentKind,
    Invoice,
    InvoiceDraft,
    draft_invoice,
    due_period_indexes,
    line,
    production_date,
    vat_parts,
)
from .kid import CheckDigitUnavailable, KidScheme
from .ledger import EntryKind, LedgerEntry, VatPart, invoice_entry
from .letters import Letter, letter_for
from .limits import check_minor
from .payments import BookedPayment, PaymentKind, PaymentState, ReceivedPayment
from .settlement import Allocation, SettlementPolicy, match, settle
from .subscriptions import Subscriber, Subscription


@dataclass(frozen=True, slots=True)
class Mandate:
    """An AvtaleGiro mandate (P5): the payer's standing consent to be charged by KID."""

    kid: str
    active: bool
    notify: bool
    changed: date


@dataclass(frozen=True, slots=True)
class Correction:
    """A credit (negative) or debit (positive) for the organisation's next invoice (manual 7.5)."""

    id: str
    organization_id: str
    amount_minor: int
    text: str
    created: date


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """After a stop: on ``on``, does the subscriber owe enough for a balance invoice (7.11)?"""

    organization_id: str
    subscription_id: str
    on: date
    charged: tuple[VatPart, ...] = ()  # per VAT rate, the delivered days the stop charged: what the invoice bills


@dataclass(frozen=True, slots=True)
class OrderBlock:
    """Manual 6.9: set by hand; the organisation's threshold blocks without one."""

    reason: str
    since: date


@dataclass(frozen=True, slots=True)
class ReminderDocument:
    """A reminder as sent: it refers to its invoice, and paying it settles that invoice."""

    reminder: Reminder
    invoice_number: int
    invoice_demand_no: int
    organization_id: str
    currency: str
    subscription_id: str
    letter: Letter | None = None  # what its document says besides the demand (None: sent before documents)


@dataclass(frozen=True, slots=True)
class Account:
    subscriber: Subscriber
    subscriptions: Mapping[str, Subscription] = field(default_factory=dict)
    balances: Mapping[str, int] = field(default_factory=dict)  # organization id -> minor units
    next_demand_no: int = 1
    next_ledger_seq: int = 1
    open_demands: Mapping[int, OpenDemand] = field(default_factory=dict)  # demand no -> what is still owed
    mandates: Mapping[str, Mandate] = field(default_factory=dict)  # organization id -> AvtaleGiro mandate
    corrections: tuple[Correction, ...] = ()  # not yet invoiced
    credited: tuple[int, ...] = ()  # invoice numbers with a credit note
    balance_checks: tuple[BalanceCheck, ...] = ()
    order_blocks: Mapping[str, OrderBlock] = field(default_factory=dict)  # organization id -> block
    agreements: Mapping[str, PaymentAgreement] = field(default_factory=dict)  # agreement key -> Vipps / card agreement
    charges: Mapping[str, Charge] = field(default_factory=dict)  # charge id -> a provider charge not yet settled
    logins: Mapping[str, LoginLink] = field(default_factory=dict)  # link key -> a login linked to this subscriber (M1)
    invitations: Mapping[str, Invitation] = field(default_factory=dict)  # id -> a group seat offered by e-mail (S10)

    @property
    def number(self) -> int:
        return self.subscriber.number

    def with_subscription(self, subscription: Subscription) -> Account:
        return replace(self, subscriptions={**self.subscriptions, subscription.id: subscription})

    def open_total(self, organization_id: str) -> int:
        return sum(d.open_minor for d in self.open_demands.values() if d.terms.organization_id == organization_id)

    def letter(self, org: Organization, subscription: Subscription | None) -> Letter:
        """The letter of a demand this organisation issues now (for a subscription, if any)."""
        mandate = self.mandates.get(org.id)
        return letter_for(self.subscriber, org, subscription, mandate is not None and mandate.active)

    def unbilled_debt(self, organization_id: str) -> int:
        """What the subscriber owes on the ledger that no open invoice or reminder asks for."""
        return max(0, -(self.balances.get(organization_id, 0) + self.open_total(organization_id)))


@dataclass(frozen=True, slots=True)
class Changes:
    """What one business operation adds to a partition, committed atomically."""

    account: Account
    subscriptions: tuple[Subscription, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    ledger: tuple[LedgerEntry, ...] = ()
    events: tuple[Event, ...] = ()
    payments: tuple[BookedPayment, ...] = ()
    credit_notes: tuple[CreditNote, ...] = ()
    reminders: tuple[ReminderDocument, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.subscriptions or self.invoices or self.ledger or self.events or self.payments
                    or self.credit_notes or self.reminders)

    def then(self, later: Changes) -> Changes:
        """These changes followed by ``later`` (computed on ``self.account``), as one."""
        subs = {s.id: s for s in self.subscriptions} | {s.id: s for s in later.subscriptions}
        return Changes(later.account, tuple(subs.values()), self.invoices + later.invoices,
                       self.ledger + later.ledger, self.events + later.events, self.payments + later.payments,
                       self.credit_notes + later.credit_notes, self.reminders + later.reminders)


def due_drafts(account: Account, catalogue: Catalogue, today: date) -> list[InvoiceDraft]:
    for c in account.corrections:  # checked before invoice numbers are claimed for these drafts
        check_minor(c.amount_minor, "correction %s", c.id)
    drafts: list[InvoiceDraft] = []
    for sub in account.subscriptions.values():
        plan = catalogue.plan(sub.plan_id)
        billing = catalogue.billing_plan_of(plan)
        for index in due_period_indexes(sub, billing, today):
            drafts.append(draft_invoice(sub, index, today, billing, catalogue.organization_of(plan),
                                        catalogue.products_of(plan)))
    return drafts


def with_corrections(drafts: Sequence[InvoiceDraft], corrections: Sequence[Correction]) -> list[InvoiceDraft]:
    """Pending corrections go onto the organisation's first subscription invoice (manual 7.5:
    "Adding a Credit ... will decrease upcoming invoice amount"), whichever plan it is for."""
    out = list(drafts)
    for org in dict.fromkeys(c.organization_id for c in corrections):
        at = next((i for i, d in enumerate(out) if d.organization_id == org and d.kind is DocumentKind.SUBSCRIPTION),
                  None)
        if at is not None:
            extra = tuple(line(c.text, 1, c.amount_minor, 0) for c in corrections if c.organization_id == org)
            out[at] = replace(out[at], lines=out[at].lines + extra)
    return out


def next_drafts(account: Account, catalogue: Catalogue) -> list[InvoiceDraft]:
    """The upcoming invoice of each running subscription, as it would be issued today."""
    drafts = []
    for sub in account.subscriptions.values():
        if not sub.runs_in(sub.next_period):
            continue
        plan = catalogue.plan(sub.plan_id)
        billing = catalogue.billing_plan_of(plan)
        issue_day = max(production_date(sub, billing, sub.next_period), sub.anchor)
        drafts.append(draft_invoice(sub, sub.next_period, issue_day, billing,
                                    catalogue.organization_of(plan), catalogue.products_of(plan)))
    return with_corrections(drafts, account.corrections)


def next_kid(scheme: KidScheme, subscriber_no: int, demand_no: int) -> tuple[int, str]:
    """The first demand number from ``demand_no`` whose KID the agreement allows, and that KID."""
    while True:
        try:
            return demand_no, scheme.encode(subscriber_no, demand_no)
        except CheckDigitUnavailable:
            demand_no += 1


def issue(account: Account, drafts: Sequence[InvoiceDraft], numbers: Mapping[str, int],
          catalogue: Catalogue, booked: date, extra: Changes | None = None) -> Changes:
    """Issue ``drafts`` with the invoice ``numbers`` claimed for their natural keys.

    Pending corrections are added to the drafts (and so consumed). A balance invoice
    asks for debt the ledger already holds: it adds a demand, not a ledger entry.
    """
    demand_no, seq = account.next_demand_no, account.next_ledger_seq
    balances = dict(account.balances)
    subs = dict(account.subscriptions)
    open_demands = dict(account.open_demands)
    invoices: list[Invoice] = []
    ledger: list[LedgerEntry] = []
    events: list[Event] = []
    drafts = with_corrections(drafts, account.corrections)
    billed_orgs = {d.organization_id for d in drafts if d.kind is DocumentKind.SUBSCRIPTION}
    for draft in drafts:
        org = catalogue.organizations[draft.organization_id]
        demand_no, kid = next_kid(org.kid, account.number, demand_no)
        owed = sum(d.open_minor for d in open_demands.values() if d.terms.organization_id == org.id)
        credit = max(0, balances.get(org.id, 0) + owed)  # money on the ledger no demand has used
        if draft.kind is DocumentKind.BALANCE:
            credit = 0
        invoice = Invoice(numbers[draft.natural_key], demand_no, kid, draft, min(credit, max(draft.total_minor, 0)),
                          account.letter(org, subs.get(draft.subscription_id)))
        invoices.append(invoice)
        if draft.kind is not DocumentKind.BALANCE:
            ledger.append(invoice_entry(seq, org.id, org.currency, booked, invoice.number, invoice.total_minor,
                                        vat_parts(draft.lines)))
            balances[org.id] = balances.get(org.id, 0) - invoice.total_minor
            seq += 1
        if invoice.amount_due_minor > 0:
            terms = replace(terms_of(invoice), vat=vat_parts(draft.lines))
            open_demands[demand_no] = OpenDemand(demand_no, terms, invoice.amount_due_minor)
        if draft.kind is DocumentKind.SUBSCRIPTION:
            subs[draft.subscription_id] = subs[draft.subscription_id].invoiced(1)
        events.append(invoice_issued(account.number, invoice))
        demand_no += 1
    changed = {d.subscription_id for d in drafts if d.kind is DocumentKind.SUBSCRIPTION}
    corrections = tuple(c for c in account.corrections if c.organization_id not in billed_orgs)
    charges = dict(account.charges)
    if account.agreements:  # P6: an invoice of a subscription charged on a Vipps / card agreement asks for a charge
        from .charges import requests_for  # charges.py builds on this module (receive_payment): no import cycle
        requested, charge_events = requests_for(account, invoices, catalogue, booked)
        charges |= requested
        events += charge_events
    new_account = replace(account, subscriptions=subs, balances=balances, next_demand_no=demand_no,
                          next_ledger_seq=seq, open_demands=open_demands, corrections=corrections, charges=charges)
    before = extra or Changes(account)
    touched = {s.id: s for s in before.subscriptions} | {i: subs[i] for i in changed}
    return replace(before, account=new_account, subscriptions=tuple(touched.values()),
                   invoices=before.invoices + tuple(invoices), ledger=before.ledger + tuple(ledger),
                   events=before.events + tuple(events))


def process_of(account: Account, catalogue: Catalogue, demand: OpenDemand) -> DunningProcess | None:
    """The dunning process that follows up a demand; None for one no subscription plan owns."""
    sub = account.subscriptions.get(demand.terms.subscription_id)
    return catalogue.dunning_of(sub.plan_id) if sub is not None and sub.plan_id in catalogue.plans else None


def settlement_policy_of(account: Account, catalogue: Catalogue, demand: OpenDemand) -> SettlementPolicy:
    """The settlement policy of the demand's dunning process; 100 % without one."""
    process = process_of(account, catalogue, demand)
    return process.settlement if process else SettlementPolicy()


def receive_payment(account: Account, payment: ReceivedPayment, catalogue: Catalogue, booked: date) -> Changes:
    """Book an identified payment: ledger credit, settlement of open demands, events. A payment
    beyond the business limits raises ``ValueOutOfRange`` (the import sets it aside)."""
    check_minor(payment.amount_minor, "payment %s", payment.id)
    org = payment.organization_id
    mine = [d for d in account.open_demands.values() if d.terms.organization_id == org]
    matched = match(mine, payment.demand_no, payment.amount_minor)
    seq = account.next_ledger_seq
    ledger = [LedgerEntry(seq, org, payment.currency, booked, EntryKind.PAYMENT, payment.amount_minor,
                          payment.reference or payment.id, f"Payment ({payment.source})")]
    fee_written_off = 0
    exact = next((d for d in mine if d.demand_no == matched == payment.demand_no), None)
    if exact is not None and exact.fees_open_minor and payment.amount_minor == exact.principal_open_minor:
        process = process_of(account, catalogue, exact)
        if process is not None and process.write_off_fee_on_exact_match:  # manual 7.19 step 3
            fee_written_off = exact.fees_open_minor
            seq += 1
            ledger.append(LedgerEntry(seq, org, payment.currency, booked, EntryKind.WRITE_OFF, fee_written_off,
                                      str(exact.terms.invoice_number),
                                      "Reminder fee written off: invoice paid exactly"))
            mine = [replace(d, open_minor=d.open_minor - fee_written_off, fees_minor=d.fees_minor - fee_written_off)
                    if d is exact else d for d in mine]
    result = settle(mine, matched, payment.amount_minor, lambda d: settlement_policy_of(account, catalogue, d))
    numbers = {d.demand_no: d.terms.invoice_number for d in mine}
    for a in result.allocations:
        if a.written_off_minor:
            seq += 1
            ledger.append(LedgerEntry(seq, org, payment.currency, booked, EntryKind.WRITE_OFF, a.written_off_minor,
                                      str(numbers[a.demand_no]), "Within the settlement policy's tolerance"))
    open_demands = {k: d for k, d in account.open_demands.items() if d.terms.organization_id != org}
    open_demands |= {d.demand_no: d for d in result.open_after}
    balances = dict(account.balances)
    balances[org] = balances.get(org, 0) + payment.amount_minor + result.written_off_minor + fee_written_off
    booked_payment = BookedPayment(payment, PaymentState.COMPLETED, booked, result.allocations, result.credit_minor)
    events: list[Event] = [PaymentCompleted(f"payment-completed.{payment.id}", account.number, payment.id,
                                            payment.amount_minor, org, payment.match_type)]
    events += [InvoicePaid(f"invoice-paid.{org}.{numbers[a.demand_no]}", account.number, numbers[a.demand_no], org)
               for a in result.allocations if a.settled]
    new = replace(account, balances=balances, open_demands=open_demands, next_ledger_seq=seq + 1)
    return Changes(new, ledger=tuple(ledger), events=tuple(events), payments=(booked_payment,))


def reversal_target(payments: Sequence[BookedPayment], reference: str | None, amount_minor: int,
                    reversal_id: str) -> BookedPayment | None:
    """The booked payment a reversal takes back: same KID and amount, not reversed yet (the
    oldest first); the one this reversal already took back if it was booked before."""
    taken = {b.payment.reverses: b.payment.id for b in payments if b.payment.kind is PaymentKind.REVERSAL}
    for b in payments:
        p = b.payment
        if (p.kind is PaymentKind.PAYMENT and p.reference == reference and p.amount_minor == amount_minor
                and taken.get(p.id, reversal_id) == reversal_id):
            return b
    return None


def reverse_payment(account: Account, reversal: ReceivedPayment, original: BookedPayment,
                    invoices: Mapping[int, Invoice], booked: date) -> Changes:
    """Book a reversal against the payment it takes back (OCR giro transaction types 18, 20).

    A ledger debit of its own kind (never a negative payment); what the payment paid on each
    demand is owed again: a demand still open grows, a settled one is reopened from its
    invoice (``invoices``: demand number -> invoice, for those no longer open), and a
    write-off the payment allowed is taken back with it. A demand credited since stays
    closed: the money is then debt on the ledger, which a balance invoice bills.
    """
    if reversal.amount_minor != original.payment.amount_minor or reversal.kind is not PaymentKind.REVERSAL:
        raise ValueError("a reversal takes back a payment of exactly its amount")
    org, currency = original.payment.organization_id, original.payment.currency
    open_demands = dict(account.open_demands)
    written_back = 0
    reopened: list[Allocation] = []
    for a in original.allocations:
        again = a.paid_minor + a.written_off_minor
        current = open_demands.get(a.demand_no)
        invoice = invoices.get(a.demand_no)
        if current is not None:
            open_demands[a.demand_no] = replace(current, open_minor=current.open_minor + again)
        elif invoice is not None and invoice.number not in account.credited:
            open_demands[a.demand_no] = OpenDemand(a.demand_no, terms_of(invoice), again)
        else:
            continue
        written_back += a.written_off_minor
        reopened.append(Allocation(a.demand_no, -a.paid_minor, -a.written_off_minor, False))
    seq = account.next_ledger_seq
    ledger = [LedgerEntry(seq, org, currency, booked, EntryKind.REVERSAL, -reversal.amount_minor,
                          reversal.reference or reversal.id, f"Reversal of payment {original.payment.id}")]
    if written_back:
        ledger.append(LedgerEntry(seq + 1, org, currency, booked, EntryKind.REVERSAL, -written_back,
                                  reversal.reference or reversal.id, "Write-off taken back with its payment"))
    balances = dict(account.balances)
    balances[org] = balances.get(org, 0) - reversal.amount_minor - written_back
    record = BookedPayment(reversal, PaymentState.COMPLETED, booked, tuple(reopened), -original.credit_minor)
    event = PaymentReversed(f"payment-reversed.{reversal.id}", account.number, reversal.id, original.payment.id,
                            reversal.amount_minor, org, tuple(a.demand_no for a in reopened))
    new = replace(account, balances=balances, open_demands=open_demands, next_ledger_seq=seq + len(ledger))
    return Changes(new, ledger=tuple(ledger), events=(event,), payments=(record,))


def terms_of(invoice: Invoice) -> DemandTerms:
    """What an issued invoice asks for, as its open demand keeps it."""
    d = invoice.draft
    span = d.span
    return DemandTerms(invoice.number, d.organization_id, d.subscription_id, d.due_date, d.kind, invoice.total_minor,
                       invoice.amount_due_minor, span[0] if span else None, span[1] if span else None)


@dataclass(frozen=True, slots=True)
class BookRefund:
    """Manual 7.4: ``amount_minor`` paid back to the subscriber. ``refund_id`` names the
    refund for ever: its outbox event's row makes a second booking of the same refund
    conflict instead of paying out twice."""

    refund_id: str
    organization_id: str
    currency: str
    amount_minor: int
    external_reference: str
    comment: str = ""


def refund(account: Account, command: BookRefund, booked: date) -> Changes:
    """Money paid back to the subscriber (manual 7.4): a debit on the ledger, never a payment."""
    c = command
    if c.amount_minor <= 0:
        raise ValueError("a refund is a positive amount")
    entry = LedgerEntry(account.next_ledger_seq, c.organization_id, c.currency, booked, EntryKind.REFUND,
                        -c.amount_minor, c.external_reference, c.comment or "Refund")
    balances = dict(account.balances)
    balances[c.organization_id] = balances.get(c.organization_id, 0) - c.amount_minor
    event = RefundBooked(f"refund.{c.refund_id}", account.number, c.refund_id, c.amount_minor, c.organization_id,
                         c.external_reference)
    new = replace(account, balances=balances, next_ledger_seq=account.next_ledger_seq + 1)
    return Changes(new, ledger=(entry,), events=(event,))


AVTALEGIRO_MIN_DAYS = 28  # manual 7.24: AvtaleGiro only for subscription terms of four weeks or more


def apply_mandate(account: Account, organization_id: str, kid: str, active: bool, notify: bool,
                  day: date) -> Changes:
    """A mandate from the bank (manual 7.24): a new one makes AvtaleGiro the payment type of
    the organisation's subscriptions of four weeks or longer; a deleted one sets them back
    to invoice. Reporting the same state again changes nothing."""
    current = account.mandates.get(organization_id)
    if current is not None and (current.active, current.notify, current.kid) == (active, notify, kid):
        return Changes(account)
    mandate = Mandate(kid, active, notify, day)
    frm, to = (PaymentType.INVOICE, PaymentType.AVTALEGIRO) if active else (PaymentType.AVTALEGIRO, PaymentType.INVOICE)
    switched = [replace(s, payment_type=to) for s in account.subscriptions.values()
                if s.organization_id == organization_id and s.payment_type == frm
                and (s.frequency.months or s.frequency.days >= AVTALEGIRO_MIN_DAYS)]
    new = replace(account, mandates={**account.mandates, organization_id: mandate},
                  subscriptions={**account.subscriptions, **{s.id: s for s in switched}})
    event = AvtaleGiroMandateChanged(f"mandate.{organization_id}.{account.number}.{day}.{int(active)}",
                                     account.number, organization_id, kid, active, notify)
    return Changes(new, subscriptions=tuple(switched), events=(event,))


def invoice_issued(subscriber_no: int, invoice: Invoice) -> InvoiceIssued:
    d = invoice.draft
    return InvoiceIssued(f"invoice-issued.{d.organization_id}.{invoice.number}", subscriber_no, invoice.number,
                         invoice.kid, d.organization_id, d.subscription_id, d.total_minor,
                         invoice.credit_applied_minor, invoice.amount_due_minor, d.currency, d.due_date,
                         invoice.demand_no)


def subscription_created(subscriber_no: int, sub: Subscription) -> SubscriptionCreated:
    return SubscriptionCreated(f"subscription-created.{sub.id}", subscriber_no, sub.id, sub.plan_id, sub.anchor,
                               sub.payment_type)
