"""The import report (issue 8, part 1): where every record of a bank file landed, per
currency, checked against the file's control totals."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.codec import dumps
from shared.domain import import_report
from shared.domain.import_report import Landing, Outcome, Reason, Total, build

landings = st.lists(st.builds(
    Landing, line_id=st.integers(1, 999).map(str), currency=st.sampled_from(["NOK", "SEK", "EUR"]),
    kind=st.sampled_from(["payment", "reversal", "deduction"]), amount_minor=st.integers(0, 10**9),
    outcome=st.sampled_from([o for o in Outcome if o is not Outcome.DUPLICATE]),
    reason=st.sampled_from([None, *Reason])), max_size=30)


def totals_of(lands: list[Landing]) -> list[Total]:
    currencies = sorted({land.currency for land in lands})
    return [Total(c, sum(1 for x in lands if x.currency == c), sum(x.net_minor for x in lands if x.currency == c))
            for c in currencies]


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(import_report).failed == 0


@given(landings)
def test_records_that_all_landed_add_up_and_the_buckets_hold_every_record_once(lands: list[Landing]) -> None:
    report = build("r", "f.txt", "ocr_giro", "nets:1:2", "d", "2026-01-10", lands, totals_of(lands))
    assert report.balanced and report.problems == () and report.status == "imported"
    assert report.records == len(lands)
    assert sum(report.count(o) for o in Outcome) == len(lands)  # each record in exactly one outcome
    assert sum(report.amount(o) for o in Outcome) == sum(x.amount_minor or 0 for x in lands)
    for currency, c in report.by_currency.items():  # payments in less money out is the net, per currency
        out = sum(int(str(c.get(k, {}).get("amount_minor", 0))) for k in ("reversals", "deductions"))  # type: ignore[union-attr]
        paid_in = sum(x.amount_minor or 0 for x in lands if x.currency == currency and x.kind == "payment")
        assert c["net_minor"] == paid_in - out


@given(landings.filter(bool), st.integers(0, 3), st.integers(-5, 5))
def test_a_record_missing_or_an_amount_off_is_never_a_quiet_success(lands: list[Landing], drop: int,
                                                                      off: int) -> None:
    totals = totals_of(lands)
    landed = lands[: max(0, len(lands) - drop)]
    if drop == 0 and off == 0:
        return
    skewed = [Total(t.currency, t.records, t.amount_minor + off) for t in totals]
    report = build("r", "f.txt", "bgmax", "bgmax:1:2", "d", "2026-01-10", landed, skewed)
    assert not report.balanced and report.status == "unbalanced" and report.problems
    assert "DOES NOT ADD UP" in report.summary_line()


def test_a_report_lists_set_aside_records_with_reason_and_raw_line_and_counts_the_rest() -> None:
    lands = [Landing(str(i), "NOK", "payment", 100, Outcome.SET_ASIDE, Reason.NOT_A_KID, "bad", "NY09...")
             for i in range(20_000)]  # a whole file set aside still fits one Table Storage property
    stored = dumps(build("r", "f.txt", "ocr_giro", "nets:1:2", "d", "2026-01-10", lands, totals_of(lands)))
    assert len(stored) < 32_000  # characters: a Table Storage string property holds 64 KiB of UTF-16
    lands = lands[: import_report.LISTED + 7]
    report = build("r", "f.txt", "ocr_giro", "nets:1:2", "d", "2026-01-10", lands, totals_of(lands))
    assert len(report.set_aside) == import_report.LISTED and report.set_aside_not_listed == 7
    assert report.set_aside[0] == {"line_id": "0", "currency": "NOK", "kind": "payment", "amount_minor": 100,
                                   "reason": "not_a_kid", "text": "bad", "raw": "NY09..."}
    assert report.by_currency["NOK"]["reasons"] == {"not_a_kid": import_report.LISTED + 7}
