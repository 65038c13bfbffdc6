"""The demo, as a newcomer runs it: orders, renewals, a bank paying, a summary that agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "abonno"


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's summary, run once as a newcomer runs it (both tests read the same run)."""
    # a newcomer's environment: none of the session's storage, clock, token or provider settings
    # (the demo makes its own issuer key in ABONNO_DEV_DIR and must check tokens, merchant and
    # subscriber ones, against that,
    # and starts its own Vipps and Swedbank Pay simulators)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AzureWebJobsStorage", "ABONNO_CLOCK")
           and not k.startswith(("AUTH_", "ABONNO_VIPPS", "ABONNO_SWEDBANKPAY", "ABONNO_PUBLIC_URL",
                                 "ABONNO_SUBSCRIBER_IDP", "ABONNO_MYPAGE", "ABONNO_CONNECTOR"))}
    env["ABONNO_DEV_DIR"] = str(tmp_path_factory.mktemp("demo"))
    done = subprocess.run([str(BIN), "demo", "--subscribers", "30", "--months", "2", "--json"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


@pytest.mark.e2e
def test_the_demo_pays_and_its_summary_agrees_with_itself(summary: dict[str, Any]) -> None:
    s = summary
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


@pytest.mark.e2e
def test_the_demo_pays_on_three_rails_and_books_every_captured_charge_once(summary: dict[str, Any]) -> None:
    # the same run, read for the payment providers: the app talked HTTP to the Vipps and
    # Swedbank Pay simulators, and Vipps' signed webhooks came to vipps_webhook
    s = summary
    rails = s["orders_by_rail"]
    assert rails["vipps"] >= rails["invoice"] > rails["card"] > 0 and sum(rails.values()) == s["orders_placed"]
    # payers approved most agreements, declined and ignored some (nothing placed for those), and
    # the checkout page showed what Vipps or Swedbank Pay said when they came back
    agreements = s["vipps_agreements"]
    assert s["vipps_agreements_active"] == agreements["ACTIVE"] > 0
    assert agreements["EXPIRED"] > 0 and agreements["STOPPED"] > 0  # ignored; declined or stopped in the app
    assert s["checkout_returns"]["active"] > 0 and s["checkout_returns"]["rejected"] > 0
    # a payer stopped the agreement in the Vipps app: the subscription goes on, paid by invoice
    assert s["vipps_stopped_in_app"] > 0 and s["checks"]["stopped_to_invoice"] is True
    # first periods charged at approval, renewals charged by the invoice run's charges; some failed
    # (every attempt, the extra payment request too) and went to dunning
    assert s["vipps_charges_captured"] > s["vipps_agreements_active"] and s["vipps_charges_failed"] > 0
    assert s["card_charges_captured"] > 0
    # every captured charge is on a ledger exactly once for what was captured; the bank paid none of them
    assert s["checks"]["provider_charges_booked"] is True and s["checks"]["bank_records"] is True
    assert s["provider_payments_booked"] == s["vipps_charges_captured"] + s["card_charges_captured"]
    # every webhook Vipps delivered (duplicates and reorderings among them) was accepted; the three
    # forged ones (another secret, a body changed after signing, a stale date) got 401
    assert s["webhooks_received"] > s["vipps_charges_captured"] and s["webhooks_rejected"] == 3
    assert s["checks"]["webhooks"] is True and s["consistent"] is True


@pytest.mark.e2e
def test_the_demos_readers_use_my_page_and_the_access_api(summary: dict[str, Any]) -> None:
    # readers linked their logins by the code mailed to their subscriber's address (one of them
    # a second subscriber: a household), asked the access API, stopped and restarted on My page
    s = summary
    assert s["logins_linked"] > 1 and s["access_checks"] > 0
    assert s["self_service_stops"] == s["self_service_restarts"] > 0
    assert s["checks"]["self_service"] is True and s["consistent"] is True
