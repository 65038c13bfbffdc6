"""A flaky or hostile SMTP server against ``SmtpMailer``: whatever the server does (never
greets, hangs after DATA, drops the line mid-DATA, answers 4xx or 5xx at any step, does not
speak SMTPUTF8, trickles its answers a byte at a time), ``send`` ends within its deadline
and says ``MailUnavailable`` (the bus tries again) or ``MailRefused`` (the document goes to
print), never anything else. A server that trickled kept a send going for as long as it
liked (the socket timeout is per read), past the delivery claim's lease, so a second
handler took the row over and mailed the document twice; a server without SMTPUTF8 was
retried as if it might learn it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from shared.adapters.mail import SmtpMailer
from shared.ports import Mail, MailRefused, MailUnavailable

Script = Callable[[socket.socket], None]
TIMEOUT = 1.0


def reply(conn: socket.socket, line: str) -> None:
    conn.sendall(line.encode() + b"\r\n")


def until(conn: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError
        data += chunk
    return data


def data(conn: socket.socket, answers: dict[str, str], stop_at: str, buffer: bytes) -> bytes | None:
    """The DATA step: its answer, the message, the answer to the message (or a hang or a
    drop); what is left of the buffer, None when the line is gone."""
    reply(conn, answers.get("DATA", "354 go ahead"))
    if not answers.get("DATA", "354").startswith("354"):
        return buffer
    body = buffer if b"\r\n.\r\n" in buffer else buffer + until(conn, b"\r\n.\r\n")
    if stop_at == "END.":
        time.sleep(TIMEOUT * 10)
        return None
    if answers.get("END.") == "drop":
        conn.close()
        return None
    reply(conn, answers.get("END.", "250 queued"))
    return body.split(b"\r\n.\r\n", 1)[1]


def dialogue(conn: socket.socket, answers: dict[str, str], stop_at: str = "", utf8: bool = True) -> None:
    """A server that answers each command with ``answers`` (default 250) and stops talking
    (hangs) at ``stop_at``, or drops the line there if the answer is "drop"."""
    reply(conn, "220 flaky ESMTP")
    buffer: bytes | None = b""
    while buffer is not None:
        if b"\r\n" not in buffer:
            buffer += until(conn, b"\r\n")
            continue
        line, buffer = buffer.split(b"\r\n", 1)
        verb = line[:4].decode(errors="replace").upper()
        if verb == stop_at:
            if answers.get(verb) == "drop":
                conn.close()
            else:
                time.sleep(TIMEOUT * 10)
            return
        if verb == "EHLO":
            reply(conn, "250-flaky\r\n250 SMTPUTF8" if utf8 else "250 flaky")
        elif verb == "DATA":
            buffer = data(conn, answers, stop_at, buffer)
        elif verb == "QUIT":
            reply(conn, "221 bye")
            return
        else:
            reply(conn, answers.get(verb, "250 OK"))


def trickle(conn: socket.socket) -> None:
    """Answers one byte at a time, each just inside the socket timeout: forever, slowly."""
    for _ in range(100):
        for byte in b"220-slow\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(TIMEOUT * 0.6)


@pytest.fixture
def server() -> Iterator[Callable[[Script], int]]:
    listeners: list[socket.socket] = []

    def start(script: Script) -> int:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listeners.append(listener)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    script(conn)
                except OSError:
                    pass

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()


def mail(to: str = "ola@example.no") -> Mail:
    return Mail("<inv-00000001.1.7.shop@abonno>", "faktura@avis.no", to, "Faktura 1", "Hei", "<p>Hei</p>")


PASSING: dict[str, Script] = {
    "never greets": lambda c: time.sleep(TIMEOUT * 10),
    "421 at once": lambda c: reply(c, "421 too busy"),
    "hangs at MAIL": lambda c: dialogue(c, {}, "MAIL"),
    "hangs after the data": lambda c: dialogue(c, {}, "END."),
    "drops mid-DATA": lambda c: dialogue(c, {"END.": "drop"}),
    "drops at RCPT": lambda c: dialogue(c, {"RCPT": "drop"}, "RCPT"),
    "451 at RCPT": lambda c: dialogue(c, {"RCPT": "451 try later"}),
    "452 at MAIL": lambda c: dialogue(c, {"MAIL": "452 no room"}),
    "451 after the data": lambda c: dialogue(c, {"END.": "451 try later"}),
    "trickles": trickle,
}
REFUSED: dict[str, Script] = {
    "550 at RCPT": lambda c: dialogue(c, {"RCPT": "550 no such mailbox"}),
    "554 at DATA": lambda c: dialogue(c, {"DATA": "554 no"}),
    "552 after the data": lambda c: dialogue(c, {"END.": "552 too big"}),
    "553 at MAIL": lambda c: dialogue(c, {"MAIL": "553 sender refused"}),
}


@pytest.mark.parametrize("name", sorted(PASSING))
def test_a_passing_failure_is_mail_unavailable_within_the_deadline(server: Callable[[Script], int],
                                                                   name: str) -> None:
    mailer = SmtpMailer("127.0.0.1", server(PASSING[name]), timeout=TIMEOUT)
    began = time.monotonic()
    with pytest.raises(MailUnavailable):
        mailer.send(mail())
    assert time.monotonic() - began < TIMEOUT * 4  # the deadline is twice the timeout


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_permanent_refusal_is_mail_refused(server: Callable[[Script], int], name: str) -> None:
    with pytest.raises(MailRefused):
        SmtpMailer("127.0.0.1", server(REFUSED[name]), timeout=TIMEOUT).send(mail())


def test_a_server_without_smtputf8_refuses_an_international_address_for_good(
        server: Callable[[Script], int]) -> None:
    port = server(lambda c: dialogue(c, {}, utf8=False))
    with pytest.raises(MailRefused):
        SmtpMailer("127.0.0.1", port, timeout=TIMEOUT).send(mail("ærlig@eksempel.no"))


def test_a_server_that_answers_well_takes_the_mail(server: Callable[[Script], int]) -> None:
    port = server(lambda c: dialogue(c, {}))
    assert SmtpMailer("127.0.0.1", port, timeout=TIMEOUT).send(mail()) == "<inv-00000001.1.7.shop@abonno>"
