"""E-mail (D3): the port ``shared.ports.Mailer`` over SMTP (the standard library's
``smtplib``) or Azure Communication Services Email (``azure-communication-email``).

Both send one ``Mail``: a text and an HTML body, attachments (the document's PDF), and a
``Message-ID`` we choose per (document, channel, attempt), so a mail sent twice (the
process died after sending and before the delivery log said so) is recognisably the
same message. Errors are sorted for the delivery service: a permanent refusal (SMTP
5xx, ACS 400 or a failed operation) is ``MailRefused``; anything that may pass (no
connection, timeout, SMTP 4xx, ACS 408/429/5xx) is ``MailUnavailable``, which the bus
retries.

* ``SmtpMailer`` (the local host and the tests, against aiosmtpd; or any relay): one
  connection per mail, STARTTLS and login when configured. Its message id is the
  ``Message-ID`` (what a bounce quotes).
* ``AcsMailer``: ``EmailClient.begin_send`` with ``operation_id`` derived from the
  Message-ID, so ACS itself treats a repeat as the same operation; it polls the
  operation to its end. Its message id is the operation id.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
import uuid
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from ..domain.catalogue import one_address, reads_back
from ..ports import Mail, MailRefused, MailUnavailable

# what ends a line somewhere (str.splitlines) and any other control character: never in a header
BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """A header's text (a subject, a display name) on one line: a line break or control
    character in a name the catalogue or a subscriber gave becomes a space, so it can
    neither add a header nor make the message unbuildable."""
    return BREAKS.sub(" ", text).strip()


def checked_address(what: str, value: str) -> str:
    """``value`` if it is one addr-spec (RFC 5322; a non-ASCII local part as RFC 6531 allows),
    else ``MailRefused``: an address with a line break, two addresses or a display name is
    refused for good (the document falls back to print) instead of failing on every retry."""
    if BREAKS.search(value) or not one_address(value):
        raise MailRefused(f"{what} {value!r} is not an e-mail address")
    return value


def _mailbox(name: str, address: str) -> Address:
    """The From mailbox as the header registry's ``Address``, which encodes a display name
    whole (``formataddr`` wrote "Støtte, evil@attacker.com" as two addresses)."""
    try:
        return Address(display_name=name, addr_spec=address)
    except NonASCIILocalPartDefect:
        local, _, domain = address.rpartition("@")
        return Address(display_name=name, username=local, domain=domain)


def as_message(mail: Mail) -> EmailMessage:
    """The RFC 5322 message of ``mail``: text and HTML alternatives, then the attachments.
    Every header is one line (``one_line``, ``checked_address``): no header injection."""
    message = EmailMessage()
    sender = checked_address("sender", mail.sender)
    mailbox = _mailbox(one_line(mail.sender_name), sender)
    if not reads_back(mailbox):  # the name and the address together may not read back as one
        raise MailRefused(f"sender {mail.sender!r} with the name {mail.sender_name!r} is not one mailbox")
    message["From"] = mailbox
    message["To"] = checked_address("recipient", mail.to)
    if mail.reply_to:
        message["Reply-To"] = checked_address("reply-to", mail.reply_to)
    message["Subject"] = one_line(mail.subject)
    message["Message-ID"] = mail.message_id
    message["Date"] = formatdate(usegmt=True)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    for a in mail.attachments:
        maintype, _, subtype = a.content_type.partition("/")
        message.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
    return message


def _smtp_error(code: int, text: str) -> Exception:
    return MailRefused(f"SMTP {code} {text}") if code >= 500 else MailUnavailable(f"SMTP {code} {text}")


def _text(response: bytes | str) -> str:
    return (response.decode(errors="replace") if isinstance(response, bytes) else response).strip()[:200]


class SmtpMailer:
    """``timeout`` bounds each read and write; ``deadline`` (twice that unless given) bounds
    the whole send, however slowly a server trickles its answers, so a send always ends
    well inside the delivery claim's lease (``delivery.LEASE``) and no second handler
    takes the row over while this one is still sending."""

    def __init__(self, host: str, port: int = 25, user: str = "", password: str = "", starttls: bool = False,
                 timeout: float = 20.0, deadline: float | None = None) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls, self.timeout = starttls, timeout
        self.deadline = deadline if deadline is not None else 2 * timeout

    def send(self, mail: Mail) -> str:
        message = as_message(mail)  # MailRefused for an address that is none
        smtp = smtplib.SMTP(timeout=self.timeout)
        watchdog = threading.Timer(self.deadline, _hang_up, (smtp,))
        watchdog.start()
        try:
            with smtp:
                smtp.connect(self.host, self.port)
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message, from_addr=mail.sender, to_addrs=[mail.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _smtp_error(code, _text(text)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth ...
            raise _smtp_error(exc.smtp_code, _text(exc.smtp_error)) from None
        except smtplib.SMTPNotSupportedError:  # an international address to a server without SMTPUTF8: for good
            raise MailRefused(f"SMTP server {self.host}:{self.port} cannot take the address {mail.to!r} "
                              "(no SMTPUTF8)") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, hang-up, past the deadline
            raise MailUnavailable(f"SMTP server {self.host}:{self.port}: {type(exc).__name__}") from None
        finally:
            watchdog.cancel()
        return mail.message_id


def _hang_up(smtp: smtplib.SMTP) -> None:
    """The deadline passed: shut the connection, so the blocked read ends at once."""
    sock = smtp.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def acs_message(mail: Mail) -> dict[str, Any]:
    """The ACS Email send request body of ``mail``."""
    import base64

    body: dict[str, Any] = {
        "senderAddress": checked_address("sender", mail.sender),
        "recipients": {"to": [{"address": checked_address("recipient", mail.to)}]},
        "content": {"subject": one_line(mail.subject), "plainText": mail.text, "html": mail.html},
        "attachments": [{"name": a.filename, "contentType": a.content_type,
                         "contentInBase64": base64.b64encode(a.data).decode()} for a in mail.attachments],
        "userEngagementTrackingDisabled": True,
    }
    if mail.reply_to:
        body["replyTo"] = [{"address": checked_address("reply-to", mail.reply_to)}]
    return body


def operation_id(message_id: str) -> str:
    """The ACS operation id of a mail: a UUID derived from its Message-ID (a repeat is the same operation)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, message_id))


class AcsMailer:
    def __init__(self, client: Any, polling_interval: float = 2.0) -> None:
        self.client = client  # azure.communication.email.EmailClient
        self.polling_interval = polling_interval

    @classmethod
    def from_connection_string(cls, conn: str, polling_interval: float = 2.0) -> AcsMailer:
        """The client of an ACS connection string (``endpoint=https://...;accesskey=...``). The
        SDK's own parser always makes the endpoint https; an ``http://`` endpoint (a loopback
        simulator in the tests) is kept as given."""
        from azure.communication.email import EmailClient
        from azure.core.credentials import AzureKeyCredential

        parts = {k.lower(): v for k, _, v in (p.partition("=") for p in conn.split(";") if p)}
        endpoint = parts.get("endpoint", "")
        if endpoint.startswith("http://"):
            return cls(EmailClient(endpoint.rstrip("/"), AzureKeyCredential(parts.get("accesskey", ""))),
                       polling_interval)
        return cls(EmailClient.from_connection_string(conn), polling_interval)

    def send(self, mail: Mail) -> str:
        op = operation_id(mail.message_id)
        try:
            poller = self.client.begin_send(acs_message(mail), operation_id=op,
                                            polling_interval=self.polling_interval)
            result = poller.result()
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status in (408, 429) or status >= 500:
                raise MailUnavailable(f"ACS Email answered {status}") from None
            raise MailRefused(f"ACS Email answered {status}: {_text(exc.reason or '')}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise MailUnavailable(f"ACS Email not reached: {type(exc).__name__}") from None
        outcome: dict[str, Any] = result or {}
        if outcome.get("status") != "Succeeded":
            error = outcome.get("error") or {}
            raise MailRefused(f"ACS Email operation {outcome.get('status')}: {_text(str(error.get('message') or ''))}")
        return str(outcome.get("id") or op)
