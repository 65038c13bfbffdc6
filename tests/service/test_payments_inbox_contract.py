"""The payments inbox port's contract, run against the in-memory fake and against the Table
Storage adapter on Azurite with the same assertions: what a record is read back as, that it
is kept once, that claims and take-backs conflict on a stale read, and that tenants never
see each other's records. Plus the adapter alone: rows in the forms older code wrote load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.adapters.codec import dumps
from shared.adapters.payments_inbox import PaymentsInbox
from shared.domain.payments import BookedPayment, MatchType, PaymentState, ReceivedPayment
from shared.formats.payments import IncomingPayment, RecordKind, UnreadableRecord
from shared.ports import (
    AwaitingPayment,
    ConcurrencyConflict,
    Handling,
    Hold,
    MandateAside,
    PaymentsInboxPort,
    SetAside,
)
from shared.service.context import Context
from tests.fakes.payments_inbox import FakePaymentsInbox

DAY = date(2026, 1, 10)
AT = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)


@dataclass
class Subject:
    inbox: PaymentsInboxPort
    book: Callable[[str, int, BookedPayment], None]  # a payment onto a subscriber's ledger


@pytest.fixture(params=["fake", "azurite"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "fake":
        fake = FakePaymentsInbox()
        yield Subject(fake, fake.book)
        return
    ctx: Context = request.getfixturevalue("ctx")

    def book(tenant: str, subscriber_no: int, booked: BookedPayment) -> None:  # the row AccountRepository writes
        place = ctx.accounts.place(tenant, subscriber_no)  # type: ignore[attr-defined]
        ctx.storage.upsert("Subscribers", {"PartitionKey": place.pk, "RowKey": place.rk(f"1|pay|{booked.payment.id}"),
                                           "Body": dumps(booked)})
    yield Subject(ctx.inbox, book)


def incoming(line: str = "1.1", amount: int = 7000, kind: RecordKind = RecordKind.PAYMENT) -> IncomingPayment:
    return IncomingPayment("ocr_giro", line, amount, "NOK", "0000012345678", DAY, payee_account="86011117947",
                           kind=kind, raw=f"NY09... {line}")


def aside(pid: str = "imp.1.1", record: Any = None, kind: str = "payment") -> SetAside:
    record = record or incoming()
    return SetAside(pid, kind, record, "not_a_kid", "reference is not a KID of avisa", "ocr.txt", "imp",
                    getattr(record, "amount_minor", 0) or 0, "NOK", getattr(record, "raw", "")[:1000])


def received(pid: str = "imp.1.2", amount: int = 34800) -> ReceivedPayment:
    return ReceivedPayment(pid, "avisa", "NOK", amount, DAY, "ocr_giro", MatchType.EXTERNAL_IDENTIFIER,
                           "0000012345678", 1)


def same(stored: SetAside | AwaitingPayment | None, kept: SetAside | AwaitingPayment) -> bool:
    """Equal but for the ETag, which the store assigns."""
    return stored is not None and replace(stored, hold=replace(stored.hold, etag="")) == kept


def test_a_set_aside_record_is_kept_once_and_read_back_as_it_was_kept(subject: Subject, tenant: str) -> None:
    unreadable = UnreadableRecord("1.3", "NY09 garbled", "amount is not a number", None, "NOK", "86011117947")
    mandate = MandateAside("0000012345678", "new_or_updated", True, "86011117947")
    kept = [aside(), aside("imp.1.3", unreadable, "unreadable"), aside("imp.m1.4", mandate, "mandate"),
            aside("imp.1.5", incoming("1.5", kind=RecordKind.REVERSAL), "reversal"), aside("other.1.1")]
    assert [subject.inbox.set_aside(tenant, a) for a in kept] == [True] * 5
    assert subject.inbox.set_aside(tenant, replace(kept[0], reason="again")) is False  # imported twice: kept once
    for a in kept:
        assert same(subject.inbox.set_aside_record(tenant, a.id), a)
    assert [a.id for a in subject.inbox.set_asides(tenant, "imp.")] == ["imp.1.1", "imp.1.3", "imp.1.5", "imp.m1.4"]
    assert len(subject.inbox.set_asides(tenant)) == 5
    assert subject.inbox.set_aside_record(tenant, "nope") is None
    assert subject.inbox.set_asides("someone-else") == [] and subject.inbox.set_aside_record("x", "imp.1.1") is None


def test_a_payment_awaiting_approval_is_kept_once_and_listed_by_id(subject: Subject, tenant: str) -> None:
    second, first = AwaitingPayment(received("imp.1.9"), 42, "ocr.txt", "NOK"), AwaitingPayment(received(), 7, "o")
    assert subject.inbox.await_approval(tenant, second) and subject.inbox.await_approval(tenant, first)
    assert subject.inbox.await_approval(tenant, replace(first, subscriber_no=8)) is False
    assert [a.id for a in subject.inbox.awaiting(tenant)] == ["imp.1.2", "imp.1.9"]
    assert same(subject.inbox.awaiting_payment(tenant, "imp.1.2"), replace(first, currency="NOK"))
    assert same(subject.inbox.awaiting_payment(tenant, "imp.1.9"), second)
    assert subject.inbox.awaiting_payment(tenant, "nope") is None and subject.inbox.awaiting("someone-else") == []


@pytest.mark.parametrize("kind", ["set aside", "awaiting"])
def test_of_two_claims_on_one_read_one_wins_and_the_record_goes_open_claimed_open_done(
        subject: Subject, tenant: str, kind: str) -> None:
    inbox = subject.inbox
    if kind == "set aside":
        inbox.set_aside(tenant, aside())
    else:
        inbox.await_approval(tenant, AwaitingPayment(received("imp.1.1"), 7, "ocr.txt"))

    def read() -> SetAside | AwaitingPayment | None:
        if kind == "set aside":
            return inbox.set_aside_record(tenant, "imp.1.1")
        return inbox.awaiting_payment(tenant, "imp.1.1")

    before = read()
    assert before is not None and before.hold.state is Handling.OPEN and before.hold.etag
    inbox.claim(tenant, before, "7|avisa|", AT)
    with pytest.raises(ConcurrencyConflict):
        inbox.claim(tenant, before, "8|avisa|", AT)  # the same read: it changed since
    claimed = read()
    assert claimed is not None and claimed.hold.etag != before.hold.etag
    assert (claimed.hold.state, claimed.hold.target, claimed.hold.claimed_at) == (Handling.CLAIMED, "7|avisa|", AT)
    inbox.release(tenant, claimed)
    released = read()
    assert released is not None and (released.hold.state, released.hold.target) == (Handling.OPEN, "")
    inbox.claim(tenant, released, "7|avisa|", AT)
    again = read()
    assert again is not None
    if isinstance(again, SetAside):
        inbox.resolved(tenant, again, 7)
        done = inbox.set_aside_record(tenant, "imp.1.1")
        assert done is not None and (done.hold.state, done.resolved_to) == (Handling.DONE, 7)
        assert same(done, replace(aside(), resolved_to=7, hold=Hold(Handling.DONE, "7|avisa|", AT)))
    else:
        inbox.approved(tenant, again, "boss")
        approved = inbox.awaiting_payment(tenant, "imp.1.1")
        assert approved is not None and (approved.hold.state, approved.approved_by) == (Handling.DONE, "boss")


def test_a_payment_taken_back_by_a_reversal_is_done_and_a_stale_take_back_conflicts(
        subject: Subject, tenant: str) -> None:
    subject.inbox.await_approval(tenant, AwaitingPayment(received(), 7, "ocr.txt"))
    read = subject.inbox.awaiting_payment(tenant, "imp.1.2")
    assert read is not None
    subject.inbox.claim(tenant, read, "boss", AT)  # an approval took it after the reversal read it
    with pytest.raises(ConcurrencyConflict):
        subject.inbox.take_back(tenant, read, "imp2.1.1")
    claimed = subject.inbox.awaiting_payment(tenant, "imp.1.2")
    assert claimed is not None and claimed.hold.state is Handling.CLAIMED and claimed.reversed_by is None
    subject.inbox.release(tenant, claimed)
    fresh = subject.inbox.awaiting_payment(tenant, "imp.1.2")
    assert fresh is not None
    subject.inbox.take_back(tenant, fresh, "imp2.1.1")
    taken = subject.inbox.awaiting_payment(tenant, "imp.1.2")
    assert taken is not None and (taken.hold.state, taken.reversed_by) == (Handling.DONE, "imp2.1.1")


def test_booked_payments_are_found_per_subscriber_and_per_tenant(subject: Subject, tenant: str) -> None:
    def booked(pid: str, amount: int) -> BookedPayment:
        return BookedPayment(received(pid, amount), PaymentState.COMPLETED, DAY, (), amount)

    subject.book(tenant, 7, booked("a", 100))
    subject.book(tenant, 7, booked("b", 200))
    subject.book(tenant, 12, booked("c", 300))
    subject.book(f"{tenant}x", 7, booked("d", 400))  # another tenant, whose id starts with this one's
    assert sorted((n, b.payment.id) for n, b in subject.inbox.booked_payments(tenant, 7)) == [(7, "a"), (7, "b")]
    assert sorted((n, b.payment.id, b.credit_minor) for n, b in subject.inbox.booked_payments(tenant)) == [
        (7, "a", 100), (7, "b", 200), (12, "c", 300)]
    assert list(subject.inbox.booked_payments(tenant, 99)) == []


def test_rows_in_the_forms_older_code_wrote_still_load(ctx: Context, tenant: str) -> None:
    """Before handling states: no State (done by ResolvedTo/ApprovedBy), no Kind (a payment),
    no ReasonCode, Report, Currency or Raw."""
    pk, body = f"rp|{tenant}", dumps(incoming())
    ctx.storage.insert("Payments", {"PartitionKey": pk, "RowKey": "old.1", "Body": body, "Reason": "no KID",
                                    "File": "f.txt", "Amount": 7000})
    ctx.storage.insert("Payments", {"PartitionKey": pk, "RowKey": "old.2", "Body": body, "Reason": "no KID",
                                    "File": "f.txt", "Amount": 7000, "ResolvedTo": 7})
    ctx.storage.insert("Payments", {"PartitionKey": f"aa|{tenant}", "RowKey": "imp.1.2", "Body": dumps(received()),
                                    "SubscriberNo": 7, "File": "f.txt", "Amount": 34800, "ApprovedBy": "boss"})
    inbox = PaymentsInbox(ctx.storage)
    old, resolved = inbox.set_asides(tenant)
    assert same(old, SetAside("old.1", "payment", incoming(), None, "no KID", "f.txt", amount_minor=7000))
    assert (resolved.hold.state, resolved.resolved_to) == (Handling.DONE, 7)
    (approved,) = inbox.awaiting(tenant)
    assert same(approved, AwaitingPayment(received(), 7, "f.txt", None, "boss", None, Hold(Handling.DONE)))


def test_records_are_written_in_the_row_format_existing_rows_have(ctx: Context, tenant: str) -> None:
    """The columns the first code wrote, so rows written now and rows written then are one format."""
    mandate = MandateAside("0000012345678", "deleted", False, "86011117947")
    ctx.inbox.set_aside(tenant, aside("imp.m1.4", mandate, "mandate"))
    ctx.inbox.set_aside(tenant, aside())
    ctx.inbox.await_approval(tenant, AwaitingPayment(received(), 7, "ocr.txt"))
    row = ctx.storage.get("Payments", f"rp|{tenant}", "imp.m1.4")
    assert row is not None and "Raw" not in row
    assert {k: row[k] for k in ("Kind", "ReasonCode", "Reason", "File", "Report", "Amount", "Currency", "State")} == {
        "Kind": "mandate", "ReasonCode": "not_a_kid", "Reason": "reference is not a KID of avisa", "File": "ocr.txt",
        "Report": "imp", "Amount": 0, "Currency": "NOK", "State": "open"}
    assert row["Body"] == ('{"kid": "0000012345678", "registration": "deleted", "notify": false, '
                           '"account": "86011117947"}')
    payment = ctx.storage.get("Payments", f"rp|{tenant}", "imp.1.1")
    assert payment is not None and payment["Body"] == dumps(incoming()) and payment["Raw"] == "NY09... 1.1"
    waiting = ctx.storage.get("Payments", f"aa|{tenant}", "imp.1.2")
    assert waiting is not None and {k: waiting[k] for k in ("Body", "SubscriberNo", "File", "Amount", "Currency",
                                                           "State")} == {
        "Body": dumps(received()), "SubscriberNo": 7, "File": "ocr.txt", "Amount": 34800, "Currency": "NOK",
        "State": "open"}
