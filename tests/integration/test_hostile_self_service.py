"""A hostile client against the self-service surface of issue 12 (sign-in, links, codes,
access claims): each test is an attack that once worked, or a class of them."""

from __future__ import annotations

import uuid

import pytest

import function_app  # noqa: F401  (registers every endpoint)
from functions.http import REGISTRY, Endpoint
from shared.service.context import Context
from shared.service.orders import take_order
from tests.fakes import FakeNotifier
from tests.fixtures import function, http
from tests.integration.test_identity_http import bearer, call
from tests.service.test_identity_links import order


@pytest.fixture
def notices(ctx: Context) -> FakeNotifier:
    ctx.notifier = FakeNotifier()
    return ctx.notifier


def test_many_logins_cannot_multiply_the_codes_of_one_address(ctx: Context, shop: str, notices: FakeNotifier,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A link code is bound to the login that asked, and each login had its own buckets, so
    an attacker with many (self-signed-up) logins got five fresh codes with five tries each
    per login for the same victim's address: brute force of the six digits scaled with the
    logins, and the victim's mailbox was flooded. Codes for one address are bounded across
    all logins; the answer stays 202 and the same (for a subscriber's address and nobody's)."""
    monkeypatch.setenv("ABONNO_LINK_ADDRESS_RATE_LIMIT", "3/900")
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.no"
    take_order(ctx, order(shop, victim, f"o-{uuid.uuid4().hex}"))
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.no"
    answers = []
    for address in (victim, nobody):
        for _ in range(8):
            attacker = bearer(shop, f"attacker-{uuid.uuid4().hex}")
            answers.append(call("my_links", "POST", shop, attacker, {"email": address}))
    assert all(a == (202, {"status": "sent"}) for a in answers)  # the same answer always: nothing revealed
    sent_to_victim = [n for n in notices.delivered.values() if n.to == victim]
    assert len(sent_to_victim) == 3, "codes sent to one address must be bounded across logins"


def test_an_anonymous_client_cannot_begin_sign_ins_without_end(ctx: Context, shop: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Beginning a sign-in needs nothing and stores a pending session row that nothing ever
    sweeps; a script calling GET my/{tenant}/login in a loop filled the Sessions table. Each
    client network gets a bucket: beyond it 429 with Retry-After, no row, no cookie."""
    monkeypatch.setenv("ABONNO_LOGIN_RATE_LIMIT", "3/3600")
    network = f"198.51.100.{uuid.uuid4().int % 250}"
    answers = [function("my_login")(http("GET", f"/api/my/{shop}/login", None, route={"tenant": shop},
                                         headers={"X-Forwarded-For": network})) for _ in range(5)]
    assert [a.status_code for a in answers[3:]] == [429, 429]
    assert all(a.status_code != 429 for a in answers[:3])
    assert all("Set-Cookie" not in a.headers and a.headers.get("Retry-After") for a in answers[3:])
    other = function("my_login")(http("GET", f"/api/my/{shop}/login", None, route={"tenant": shop},
                                      headers={"X-Forwarded-For": "203.0.113.9"}))
    assert other.status_code != 429  # another network has its own bucket


SUBSCRIBER_ENDPOINTS = [spec for spec in REGISTRY if spec.subscriber]
IDS = {"subscriber_no": "1", "invoice_number": "1", "subscription_id": "s1", "member": "m1"}


@pytest.mark.parametrize("spec", SUBSCRIBER_ENDPOINTS, ids=lambda s: s.name)
def test_no_subscriber_answer_may_be_kept_by_a_cache(ctx: Context, shop: str, spec: Endpoint) -> None:
    """A subscriber's answers (profile, export, invoices, PDFs) went out without any
    Cache-Control, so a browser's disk cache (a shared computer's Back button) or a proxy
    could keep one person's data; only the session endpoint said no-store. Every answer of
    every subscriber endpoint, found or not, says no-store."""
    route = {"tenant": shop} | {k: v for k, v in IDS.items() if "{" + k + "}" in spec.route}
    for method in spec.methods:
        response = function(spec.name)(http(method, f"/api/{spec.route}", {}, route=route,
                                            headers=bearer(shop, f"reader-{uuid.uuid4().hex}")))
        assert response.status_code < 500
        assert response.headers.get("Cache-Control") == "no-store", (spec.name, response.status_code)
