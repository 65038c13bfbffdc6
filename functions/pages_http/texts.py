"""The pages' texts in Norwegian bokmål and English, and how they write money and rates.

The server renders what it can (the offer, the form's labels); the texts the scripts
need go into the page as JSON (``<script type="application/json" id="texts">``)."""

from __future__ import annotations

from shared.domain.calendar import Frequency

TEXTS: dict[str, dict[str, str]] = {
    "nb": {
        "skip": "Hopp til innholdet", "switch": "English",
        "journeys": "Bestillingsmåte", "journey_minimal": "Digitalt", "journey_address": "Med adresse",
        "journey_business": "Bedrift",
        "contents": "Dette får du", "product": "Produkt", "price": "Pris", "vat_rate": "Mva-sats", "vat": "Mva",
        "vat_included": "Prisen er inkludert mva. ({vat}).", "no_vat": "Prisen er uten mva.",
        "automatic_stop": "Abonnementet stopper av seg selv etter første periode.",
        "order_title": "Bestill", "name": "Navn", "email": "E-post", "phone": "Mobil", "address": "Adresse",
        "postal_code": "Postnummer", "city": "Poststed", "company": "Firmanavn",
        "organization_number": "Organisasjonsnummer", "orgnr_hint": "Ni siffer.",
        "invoice_email": "E-post for faktura", "buyer_reference": "Deres referanse (vises på fakturaen)",
        "delivery": "Faktura sendes som", "delivery_ehf": "EHF (elektronisk faktura)", "delivery_email": "E-post",
        "payment": "Betaling", "pay_invoice": "Faktura", "pay_vipps": "Vipps", "pay_card": "Kort (Visa/Mastercard)",
        "fee": "gebyr {amount}", "from_period": " fra periode {n}",
        "required": "* må fylles ut", "submit": "Bestill", "sending": "Sender bestillingen …",
        "receipt_title": "Takk for bestillingen!", "receipt_text": "Den første fakturaen er sendt til deg.",
        "amount": "Beløp", "kid": "KID", "account": "Kontonummer", "due": "Forfall",
        "pending_title": "Takk! Vi tar kontakt",
        "pending_text": "Vi bekrefter bestillingen på e-post så snart den er behandlet.",
        "to_payment": "Du sendes videre til betalingen …",
        "error_title": "Bestillingen ble ikke sendt", "error_fields": "Rett opp feltene som er merket.",
        "error_busy": "Tjenesten er opptatt akkurat nå. Prøv igjen om litt.",
        "error_other": "Noe gikk galt. Prøv igjen.", "error_missing": "Må fylles ut.",
        "my_title": "Min side", "signin_text": "Logg inn for å se abonnementer og fakturaer.",
        "signin": "Logg inn", "signout": "Logg ut", "signed_in_as": "Innlogget som",
        "loading": "Henter …", "subscriber": "Kundenummer", "choose_subscriber": "Vis kunde",
        "subscriptions": "Abonnementer", "invoices": "Fakturaer og andre dokumenter",
        "no_subscriptions": "Ingen abonnementer.", "no_invoices": "Ingen fakturaer.",
        "status": "Status", "status_active": "Aktivt", "status_future": "Starter senere", "status_ended": "Avsluttet",
        "period": "Periode", "next_invoice": "Neste faktura", "payment_method": "Betaling",
        "stops_on": "Stopper", "started": "Startet",
        "stop": "Stopp abonnementet", "stop_on": "Stoppdato", "stop_code": "Årsak", "stop_confirm": "Bekreft stopp",
        "stop_end_of_period": "Abonnementet stopper ved slutten av perioden.",
        "stopped": "Abonnementet er stoppet.", "pause": "Sett på pause", "pause_until": "Start igjen den",
        "paused": "Abonnementet er satt på pause.", "restart": "Start igjen",
        "restarted": "Abonnementet er startet igjen.",
        "change_payment": "Endre betaling", "method": "Betalingsmåte", "save": "Lagre",
        "method_email": "Faktura på e-post", "method_ehf": "EHF", "method_avtalegiro": "AvtaleGiro",
        "method_vipps": "Vipps", "method_card": "Kort", "payment_changed": "Betalingsmåten er endret.",
        "document": "Dokument", "number": "Nummer", "issued": "Dato", "open": "Å betale",
        "kind_invoice": "Faktura", "kind_credit_note": "Kreditnota", "kind_reminder": "Purring",
        "doc_open": "Ubetalt", "doc_paid": "Betalt", "doc_reminded": "Purret", "doc_credited": "Kreditert",
        "pdf": "Last ned PDF", "export": "Last ned mine data (JSON)", "exported": "Dataene er lastet ned.",
        "your_data": "Dine data", "export_text": "Alt vi har lagret om deg, som en JSON-fil.",
        "link_title": "Koble til abonnementet ditt",
        "link_text": "Skriv e-postadressen abonnementet er registrert med. Vi sender en kode dit.",
        "send_code": "Send kode", "code": "Kode fra e-posten", "confirm": "Bekreft",
        "code_sent": "Hvis adressen hører til et abonnement, er det sendt en kode dit.",
        "group": "Plasser i bruk", "none": "–", "profile_title": "Dine opplysninger",
        "profile_saved": "Opplysningene er lagret.", "email_change": "Ny e-postadresse",
        "new_email": "Ny e-post", "code_new": "Kode sendt til den nye adressen",
        "email_code_sent": "Vi har sendt en kode til den nye adressen.", "email_changed": "E-postadressen er endret.",
    },
    "en": {
        "skip": "Skip to content", "switch": "Norsk",
        "journeys": "How to order", "journey_minimal": "Digital", "journey_address": "With address",
        "journey_business": "Business",
        "contents": "What you get", "product": "Product", "price": "Price", "vat_rate": "VAT rate", "vat": "VAT",
        "vat_included": "The price includes VAT ({vat}).", "no_vat": "The price has no VAT.",
        "automatic_stop": "The subscription ends by itself after its first period.",
        "order_title": "Order", "name": "Name", "email": "E-mail", "phone": "Mobile", "address": "Address",
        "postal_code": "Postal code", "city": "City", "company": "Company name",
        "organization_number": "Organisation number", "orgnr_hint": "Nine digits.",
        "invoice_email": "E-mail for invoices", "buyer_reference": "Your reference (shown on the invoice)",
        "delivery": "Send the invoice as", "delivery_ehf": "EHF (e-invoice)", "delivery_email": "E-mail",
        "payment": "Payment", "pay_invoice": "Invoice", "pay_vipps": "Vipps", "pay_card": "Card (Visa/Mastercard)",
        "fee": "fee {amount}", "from_period": " from period {n}",
        "required": "* required", "submit": "Order", "sending": "Sending the order …",
        "receipt_title": "Thank you for your order!", "receipt_text": "The first invoice has been sent to you.",
        "amount": "Amount", "kid": "KID", "account": "Account number", "due": "Due date",
        "pending_title": "Thank you! We will be in touch",
        "pending_text": "We confirm the order by e-mail as soon as it has been handled.",
        "to_payment": "Taking you to the payment …",
        "error_title": "The order was not sent", "error_fields": "Please correct the marked fields.",
        "error_busy": "The service is busy right now. Please try again shortly.",
        "error_other": "Something went wrong. Please try again.", "error_missing": "Required.",
        "my_title": "My page", "signin_text": "Sign in to see your subscriptions and invoices.",
        "signin": "Sign in", "signout": "Sign out", "signed_in_as": "Signed in as",
        "loading": "Loading …", "subscriber": "Customer number", "choose_subscriber": "Show customer",
        "subscriptions": "Subscriptions", "invoices": "Invoices and other documents",
        "no_subscriptions": "No subscriptions.", "no_invoices": "No invoices.",
        "status": "Status", "status_active": "Active", "status_future": "Starts later", "status_ended": "Ended",
        "period": "Period", "next_invoice": "Next invoice", "payment_method": "Payment",
        "stops_on": "Stops", "started": "Started",
        "stop": "Stop the subscription", "stop_on": "Stop date", "stop_code": "Reason", "stop_confirm": "Confirm stop",
        "stop_end_of_period": "The subscription stops at the end of the period.",
        "stopped": "The subscription is stopped.", "pause": "Pause", "pause_until": "Start again on",
        "paused": "The subscription is paused.", "restart": "Restart", "restarted": "The subscription is restarted.",
        "change_payment": "Change payment", "method": "Payment method", "save": "Save",
        "method_email": "Invoice by e-mail", "method_ehf": "EHF", "method_avtalegiro": "AvtaleGiro",
        "method_vipps": "Vipps", "method_card": "Card", "payment_changed": "The payment method is changed.",
        "document": "Document", "number": "Number", "issued": "Date", "open": "To pay",
        "kind_invoice": "Invoice", "kind_credit_note": "Credit note", "kind_reminder": "Reminder",
        "doc_open": "Unpaid", "doc_paid": "Paid", "doc_reminded": "Reminded", "doc_credited": "Credited",
        "pdf": "Download PDF", "export": "Download my data (JSON)", "exported": "Your data has been downloaded.",
        "your_data": "Your data", "export_text": "Everything we hold about you, as a JSON file.",
        "link_title": "Connect your subscription",
        "link_text": "Enter the e-mail address your subscription is registered with. We send a code there.",
        "send_code": "Send code", "code": "Code from the e-mail", "confirm": "Confirm",
        "code_sent": "If the address belongs to a subscription, a code has been sent to it.",
        "group": "Seats in use", "none": "–", "profile_title": "Your details",
        "profile_saved": "Your details are saved.", "email_change": "New e-mail address",
        "new_email": "New e-mail", "code_new": "Code sent to the new address",
        "email_code_sent": "We have sent a code to the new address.", "email_changed": "The e-mail address is changed.",
    },
}

PER = {
    "nb": {Frequency.WEEKLY: "per uke", Frequency.FOUR_WEEKLY: "per fire uker", Frequency.MONTHLY: "per måned",
           Frequency.QUARTERLY: "per kvartal", Frequency.HALF_YEARLY: "per halvår", Frequency.YEARLY: "per år"},
    "en": {Frequency.WEEKLY: "per week", Frequency.FOUR_WEEKLY: "per four weeks", Frequency.MONTHLY: "per month",
           Frequency.QUARTERLY: "per quarter", Frequency.HALF_YEARLY: "per half year", Frequency.YEARLY: "per year"},
}
SYMBOL = {"NOK": "kr", "SEK": "kr", "DKK": "kr"}


def money(minor: int, currency: str, lang: str) -> str:
    """``minor`` units as the language writes them: 1 234,50 kr (nb), NOK 1,234.50 (en)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    if lang == "nb":
        grouped = f"{whole:,}".replace(",", "\u00a0")
        return f"{sign}{grouped},{cents:02d}\u00a0{SYMBOL.get(currency, currency)}"
    return f"{sign}{currency}\u00a0{whole:,}.{cents:02d}"


def percent(rate_bp: int, lang: str) -> str:
    whole, rest = divmod(rate_bp, 100)
    text = f"{whole}" if rest == 0 else f"{whole}{',' if lang == 'nb' else '.'}{rest:02d}".rstrip("0")
    return f"{text}\u00a0%"


def per_period(frequency: Frequency, lang: str) -> str:
    return PER[lang][frequency]
