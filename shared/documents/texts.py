"""What a document says, per language (L7): labels, amounts and dates the local way.

Norwegian bokmål (``nb``), Swedish (``sv``) and English (``en``). Amounts are integer
minor units, never floats. In ``nb`` and ``sv`` an amount is written with a plain space
between thousands (U+0020: it extracts and searches as typed), a decimal comma and the
currency after it: "kr" for the language's own currency (NOK in ``nb``, SEK in ``sv``),
"€" for EUR, else the ISO code. English writes the currency first with a comma between
thousands and a decimal point. A negative amount (a credit note) has a hyphen-minus.

    >>> amount(123450, "NOK", Language.NB)
    '1 234,50 kr'
    >>> amount(-123450, "SEK", Language.SV)
    '-1 234,50 kr'
    >>> amount(123450, "EUR", Language.NB)
    '1 234,50 €'
    >>> amount(123450, "SEK", Language.NB)
    '1 234,50 SEK'
    >>> amount(100000000000, "NOK", Language.EN)
    'NOK 1,000,000,000.00'
    >>> amount(-5, "EUR", Language.EN)
    '-€0.05'

Dates: ``nb`` dd.mm.yyyy, ``sv`` yyyy-mm-dd (ISO 8601, as Swedish writes them), ``en``
"d Mon yyyy" (no reader can mistake day and month):

    >>> day(date(2026, 3, 7), Language.NB), day(date(2026, 3, 7), Language.SV), day(date(2026, 3, 7), Language.EN)
    ('07.03.2026', '2026-03-07', '7 Mar 2026')
    >>> percent(2500), percent(1250), percent(0)
    ('25 %', '12,5 %', '0 %')
    >>> text(Language.SV, "due_date")
    'Förfallodatum'

The words the law of the seller's country prescribes stay in that country's words
whatever the language: "MVA" and "Foretaksregisteret" (Norway), "Bankgiro" and "OCR"
(Sweden), "KID" (Norway).
"""

from __future__ import annotations

from datetime import date

from shared.domain.documents import Kind
from shared.domain.letters import Language, PaymentMethod

HOME_CURRENCY = {Language.NB: "NOK", Language.SV: "SEK"}
SYMBOL = {"EUR": "€"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _grouped(whole: int, separator: str) -> str:
    digits = str(whole)
    head = len(digits) % 3 or 3
    return separator.join([digits[:head], *(digits[i:i + 3] for i in range(head, len(digits), 3))])


def amount(minor: int, currency: str, language: Language) -> str:
    """``minor`` units of ``currency`` as ``language`` writes money (see the module docstring)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    if language is Language.EN:
        return f"{sign}{SYMBOL.get(currency, currency + ' ')}{_grouped(whole, ',')}.{cents:02d}"
    unit = "kr" if HOME_CURRENCY.get(language) == currency else SYMBOL.get(currency, currency)
    return f"{sign}{_grouped(whole, ' ')},{cents:02d} {unit}"


def number(value: int, language: Language) -> str:
    """A count (a quantity) with the language's thousands separator."""
    sign = "-" if value < 0 else ""
    return sign + _grouped(abs(value), "," if language is Language.EN else " ")


def day(value: date, language: Language) -> str:
    if language is Language.NB:
        return f"{value.day:02d}.{value.month:02d}.{value.year:04d}"
    if language is Language.SV:
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return f"{value.day} {MONTHS[value.month - 1]} {value.year:04d}"


def period(first: date, last: date, language: Language) -> str:
    return f"{day(first, language)} – {day(last, language)}"


def percent(rate_bp: int, language: Language = Language.NB) -> str:
    """A VAT rate in basis points as a percentage: "25 %", "12,5 %" (en: "12.5 %")."""
    whole, rest = divmod(rate_bp, 100)
    decimals = f"{rest:02d}".rstrip("0")
    mark = "." if language is Language.EN else ","
    return f"{whole}{mark + decimals if decimals else ''} %"


TEXTS: dict[str, tuple[str, str, str]] = {  # key: (nb, sv, en)
    # titles per kind
    "title_invoice": ("Faktura", "Faktura", "Invoice"),
    "title_additional": ("Tilleggsfaktura", "Tilläggsfaktura", "Additional invoice"),
    "title_balance": ("Restfaktura", "Restfaktura", "Balance invoice"),
    "title_credit_note": ("Kreditnota", "Kreditfaktura", "Credit note"),
    "title_reminder": ("Purring", "Betalningspåminnelse", "Payment reminder"),
    "title_stop_notice": ("Varsel om stans", "Meddelande om stopp", "Notice of stop"),
    "preview": ("FORHÅNDSVISNING – ikke en gyldig faktura", "FÖRHANDSGRANSKNING – inte en giltig faktura",
                "PREVIEW – not a valid invoice"),
    # the parties
    "seller": ("Selger", "Säljare", "Seller"),
    "buyer": ("Kunde", "Kund", "Customer"),
    "org_number": ("Org.nr.", "Org.nr", "Org. no."),
    "vat_number": ("MVA-nummer", "Momsregistreringsnummer", "VAT registration number"),
    "customer_number": ("Kundenr.", "Kundnummer", "Customer no."),
    "your_reference": ("Deres referanse", "Er referens", "Your reference"),
    "email": ("E-post", "E-post", "E-mail"),
    "phone": ("Telefon", "Telefon", "Phone"),
    # the head
    "invoice_number": ("Fakturanummer", "Fakturanummer", "Invoice number"),
    "credit_note_number": ("Kreditnotanummer", "Kreditfakturanummer", "Credit note number"),
    "invoice_date": ("Fakturadato", "Fakturadatum", "Invoice date"),
    "date": ("Dato", "Datum", "Date"),
    "credit_note_date": ("Kreditnotadato", "Kreditfakturadatum", "Credit note date"),
    "due_date": ("Forfallsdato", "Förfallodatum", "Due date"),
    "delivery_period": ("Leveringsperiode", "Leveransperiod", "Delivery period"),
    "delivery_date": ("Leveringsdato", "Leveransdatum", "Delivery date"),
    # the lines
    "description": ("Beskrivelse", "Beskrivning", "Description"),
    "quantity": ("Antall", "Antal", "Quantity"),
    "unit_price": ("Enhetspris", "À-pris", "Unit price"),
    "unit_price_net": ("Enhetspris eks. MVA", "À-pris exkl. moms", "Unit price excl. VAT"),
    "line_amount_net": ("Beløp eks. MVA", "Belopp exkl. moms", "Amount excl. VAT"),
    "vat_rate": ("MVA-sats", "Momssats", "VAT rate"),
    "line_amount": ("Beløp", "Belopp", "Amount"),
    "carried": ("Fortsetter på neste side", "Fortsätter på nästa sida", "Continued on the next page"),
    # VAT and totals
    "vat_basis": ("Grunnlag", "Underlag", "Basis"),
    "vat": ("MVA", "Moms", "VAT"),
    "net_total": ("Sum eks. MVA", "Summa exkl. moms", "Total excl. VAT"),
    "vat_total": ("Sum MVA", "Summa moms", "Total VAT"),
    "total": ("Sum inkl. MVA", "Summa inkl. moms", "Total incl. VAT"),
    "credit_applied": ("Betalt fra din saldo", "Betalt från ditt saldo", "Paid from your balance"),
    "amount_due": ("Å betale", "Att betala", "Amount due"),
    "nothing_to_pay": ("Ingenting å betale: beløpet krediteres deg.", "Inget att betala: beloppet krediteras dig.",
                       "Nothing to pay: the amount is credited to you."),
    # the payment part
    "payment": ("Betalingsinformasjon", "Betalningsinformation", "Payment information"),
    "account": ("Kontonummer", "Kontonummer", "Account number"),
    "amount": ("Beløp", "Belopp", "Amount"),
    "reference": ("Referanse", "Referens", "Reference"),
    "charge_date": ("Trekkdato", "Dragningsdatum", "Charge date"),
    "avtalegiro": ("Beløpet trekkes fra din konto", "Beloppet dras från ditt konto",
                   "The amount is charged to your account"),
    "vipps": ("Beløpet trekkes i Vipps", "Beloppet dras i Vipps", "The amount is charged in Vipps"),
    "card": ("Beløpet trekkes fra kortet ditt", "Beloppet dras från ditt kort", "The amount is charged to your card"),
    "nothing_due": ("Ingenting å betale: saldoen din dekker fakturaen.",
                    "Inget att betala: ditt saldo täcker fakturan.",
                    "Nothing to pay: your balance covers the invoice."),
    "preview_no_kid": ("KID gis når fakturaen utstedes", "OCR ges när fakturan utfärdas",
                       "The reference is given when the invoice is issued"),
    # a credit note
    "credits_invoice": ("Krediterer faktura", "Krediterar faktura", "Credits invoice"),
    "dated": ("datert", "daterad", "dated"),
    "reason": ("Årsak", "Orsak", "Reason"),
    # a reminder
    "reminder_step": ("Purring nr.", "Påminnelse nr", "Reminder no."),
    "concerns_invoice": ("Gjelder faktura", "Avser faktura", "Concerns invoice"),
    "reminder_text": ("Vi har ikke mottatt betaling for fakturaen under. Vennligst betal innen forfallsdatoen.",
                      "Vi har inte fått betalt för fakturan nedan. Vänligen betala senast förfallodatumet.",
                      "We have not received payment for the invoice below. Please pay by the due date."),
    "outstanding": ("Utestående på fakturaen", "Utestående på fakturan", "Outstanding on the invoice"),
    "reminder_fee": ("Purregebyr", "Påminnelseavgift", "Reminder fee"),
    # a stop notice
    "owed": ("Utestående beløp", "Utestående belopp", "Amount owed"),
    "stop_date": ("Stansdato", "Stoppdatum", "Stop date"),
    "stop_text": ("Abonnementet ditt stanses {date} hvis beløpet ikke er betalt innen da.",
                  "Din prenumeration stoppas {date} om beloppet inte är betalt innan dess.",
                  "Your subscription is stopped on {date} unless the amount is paid by then."),
    "how_to_pay": ("Betal beløpet til kontoen under og oppgi {reference}.",
                   "Betala beloppet till kontot nedan och ange {reference}.",
                   "Pay the amount to the account below, quoting the {reference}."),
    "page": ("Side {page} av {pages}", "Sida {page} av {pages}", "Page {page} of {pages}"),
}
_INDEX = {Language.NB: 0, Language.SV: 1, Language.EN: 2}


def in_language(entry: tuple[str, str, str], language: Language) -> str:
    """The ``language`` form of a (nb, sv, en) entry: every table of texts is so ordered."""
    return entry[_INDEX[language]]


def text(language: Language, key: str) -> str:
    return in_language(TEXTS[key], language)


def title(kind: Kind, language: Language) -> str:
    return text(language, f"title_{kind.value}")


def payment_note(method: PaymentMethod, language: Language) -> str:
    """What the payment part says instead of a giro for a charged method ("" for GIRO)."""
    return "" if method is PaymentMethod.GIRO else text(language, method.value)


def reference_label(country: str, language: Language) -> str:
    """The payment reference's name by the seller's country: KID (Norway), OCR (Sweden)."""
    return {"NO": "KID", "SE": "OCR"}.get(country) or text(language, "reference")


def account_label(country: str, language: Language) -> str:
    """A Swedish seller is paid by bankgiro; else the bank account number."""
    return "Bankgiro" if country == "SE" else text(language, "account")
