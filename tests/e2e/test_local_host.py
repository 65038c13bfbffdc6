"""End to end: ``abonno host`` as a separate process, driven over HTTP like a customer
and an operator would: catalogue with a CLI-issued token, an order as a form post,
the test clock ticked a month with ``abonno tick``, the overview read back."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from devhost.azurite import Azurite
from devhost.demo import catalogue
from devhost.mailbox import Mailbox
from tests.e2e import BIN, running_host


def cli(*args: str) -> str:
    return subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True, timeout=600).stdout.strip()


@pytest.fixture(scope="module")
def host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_host(azurite, tmp_path_factory.mktemp("host")) as url:
        yield url


@pytest.mark.e2e
def test_order_over_http_then_a_month_of_ticks_renews_it(host: str, smtp_server: Mailbox) -> None:
    tenant = f"e2e{int(time.time())}"
    token = cli("token", "--tenant", tenant, "--role", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    for segment, item_id, body in catalogue():
        requests.put(f"{host}/api/merchant/catalogue/{segment}/{item_id}", json=body, headers=auth,
                     timeout=30).raise_for_status()
    form = {"templatePackageId": "digital-monthly", "PTY": "1", "name": "Per Hansen", "email": "per@example.no"}
    response = requests.post(f"{host}/api/salesposter/{tenant}/orders", data=form, timeout=30)
    assert response.status_code == 201, response.text
    assert response.json()["payment"]["due_date"] == "2026-03-16"  # what to pay, and nothing else
    (found,) = requests.get(f"{host}/api/merchant/subscribers", params={"q": "per@example.no"}, headers=auth,
                            timeout=30).json()
    subscriber = found["number"]

    ticked = cli("tick", "--to", "2026-04-18", "--url", host)  # period 2 (2 May) is produced 18 April
    assert json.loads(ticked)["days"] == 47

    view = requests.get(f"{host}/api/merchant/subscribers/{subscriber}", headers=auth, timeout=30).json()
    assert [(i["draft"]["period_index"], i["draft"]["due_date"]) for i in view["invoices"]] == [
        (0, "2026-03-16"), (1, "2026-04-02"), (2, "2026-05-02")]
    numbers = [i["number"] for i in view["invoices"]]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    # never paid: the dunning timer reminded (7 days after the due date, then 5 days after
    # reminder 1 fell due, with a 35 kr fee) and the reminders carry their own KIDs
    reminders = [(r["reminder"]["step"], r["reminder"]["produced"], r["invoice_number"]) for r in view["reminders"]]
    assert reminders == [(1, "2026-03-23", numbers[0]), (2, "2026-04-07", numbers[0]),
                         (1, "2026-04-09", numbers[1])]
    assert view["balances"] == {"avisa": -(34800 + 38700 + 38700 + 3500)}
    # the host fed the notices queue to notification_worker: each invoice and each reminder by e-mail
    # (no phone), to the SMTP server of the tests (the host's ABONNO_SMTP_HOST), each with its PDF
    mails = smtp_server.mails(tenant)
    assert sorted(m["Subject"].split(" ")[0] for m in mails) == ["Faktura"] * 3 + ["Purring"] * 3
    assert [p.get_content_type() for m in mails for p in m.iter_attachments()] == ["application/pdf"] * 6


@pytest.mark.e2e
def test_the_host_serves_the_openapi_document_and_404s_unknown_paths(host: str) -> None:
    doc = requests.get(f"{host}/api/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert requests.get(f"{host}/api/nothing-here", timeout=10).status_code == 404
    assert requests.delete(f"{host}/api/openapi.json", timeout=10).status_code == 405
