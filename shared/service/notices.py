"""What a delivered document says around itself (D3; manual 6.19 "Send SMS", 7.9
"Reminders", 16 "Email"): the e-mail's subject, short text and HTML bodies (the PDF is
attached), and the SMS text with its link, in the letter's language (bokmål, Swedish,
English), with amounts and dates written the local way (``shared.documents.texts``).

The figures come from the ``Document`` (the stored demand), never from the bus message,
so a resend years later says what the document says.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..documents import texts
from ..domain.documents import Document, Kind
from ..domain.letters import Language

PHRASES: dict[str, tuple[str, str, str]] = {  # key: (nb, sv, en)
    "greeting": ("Hei {name},", "Hej {name},", "Dear {name},"),
    "attached": ("Vedlagt er {what} fra {seller}.", "Bifogat finns {what} från {seller}.",
                 "Attached is {what} from {seller}."),
    "pay": ("Beløp å betale: {amount}, forfall {due}, {ref}: {kid}.",
            "Belopp att betala: {amount}, förfaller {due}, {ref}: {kid}.",
            "Amount due: {amount} by {due}, {ref}: {kid}."),
    "credited": ("Beløpet {amount} er kreditert deg.", "Beloppet {amount} har krediterats dig.",
                 "The amount {amount} is credited to you."),
    "charged": ("Beløpet {amount} trekkes {due}.", "Beloppet {amount} dras {due}.",
                "The amount {amount} is charged on {due}."),
    "questions": ("Spørsmål? Svar på denne e-posten.", "Frågor? Svara på detta mejl.",
                  "Questions? Reply to this e-mail."),
    "sms_link": ("{what} fra {seller}: {amount}, forfall {due}. Se dokumentet: {link}",
                 "{what} från {seller}: {amount}, förfaller {due}. Se dokumentet: {link}",
                 "{what} from {seller}: {amount}, due {due}. See the document: {link}"),
}


def phrase(language: Language, key: str, **values: str) -> str:
    return texts.in_language(PHRASES[key], language).format(**values)


@dataclass(frozen=True, slots=True)
class MailText:
    subject: str
    text: str
    html: str


def what(document: Document) -> str:
    """"Faktura 1234", "Purring 2 – faktura 1234": the document's title and number."""
    lang = document.letter.language
    title = texts.title(document.kind, lang)
    if document.kind is Kind.REMINDER:
        return f"{title} {document.reminder_step} – {texts.title(Kind.INVOICE, lang).lower()} {document.number}"
    if document.kind is Kind.STOP_NOTICE:
        return f"{title} – {texts.title(Kind.INVOICE, lang).lower()} {document.number}"
    return f"{title} {document.number}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _amount_line(document: Document) -> str:
    lang, letter = document.letter.language, document.letter
    money = texts.amount(abs(document.amount_due_minor or document.total_minor), document.currency, lang)
    if document.kind is Kind.CREDIT_NOTE:
        return phrase(lang, "credited", amount=money)
    due = texts.day(document.due_date, lang) if document.due_date else "-"
    if document.kind.is_invoice and letter.payment.value != "giro":
        return phrase(lang, "charged", amount=money, due=due)
    return phrase(lang, "pay", amount=money, due=due, ref=texts.reference_label(letter.seller.party.country, lang),
                  kid=document.kid or "-")


def mail(document: Document) -> MailText:
    """The e-mail around a document: subject with its number, a short text and the same as HTML."""
    lang, letter = document.letter.language, document.letter
    seller = letter.seller.party.name
    paragraphs = [phrase(lang, "greeting", name=letter.buyer.name),
                  phrase(lang, "attached", what=_lower_first(what(document)), seller=seller),
                  _amount_line(document)]
    if document.kind is Kind.STOP_NOTICE and document.stop_date:
        paragraphs.append(texts.text(lang, "stop_text").format(date=texts.day(document.stop_date, lang)))
    paragraphs.append(phrase(lang, "questions"))
    footer = letter.seller.branding.footer or seller
    text = "\n\n".join([*paragraphs, footer]) + "\n"
    colour = escape(letter.seller.branding.colour, quote=True)
    html = (f'<!doctype html><html lang="{lang.value}"><body style="font-family:sans-serif">'
            f'<h1 style="color:{colour};font-size:18px">{escape(what(document))}</h1>'
            + "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
            + f'<p style="color:#666;font-size:12px">{escape(footer)}</p></body></html>')
    return MailText(f"{what(document)} – {seller}", text, html)


def sms(document: Document, link: str) -> str:
    """The SMS: what it is, what to pay by when, and a time-limited link to the PDF."""
    lang = document.letter.language
    money = texts.amount(abs(document.amount_due_minor or document.total_minor), document.currency, lang)
    due = texts.day(document.due_date, lang) if document.due_date else "-"
    return phrase(lang, "sms_link", what=what(document), seller=document.letter.seller.party.name, amount=money,
                  due=due, link=link)
