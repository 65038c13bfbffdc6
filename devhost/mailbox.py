"""A local SMTP server (aiosmtpd) that keeps every mail it receives: the mail server of
the local host, the demo and the tests (``ABONNO_SMTP_HOST``/``PORT`` point the app at it).

Mails are kept in memory (``mails``, ``messages``), and, given a blob service, written to
the Azurite container ``mailbox`` as ``{yyyy-mm-dd}/{Message-ID}.eml`` so a person can open
exactly what a subscriber would receive. ``refuse`` names addresses answered ``550`` at
``RCPT`` (a permanent refusal, as for a mailbox that does not exist); ``down()`` stops
accepting connections and ``up()`` accepts them again (a server that is away for a while).
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

CONTAINER = "mailbox"
log = logging.getLogger(__name__)
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every address at INFO: not our logs' way


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:
        if address.lower() in self.box.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.box.received(bytes(envelope.original_content or envelope.content))
        return "250 OK queued"


class Mailbox:
    def __init__(self, port: int | None = None, blobs: Any = None) -> None:
        self.port = port or free_port()
        self.refuse: set[str] = set()
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.container = None
        if blobs is not None:
            from azure.core.exceptions import ResourceExistsError

            self.container = blobs.get_container_client(CONTAINER)
            try:
                self.container.create_container()
            except ResourceExistsError:
                pass

    def up(self) -> Mailbox:
        if self._controller is None:
            self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self, data: bytes) -> None:
        with self._lock:
            self.raw.append(data)
        if self.container is not None:  # for a person to read; a repeat overwrites its copy
            mid = (parse(data)["Message-ID"] or f"<{len(self.raw)}>").strip("<>")
            try:
                self.container.upload_blob(f"{datetime.now(UTC).date().isoformat()}/{mid}.eml", data, overwrite=True)
            except Exception:  # the mail was received all the same
                log.exception("mailbox: could not keep a copy of %s", mid)

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [parse(d) for d in self.raw]

    def mails(self, tenant: str) -> list[EmailMessage]:
        """The mails about one tenant's documents (their Message-ID names the tenant)."""
        return [m for m in self.messages() if f".{tenant}@" in (m["Message-ID"] or "")]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
