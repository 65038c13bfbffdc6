"""Documents made from real domain values, for the tests and benchmarks of the renderers.

Each ``Document`` comes the way the service makes one: a catalogue ``Organization`` and a
``Subscriber`` give the ``Letter`` (``letters.letter_for``), an issued ``Invoice``,
``CreditNote``, ``Reminder`` or ``PaymentStopNotice`` gives the figures
(``documents.of_invoice`` ...). Nothing here is hand-made document data, so a renderer
tested on these sees what production gives it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from shared.domain.calendar import Frequency, Period
from shared.domain.catalogue import Branding, Organization, PaymentType
from shared.domain.documents import Document, Kind, of_credit_note, of_invoice, of_reminder, of_stop_notice
from shared.domain.dunning import NoticeChannel, Reminder
from shared.domain.events import PaymentStopNotice
from shared.domain.invoicing import CreditNote, DocumentKind, Invoice, InvoiceDraft, InvoiceLine, line
from shared.domain.letters import Letter, PaymentMethod, letter_for
from shared.domain.subscriptions import Subscriber, Subscription

PAYMENT_TYPES = {PaymentMethod.GIRO: PaymentType.INVOICE, PaymentMethod.AVTALEGIRO: PaymentType.AVTALEGIRO,
                 PaymentMethod.VIPPS: PaymentType.VIPPS, PaymentMethod.CARD: PaymentType.CARD}
ISSUED = date(2026, 11, 20)
DUE = date(2026, 12, 5)
DECEMBER = Period(date(2026, 12, 1), date(2027, 1, 1))


def organization(key: str = "NO") -> Organization:
    """``NO``: a Norwegian company in bokmål; ``SE``: a Swedish one in Swedish; ``EN``: a
    Norwegian company writing English (Norwegian law, English words); ``EUR``: a Finnish
    one invoicing in euro, in English."""
    branding = Branding(colour="#8A1538", footer="Takk for at du leser oss! Spørsmål om abonnementet? Kontakt oss.",
                        contact_email="kundeservice@example.no", contact_phone="+47 22 86 30 00")
    if key == "SE":
        return Organization("tidning", "Östra Tidningen AB", "SEK", "Europe/Stockholm", "SE", "5560360793",
                            "56788003", address="Storgatan 12", postal_code="111 22", city="Stockholm",
                            branding=replace(branding, footer="Tack för att du läser oss!",
                                             contact_email="kundtjanst@example.se", contact_phone="+46 8 13 50 00"))
    if key == "EUR":
        return Organization("lehti", "Åbo Nyheter Ab", "EUR", "Europe/Helsinki", "FI", "1572860-0",
                            "FI2112345600000785", address="Aurakatu 1", postal_code="20100", city="Turku",
                            language="en", branding=branding)
    return Organization("avis", "Østlandets Blad AS", "NOK", organization_number="923609016",
                        bank_account="12345678903", address="Akersgata 55", postal_code="0180", city="Oslo",
                        language="en" if key == "EN" else "", branding=branding)


def subscriber(country: str = "NO", organization: bool = False) -> Subscriber:
    if country == "SE":
        return Subscriber(4711, "Åsa Öberg", "asa@example.se", address="Götgatan 3", postal_code="116 46",
                          city="Stockholm", country="SE", organization_number="5560360793" if organization else None)
    return Subscriber(4711, "Kjærsti Ødegård Sæther", "kjaersti@example.no", address="Bjørnstjerne Bjørnsons gate 7",
                      postal_code="3044", city="Drammen", country=country,
                      organization_number="974760673" if organization else None)


def letter(key: str | Organization = "NO", method: PaymentMethod = PaymentMethod.GIRO, buyer_reference: str = "",
           buyer: Subscriber | None = None) -> Letter:
    """The letter ``letter_for`` gives: organisation ``key`` (or the one given) to ``buyer``
    (a subscriber of its country when None), on a subscription paid by ``method``."""
    org = organization(key) if isinstance(key, str) else key
    subscription = Subscription("s-1", "daily", org.id, Frequency.MONTHLY, DECEMBER.start, PAYMENT_TYPES[method],
                                buyer_reference=buyer_reference)
    return letter_for(buyer or subscriber("SE" if org.country == "SE" else "NO"), org, subscription)


def three_lines(span: Period | None = DECEMBER) -> tuple[InvoiceLine, ...]:
    """A subscription (0 % VAT, as Norwegian newspapers), a paper supplement (25 %) and a fee."""
    return (line("Digitalt abonnement, hele uka", 1, 39900, 0, "digital", span),
            line("Papiravis lørdag og søndag", 8, 4900, 2500, "paper", span),
            line("Fakturagebyr", 1, 3900, 2500))


def invoice(lines: tuple[InvoiceLine, ...] | None = None, kind: DocumentKind = DocumentKind.SUBSCRIPTION,
            currency: str = "NOK", number: int = 1042, credit_applied_minor: int = 0,
            kid: str = "0004711010427", the_letter: Letter | None = None) -> Invoice:
    draft = InvoiceDraft("s-1", 0, "avis", currency, ISSUED, DUE, three_lines() if lines is None else lines, kind,
                         "" if kind is DocumentKind.SUBSCRIPTION else "ref-1")
    return Invoice(number, 17, kid, draft, credit_applied_minor, the_letter)


def document(kind: Kind = Kind.INVOICE, key: str | Organization = "NO", method: PaymentMethod = PaymentMethod.GIRO,
             lines: tuple[InvoiceLine, ...] | None = None, credit_applied_minor: int = 0,
             buyer_reference: str = "PO-2026-77", buyer: Subscriber | None = None, preview: bool = False) -> Document:
    """A document of ``kind`` from organisation ``key`` (see ``organization``) to ``buyer``,
    paid by ``method``; ``preview``: the invoice before it is issued (no number, KID or demand,
    as ``shared.service.documents.preview`` makes it)."""
    the_letter = letter(key, method, buyer_reference, buyer)
    currency = the_letter.currency
    if kind.is_invoice:
        invoice_kind = {Kind.INVOICE: DocumentKind.SUBSCRIPTION, Kind.ADDITIONAL: DocumentKind.ADDITIONAL,
                        Kind.BALANCE: DocumentKind.BALANCE}[kind]
        if lines is None:
            lines = three_lines(DECEMBER if kind is Kind.INVOICE else None)
        if preview:
            draft = invoice(lines, invoice_kind, currency).draft
            return of_invoice(Invoice(0, 0, "", draft, 0, the_letter), the_letter)
        return of_invoice(invoice(lines, invoice_kind, currency, credit_applied_minor=credit_applied_minor,
                                  the_letter=the_letter), the_letter)
    original = invoice(lines, currency=currency, the_letter=the_letter)
    if kind is Kind.CREDIT_NOTE:
        note = CreditNote(77, original.number, 18, "avis", currency, "s-1", date(2026, 11, 27), original.total_minor,
                          "Levert feil utgave / wrong edition", tuple(-li for li in original.draft.lines), the_letter)
        return of_credit_note(note, the_letter, original)
    if kind is Kind.REMINDER:
        fee = 3500
        reminder = Reminder(2, date(2026, 12, 19), date(2027, 1, 2), fee, original.total_minor + fee, 19,
                            "0004711000193")
        return of_reminder(reminder, original.number, currency, the_letter, original)
    notice = PaymentStopNotice("stop-1042", 4711, "Kjærsti Ødegård Sæther", date(2027, 1, 5), NoticeChannel.EMAIL,
                               "kjaersti@example.no", "avis", "Østlandets Blad AS", original.number, original.kid,
                               currency, "12345678903", date(2027, 1, 19), original.total_minor)
    return of_stop_notice(notice, the_letter)
