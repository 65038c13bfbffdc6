"""INTERIM (helper h1b): ``read_bank_file`` over the existing readers until h1a's lands."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import netsgiro

from . import bgmax, ocr_giro
from .detect import BankFileFormat, detect
from .payments import BankFile, ControlTotal, IncomingPayment, NotIncomingPayments, RecordKind, content_digest

REVERSING = {netsgiro.TransactionType.REVERSING_WITH_KID, netsgiro.TransactionType.REVERSING_WITH_TEXT}


def read(data: bytes) -> BankFile:
    kind = detect(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    digest = content_digest(text)
    if kind is BankFileFormat.BGMAX:
        lines = text.split("\n")
        start = bgmax.parse_record(lines[0])
        assert isinstance(start, bgmax.Start)
        payee = next((bgmax.parse_record(li) for li in lines if li.startswith("05")), None)
        bankgiro = payee.payee_bankgiro.lstrip("0") if isinstance(payee, bgmax.Opening) else ""
        found = list(bgmax.payments(iter(lines)))
        payments = tuple(replace(p, line_id=str(i), amount_minor=abs(p.amount_minor),
                                 kind=RecordKind.DEDUCTION if p.amount_minor < 0 else RecordKind.PAYMENT)
                         for i, p in enumerate(found, 1))
        return BankFile("bgmax", f"bgmax:{bankgiro}:{start.timestamp}", digest, payments, (),
                        _totals(payments), start.test)
    transmission = ocr_giro.read(text)
    mandates = tuple(ocr_giro.mandates_of(transmission))
    out: list[IncomingPayment] = []
    has_ocr = False
    for assignment in transmission.assignments:
        if assignment.service_code != netsgiro.ServiceCode.OCR_GIRO:
            continue
        has_ocr = True
        for tx in assignment.transactions:
            out.append(IncomingPayment(
                "ocr_giro", str(len(out) + 1), int(tx.amount_in_cents), "NOK", (tx.kid or "").strip() or None,
                tx.date or transmission.date, payee_account=assignment.account,
                payer_account=(tx.debit_account or "").strip() or None,
                kind=RecordKind.REVERSAL if tx.type in REVERSING else RecordKind.PAYMENT))
    if not has_ocr and not mandates:
        raise NotIncomingPayments("not an incoming payment file: no OCR giro payments or AvtaleGiro agreements")
    payments = tuple(out)
    return BankFile("ocr_giro", f"nets:{transmission.data_transmitter}:{transmission.number}", digest, payments,
                    mandates, _totals(payments))


def _totals(payments: tuple[IncomingPayment, ...]) -> tuple[ControlTotal, ...]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in payments:
        counts[p.currency][0] += 1
        counts[p.currency][1] += -p.amount_minor if p.kind is not RecordKind.PAYMENT else p.amount_minor
    return tuple(ControlTotal(c, n, a) for c, (n, a) in sorted(counts.items()))
