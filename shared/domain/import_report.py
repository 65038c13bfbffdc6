"""The import report of one bank file (P1): where every record landed, per currency,
checked against the file's own control totals.

Each payment record of a file lands in exactly one place: booked, already booked (by an
earlier run of the same import that died half-way), awaiting approval, set aside in
*requires processing* (with its reason), reversed against the payment it takes back,
or, when the whole transmission was imported before, counted as a duplicate. A report
*adds up* when, per currency, the number of records and their net amount (payments less
reversals and deductions) equal the control totals the bank wrote into the file; one
that does not is an error, never a quiet success.

    >>> lands = [Landing("1", "NOK", "payment", 10000, Outcome.BOOKED),
    ...          Landing("2", "NOK", "reversal", 2500, Outcome.SET_ASIDE, Reason.REVERSAL_NOT_FOUND, "no match")]
    >>> report = build("r1", "ocr.txt", "ocr_giro", "nets:1:2", "ab", "2026-01-10T09:00:00",
    ...                lands, [Total("NOK", 2, 7500)])
    >>> report.balanced, report.by_currency["NOK"]["booked"], report.by_currency["NOK"]["net_minor"]
    (True, {'count': 1, 'amount_minor': 10000}, 7500)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

LISTED = 50  # set-aside records (and unmatched mandates) listed one by one; the rest are counted. The
# stored report stays well inside one Table Storage property (64 KiB); every record set aside is in
# requires processing with its reason and raw line anyway


class Outcome(StrEnum):
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"
    AWAITING_APPROVAL = "awaiting_approval"
    SET_ASIDE = "set_aside"
    REVERSED = "reversed"
    DUPLICATE = "duplicate"


class Reason(StrEnum):
    """Why a record was set aside for customer service."""

    UNKNOWN_ACCOUNT = "unknown_account"
    WRONG_CURRENCY = "wrong_currency"
    NO_REFERENCE = "no_reference"
    NOT_A_KID = "not_a_kid"
    NO_SUCH_SUBSCRIBER = "no_such_subscriber"
    TOO_MANY_DEMANDS = "too_many_demands"  # settles more open invoices than one transaction can book
    CANNOT_BOOK = "cannot_book"  # its booking cannot be written (an amount no ledger row holds)
    REVERSAL_NOT_FOUND = "reversal_not_found"
    DEDUCTION = "deduction"
    UNREADABLE = "unreadable"
    MANDATE_UNKNOWN_ACCOUNT = "mandate_unknown_account"
    MANDATE_NOT_A_KID = "mandate_not_a_kid"
    MANDATE_NO_SUCH_SUBSCRIBER = "mandate_no_such_subscriber"


class Status(StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"  # the same transmission again: nothing booked
    REJECTED = "rejected"  # nothing booked; the file is in rejected/
    UNBALANCED = "unbalanced"  # records did not all land somewhere: an error, the file is flagged in rejected/


@dataclass(frozen=True, slots=True)
class Landing:
    """Where one record of the file went. ``amount_minor`` is never negative; ``kind`` says
    which way the money goes (payment in; reversal or deduction out). ``None``: unreadable."""

    line_id: str
    currency: str
    kind: str  # formats.payments.RecordKind value
    amount_minor: int | None
    outcome: Outcome
    reason: Reason | None = None
    text: str = ""
    raw: str = ""

    @property
    def net_minor(self) -> int:
        amount = self.amount_minor or 0
        return amount if self.kind == "payment" else -amount


@dataclass(frozen=True, slots=True)
class Total:
    """A control total from the file: records and net amount in one currency."""

    currency: str
    records: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class MandateLanding:
    line_id: str
    kid: str
    matched: bool
    reason: Reason | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class ImportReport:
    id: str
    file: str
    format: str
    identity: str
    content_digest: str
    created: str
    status: Status
    totals: tuple[Total, ...]
    by_currency: dict[str, dict[str, object]]
    set_aside: tuple[dict[str, object], ...] = ()
    set_aside_not_listed: int = 0
    mandates: dict[str, int] = field(default_factory=dict)
    mandates_unmatched: tuple[dict[str, object], ...] = ()
    balanced: bool = True
    problems: tuple[str, ...] = ()
    duplicate_of: str | None = None
    reason: str = ""

    @property
    def records(self) -> int:
        return sum(int(str(c["records"])) for c in self.by_currency.values())

    def count(self, outcome: Outcome) -> int:
        return sum(_bucket(c, outcome)["count"] for c in self.by_currency.values())

    def amount(self, outcome: Outcome) -> int:
        return sum(_bucket(c, outcome)["amount_minor"] for c in self.by_currency.values())

    def summary_line(self) -> str:
        """The counts in one line, for the log (the same figures the stored report holds)."""
        parts = []
        for currency, c in sorted(self.by_currency.items()):
            buckets = ", ".join(f"{o.value} {_bucket(c, o)['count']} ({_bucket(c, o)['amount_minor']})"
                                for o in Outcome if _bucket(c, o)["count"])
            parts.append(f"{currency}: {c['records']} records, net {c['net_minor']}: {buckets or 'none'}")
        matched, unmatched = self.mandates.get("matched", 0), self.mandates.get("unmatched", 0)
        mandates = f"; mandates matched {matched}, unmatched {unmatched}"
        verdict = ("adds up to the file's control totals" if self.balanced
                   else "DOES NOT ADD UP: " + "; ".join(self.problems))
        return f"{self.status.value}: {'; '.join(parts) or 'no payment records'}{mandates}; {verdict}"


def _bucket(by: dict[str, object], outcome: Outcome) -> dict[str, int]:
    bucket = by.get(outcome.value)
    return bucket if isinstance(bucket, dict) else {"count": 0, "amount_minor": 0}


def tally(landings: Iterable[Landing]) -> dict[str, dict[str, object]]:
    """Per currency: records, net amount, and count and amount per outcome (plus set-aside
    reasons and the kinds of money that moved out: reversals and deductions)."""
    out: dict[str, dict[str, object]] = {}
    for land in landings:
        c = out.setdefault(land.currency, {"records": 0, "net_minor": 0, "unknown_amounts": 0, "reasons": {}})
        c["records"] = int(str(c["records"])) + 1
        c["net_minor"] = int(str(c["net_minor"])) + land.net_minor
        if land.amount_minor is None:
            c["unknown_amounts"] = int(str(c["unknown_amounts"])) + 1
        for key in (land.outcome.value, f"{land.kind}s" if land.kind != "payment" else ""):
            if key:
                bucket = c.setdefault(key, {"count": 0, "amount_minor": 0})
                assert isinstance(bucket, dict)
                bucket["count"] += 1
                bucket["amount_minor"] += land.amount_minor or 0
        if land.reason is not None:
            reasons = c["reasons"]
            assert isinstance(reasons, dict)
            reasons[land.reason.value] = reasons.get(land.reason.value, 0) + 1
    return out


def check(by_currency: dict[str, dict[str, object]], totals: Sequence[Total]) -> list[str]:
    """What does not add up against the file's control totals (empty: it all does)."""
    problems = []
    for total in totals:
        c = by_currency.get(total.currency, {"records": 0, "net_minor": 0, "unknown_amounts": 0})
        records, net, unknown = (int(str(c[k])) for k in ("records", "net_minor", "unknown_amounts"))
        if records != total.records:
            problems.append(f"{total.currency}: the file's totals say {total.records} records, "
                            f"{records} landed somewhere")
        elif net != total.amount_minor and not unknown:
            problems.append(f"{total.currency}: the file's totals say {total.amount_minor} net, "
                            f"the records that landed add up to {net}")
    for currency in sorted(set(by_currency) - {t.currency for t in totals}):
        problems.append(f"{currency}: records landed that no control total of the file covers")
    return problems


def build(report_id: str, file: str, fmt: str, identity: str, digest: str, created: str,
          landings: Sequence[Landing], totals: Sequence[Total], mandates: Sequence[MandateLanding] = (),
          duplicate_of: str | None = None) -> ImportReport:
    """The report of an import: tallied, checked against the totals, with the set-aside listed."""
    by_currency = tally(landings)
    problems = check(by_currency, totals)
    aside = [land for land in landings if land.outcome is Outcome.SET_ASIDE]
    listed: tuple[dict[str, object], ...] = tuple(
        {"line_id": a.line_id, "currency": a.currency, "kind": a.kind, "amount_minor": a.amount_minor,
         "reason": a.reason.value if a.reason else None, "text": a.text[:200], "raw": a.raw[:200]}
        for a in aside[:LISTED])
    unmatched: tuple[dict[str, object], ...] = tuple(
        {"line_id": m.line_id, "kid": m.kid[:30], "reason": m.reason.value if m.reason else None,
         "text": m.text[:200]} for m in [m for m in mandates if not m.matched][:LISTED])
    status = Status.DUPLICATE if duplicate_of else Status.IMPORTED if not problems else Status.UNBALANCED
    return ImportReport(report_id, file, fmt, identity, digest, created, status, tuple(totals), by_currency, listed,
                        max(0, len(aside) - LISTED),
                        {"matched": sum(m.matched for m in mandates),
                         "unmatched": sum(not m.matched for m in mandates)}, unmatched,
                        not problems, tuple(problems), duplicate_of)


def rejected(report_id: str, file: str, created: str, reason: str, fmt: str = "", identity: str = "",
             digest: str = "") -> ImportReport:
    """The report of a file that was refused whole: nothing booked."""
    return ImportReport(report_id, file, fmt, identity, digest, created, Status.REJECTED, (), {}, balanced=True,
                        reason=reason)
