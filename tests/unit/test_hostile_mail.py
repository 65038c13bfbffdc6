"""A hostile organisation or subscriber against the mail adapter: whatever text a name,
subject or address holds (line breaks, U+2028, control characters, RTL marks, 200-char
words), the message either is built with exactly its own headers, one line each, or is
refused for good (``MailRefused``, so the document falls back to print); it never raises
anything else (which left the delivery row queued and the document undelivered) and never
carries a header the text smuggled in."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.adapters.mail import acs_message, as_message
from shared.ports import Attachment, Mail, MailRefused

HEADERS = {"From", "To", "Subject", "Message-ID", "Date", "MIME-Version", "Content-Type"}
hostile = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=250) | st.sampled_from([
    "Avis\r\nBcc: victim@example.com", "Avis\nX-Injected: 1", "Avis\u2028AS", "Avis\x85AS", "\u202eSA sivA",
    "<script>alert(1)</script>", "x" * 200, "Avis\r\n\r\n<html>body</html>"])


def mail(**changes: str) -> Mail:
    values = dict(message_id="<inv-00000001.1.7.shop@abonno>", sender="faktura@avis.no", to="ola@example.no",
                  subject="Faktura 1", text="Hei", html="<p>Hei</p>", sender_name="Avisa AS", reply_to="")
    values.update(changes)
    return Mail(attachments=(Attachment("inv-00000001.pdf", "application/pdf", b"%PDF-1.7"),), **values)


def parsed(m: Mail) -> object:
    return message_from_bytes(as_message(m).as_bytes(), policy=default)


@settings(max_examples=300, deadline=None)
@given(hostile, hostile)
def test_any_subject_and_sender_name_give_one_line_headers_and_no_injected_header(subject: str, name: str) -> None:
    message = parsed(mail(subject=subject, sender_name=name))
    assert set(message.keys()) == HEADERS  # type: ignore[attr-defined]
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])  # type: ignore[index]
    assert message["From"].addresses[0].addr_spec == "faktura@avis.no"  # type: ignore[index]
    assert message["To"].addresses[0].addr_spec == "ola@example.no"  # type: ignore[index]
    assert acs_message(mail(subject=subject))["content"]["subject"].isprintable() or not subject.isprintable()


@settings(max_examples=300, deadline=None)
@given(hostile)
@example("\\@[")  # CPython's own header parser raises AttributeError on it (found by this property in CI)
def test_any_address_is_one_recipient_or_refused_for_good(address: str) -> None:
    for field in ("to", "sender", "reply_to"):
        try:
            message = parsed(mail(**{field: address}))
        except MailRefused:
            continue
        assert set(message.keys()) <= HEADERS | {"Reply-To"}  # type: ignore[attr-defined]
        header = {"to": "To", "sender": "From", "reply_to": "Reply-To"}[field]
        if field == "reply_to" and not address:
            assert message[header] is None  # type: ignore[index]
            continue
        assert len(message[header].addresses) == 1  # type: ignore[index]


@pytest.mark.parametrize("address", ["Ola\r\nBcc: victim@example.com", "ola@example.no\nBcc: v@example.com",
                                     "ola@example.no, victim@example.com", "Ola <ola@example.no>", "ola@ex\u2028.no"])
def test_an_address_with_a_line_break_or_a_second_address_is_refused_for_good(address: str) -> None:
    with pytest.raises(MailRefused):
        as_message(mail(to=address))
    with pytest.raises(MailRefused):
        acs_message(mail(to=address))


@pytest.mark.parametrize("address", ['"odd person"@example.com', "user+tag@sub.example.co", 'x@[127.0.0.1]',
                                     '"a\\"b"@example.no', "ærlig@eksempel.no"])
def test_odd_but_valid_addresses_are_sent_to(address: str) -> None:
    assert as_message(mail(to=address))["To"]


def test_a_subject_with_a_line_break_is_sent_on_one_line() -> None:
    message = parsed(mail(subject="Faktura 1 – Avis\r\nBcc: victim@example.com", sender_name="Avis\nAS"))
    assert message["Subject"] == "Faktura 1 – Avis Bcc: victim@example.com"  # type: ignore[index]
    assert message["Bcc"] is None  # type: ignore[index]
    assert message["From"].addresses[0].display_name == "Avis AS"  # type: ignore[index]
