"""The demo, as a newcomer runs it: orders, renewals, a bank paying, a summary that agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "abonno"


@pytest.mark.e2e
def test_the_demo_pays_and_its_summary_agrees_with_itself(tmp_path: Path) -> None:
    # a newcomer's environment: none of the session's storage, clock or token settings (the
    # demo makes its own issuer key in ABONNO_DEV_DIR and must check tokens against that)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AzureWebJobsStorage", "ABONNO_CLOCK") and not k.startswith("AUTH_")}
    env["ABONNO_DEV_DIR"] = str(tmp_path)
    done = subprocess.run([str(BIN), "demo", "--subscribers", "30", "--months", "2", "--json"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    s = json.loads(done.stdout)
    assert s["consistent"] is True
    # invoices and credit notes share one number series, without gaps
    assert s["invoice_number_last"] - s["invoice_number_first"] + 1 == s["invoices_issued"] + s["credit_notes"]
    assert s["invoices_issued"] > 30 and s["payments_imported"] > 0 and s["invoices_paid"] > 0
    assert s["reminders_issued"] > 0  # unpaid invoices are followed up
    assert {"reminder_fees_minor", "payment_stops", "balance_invoices"} <= s.keys()
    # every bank-file record accounted for by the import reports; the file sent twice booked nothing
    assert s["imports_add_up"] is True and s["import_records"] >= s["payments_imported"]
    assert s["import_duplicate_files"] == 1 and s["bank_files"] > 1
    # every issued demand was rendered and delivered once (or its failure recorded); what the
    # delivery logs say was sent is what arrived: the mails the SMTP server received, the EHF
    # files in the access point's outbox
    assert s["checks"]["documents_delivered"] is True
    by_channel = s["deliveries_by_channel"]
    assert s["documents_rendered"] >= s["invoices_issued"] + s["credit_notes"] + s["reminders_issued"]
    assert sum(by_channel.values()) == s["documents_rendered"]  # one successful delivery each
    assert s["emails_sent"] == by_channel["email"] > 0
    assert s["ehf_sent"] == by_channel["ehf"] > 0  # the demo's companies get EHF
    # a mail its server refused failed and went to print (the channel of last resort)
    assert s["deliveries_failed"] > 0 and by_channel["print"] >= s["deliveries_failed"]
    # the print timer made the daily batches: every letter sent to print before the last day
    # is in one, and the merged PDFs have at least a page per letter
    assert s["checks"]["print_batches"] is True
    assert s["print_pages"] >= s["print_letters"] > 0 and by_channel["print"] >= s["print_letters"]
    assert s["checks"] == {k: True for k in s["checks"]}
