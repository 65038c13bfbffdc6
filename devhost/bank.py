"""A simulated Norwegian bank for the demo: it learns of invoices from the InvoiceIssued
events on the bus (as a payer's bank learns of eFaktura or AvtaleGiro claims) and each
day drops a real Nets OCR giro file (written with netsgiro) into
``inbound/{tenant}/`` for the payments of that day.

Most invoices are paid on their due date; some late, some in part, some twice over;
a few carry a KID that matches nothing, and some are never paid; a few payments are
reversed by the bank a few days later (OCR giro transaction type 18). Half of the
reminders are paid, by the reminder's own KID. One day's file is sent twice, the second
time with CRLF line endings (the import must see the same transmission and book nothing).

An invoice charged by a payment provider (a ``ChargeRequested`` for its demand: Vipps or a
card pays it) or already paid when it was issued (an initial Vipps charge or the card's
first purchase, ``InvoicePaid`` with it) is not paid at the bank: the payer's bank sees no
claim for it. Its reminders, if the charge fails, are paid as any other.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from shared.adapters.bus import EVENTS, unpack
from shared.formats import ocr_giro

PAID, REVERSED = 21, 18  # OCR giro transaction types: purchase with free text; reversal with KID


@dataclass
class SimulatedBank:
    connection_string: str
    tenant: str
    account: str
    rng: random.Random = field(default_factory=lambda: random.Random(47))
    seen: set[str] = field(default_factory=set)
    scheduled: dict[date, list[tuple[str, int, int]]] = field(default_factory=lambda: defaultdict(list))
    files: int = 0
    records: int = 0  # money records sent in distinct transmissions
    resent: int = 0  # files sent again (the same transmission)
    kids: dict[tuple[int, int], str] = field(default_factory=dict)  # (subscriber, demand) -> the invoice's KID
    numbers: dict[int, str] = field(default_factory=dict)  # invoice number -> KID
    charged: set[str] = field(default_factory=set)  # KIDs a provider pays: never paid at the bank

    def learn(self) -> int:
        """Read new InvoiceIssued and ReminderIssued events and decide how each will be paid."""
        queue = QueueClient.from_connection_string(self.connection_string, EVENTS)
        handlers = {"InvoiceIssued": self._plan, "ReminderIssued": self._remind}
        learned = 0
        provider_paid: list[tuple[str, dict[str, object]]] = []
        before = set(self.seen)
        while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=60)):
            for message in batch:
                for item in unpack(message.content):
                    kind = item.body.get("type", "")
                    if item.body.get("tenant") != self.tenant:
                        continue
                    if kind in ("ChargeRequested", "InvoicePaid"):
                        provider_paid.append((kind, item.body["payload"]))
                    elif (handler := handlers.get(kind)) is not None:
                        learned += handler(item.body["payload"])
                queue.delete_message(message)
        fresh = self.seen - before
        for kind, payload in provider_paid:  # after the invoices they name, whatever order they came in
            self._provider_pays(kind, payload, fresh)
        return learned

    def _provider_pays(self, kind: str, payload: dict[str, object], fresh: set[str]) -> None:
        """An invoice a provider charges, or one paid as it was issued (``fresh``: its
        InvoiceIssued came with this InvoicePaid), is not paid here."""
        if kind == "ChargeRequested":
            kid = self.kids.get((int(str(payload["subscriber_no"])), int(str(payload["demand_no"]))))
        else:
            kid = self.numbers.get(int(str(payload["invoice_number"])))
            if kid not in fresh:  # paid later, by the bank or otherwise: as it always was
                return
        if kid is None or kid in self.charged:
            return
        self.charged.add(kid)
        for day, planned in list(self.scheduled.items()):
            self.scheduled[day] = [p for p in planned if p[0] != kid]

    def _plan(self, invoice: dict[str, object]) -> int:
        kid = str(invoice["kid"])
        if kid in self.seen:  # outbox events can arrive twice
            return 0
        self.seen.add(kid)
        self.kids[(int(str(invoice["subscriber_no"])), int(str(invoice.get("demand_no") or 0)))] = kid
        self.numbers[int(str(invoice["invoice_number"]))] = kid
        if kid in self.charged:
            return 0
        due, total = date.fromisoformat(str(invoice["due_date"])), int(str(invoice["amount_due_minor"]))
        if total <= 0:  # paid from the subscriber's credit already
            return 0
        roll = self.rng.random()
        if roll < 0.02:
            self.scheduled[due].append((kid, total, PAID))
            self.scheduled[due + timedelta(days=3)].append((kid, total, REVERSED))  # the bank takes it back
        elif roll < 0.78:
            self.scheduled[due].append((kid, total, PAID))
        elif roll < 0.86:
            self.scheduled[due + timedelta(days=10)].append((kid, total, PAID))  # late
        elif roll < 0.91:
            self.scheduled[due].append((kid, total * 6 // 10, PAID))  # part
        elif roll < 0.94:
            self.scheduled[due].append((kid, total * 2, PAID))  # twice as much
        elif roll < 0.96:
            self.scheduled[due].append(("9" * (len(kid) - 1) + "1", total, PAID))  # a KID that matches nothing
        return 1  # the rest: never paid

    def _remind(self, reminder: dict[str, object]) -> int:
        """Half of the reminded pay the reminder, by its own KID, on its due date."""
        kid = str(reminder["kid"])
        if kid in self.seen:
            return 0
        self.seen.add(kid)
        if self.rng.random() < 0.5:
            due = date.fromisoformat(str(reminder["due_date"]))
            self.scheduled[due].append((kid, int(str(reminder["amount_minor"])), PAID))
        return 1

    def pay(self, day: date) -> int:
        """Drop the day's OCR giro file, if anything is paid that day; returns the payments in it."""
        paid = self.scheduled.pop(day, [])
        if not paid:
            return 0
        self.files += 1
        self.records += len(paid)
        text = ocr_giro.transmission([(kid, amount) for kid, amount, _ in paid], day, number=f"{self.files:07d}",
                                     account=self.account, types=[kind for *_, kind in paid])
        container = BlobServiceClient.from_connection_string(self.connection_string).get_container_client("inbound")
        container.upload_blob(f"{self.tenant}/nets-ocr-{day:%Y%m%d}.txt", text.encode(), overwrite=True)
        if self.files == 3:  # the same transmission again, with CRLF: a duplicate, books nothing
            self.resent += 1
            container.upload_blob(f"{self.tenant}/nets-ocr-{day:%Y%m%d}-resent.txt",
                                  text.replace("\n", "\r\n").encode(), overwrite=True)
        return sum(1 for *_, kind in paid if kind == PAID)
