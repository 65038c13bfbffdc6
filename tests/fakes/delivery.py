"""Fakes of the delivery ports: a mailer that keeps what it sends (and refuses what it is
told to), an access point, document files with links that expire, the delivery log and
the print queue, in memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from shared.adapters.print_queue import postal_key
from shared.ports import ConcurrencyConflict, Delivery, Mail, MailRefused, PrintItem

from .faults import Faults


class FakeMailer(Faults):
    """Keeps every mail it sends (a repeat of a Message-ID is kept again: as a server would
    receive it); refuses with ``MailRefused`` the addresses in ``refuse``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Mail] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> str:
        self.fault("send", mail.to)
        if mail.to in self.refuse:
            raise MailRefused(f"550 {mail.to}: no such mailbox")
        with self._lock:
            self.sent.append(mail)
        return mail.message_id


class FakeAccessPoint(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.outbox: dict[str, bytes] = {}  # "{tenant}/{date}/{name}" -> UBL, written once
        self.receivers: set[str] | None = None  # None: every organisation number receives

    def can_receive(self, tenant: str, scheme: str, organization_number: str) -> bool:
        return self.receivers is None or organization_number in self.receivers

    def send(self, tenant: str, day: date, name: str, ubl: bytes) -> str:
        self.fault("send", tenant, name)
        key = f"{tenant}/{day.isoformat()}/{name}"
        self.outbox.setdefault(key, ubl)
        return key


class FakeDocumentFiles(Faults):
    """Files in memory; a link is ``memory://{name}?se={expiry, epoch seconds}`` and ``open``
    refuses it after."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self.logos: dict[str, bytes] = {}

    @staticmethod
    def name(tenant: str, subscriber_no: int, document_id: str, suffix: str) -> str:
        return f"{tenant}/{subscriber_no:010d}/{document_id}.{suffix}"

    def put(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, data: bytes,
            content_type: str) -> str:
        self.fault("put")
        name = self.name(tenant, subscriber_no, document_id, suffix)
        self.files[name] = data
        return name

    def get(self, tenant: str, subscriber_no: int, document_id: str, suffix: str) -> bytes | None:
        return self.files.get(self.name(tenant, subscriber_no, document_id, suffix))

    def link(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, valid_for: timedelta) -> str:
        expiry = int((datetime.now(UTC) + valid_for).timestamp())
        return f"memory://{self.name(tenant, subscriber_no, document_id, suffix)}?se={expiry}"

    def logo(self, tenant: str, name: str) -> bytes | None:
        return self.logos.get(f"{tenant}/{name}")

    def put_logo(self, tenant: str, name: str, data: bytes, content_type: str) -> None:
        self.logos[f"{tenant}/{name}"] = data

    def open(self, link: str) -> bytes:
        """What the link reads: ``PermissionError`` once it has expired."""
        url = urlparse(link)
        if int(parse_qs(url.query)["se"][0]) < datetime.now(UTC).timestamp():
            raise PermissionError("the link has expired")
        return self.files[url.netloc + url.path]


class FakeDeliveryLog(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, int, str, str, int], Delivery] = {}
        self._versions = 0
        self._lock = threading.Lock()

    def _etag(self) -> str:
        self._versions += 1
        return f"v{self._versions}"

    def claim(self, tenant: str, subscriber_no: int, delivery: Delivery) -> tuple[Delivery, bool]:
        self.fault("claim", tenant, subscriber_no)
        key = (tenant, subscriber_no, delivery.document_id, delivery.channel, delivery.attempt)
        with self._lock:
            if key in self.rows:
                return self.rows[key], False
            row = self.rows[key] = replace(delivery, etag=self._etag())
            return row, True

    def update(self, tenant: str, subscriber_no: int, delivery: Delivery) -> Delivery:
        self.fault("update", tenant, subscriber_no)
        key = (tenant, subscriber_no, delivery.document_id, delivery.channel, delivery.attempt)
        with self._lock:
            stored = self.rows.get(key)
            if stored is None or stored.etag != delivery.etag:
                raise ConcurrencyConflict(f"delivery row of {delivery.document_id} changed")
            row = self.rows[key] = replace(delivery, etag=self._etag())
            return row

    def get(self, tenant: str, subscriber_no: int, document_id: str, channel: str, attempt: int) -> Delivery | None:
        return self.rows.get((tenant, subscriber_no, document_id, channel, attempt))

    def list(self, tenant: str, subscriber_no: int, document_id: str | None = None) -> list[Delivery]:
        return [d for k, d in sorted(self.rows.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][4]))
                if k[0] == tenant and k[1] == subscriber_no and (document_id is None or k[2] == document_id)]


class FakePrintQueue(Faults):
    def __init__(self) -> None:
        super().__init__()
        self.items_: dict[tuple[str, date], dict[tuple[str, str, int, str], PrintItem]] = {}

    def add(self, tenant: str, day: date, item: PrintItem) -> None:
        self.fault("add")
        key = (item.organization_id, postal_key(item.postal_code), item.subscriber_no, item.document_id)
        self.items_.setdefault((tenant, day), {})[key] = item

    def items(self, tenant: str, day: date, organization_id: str) -> Iterator[PrintItem]:
        day_items = self.items_.get((tenant, day), {})
        return iter([i for k, i in sorted(day_items.items()) if k[0] == organization_id])

    def organizations(self, tenant: str, day: date) -> list[str]:
        return sorted({k[0] for k in self.items_.get((tenant, day), {})})
