"""``ports.VippsRecurring``: the HTTP adapter against the Vipps simulator (``devhost/vipps_sim``)
and the in-memory ``tests.fakes.providers.FakeVipps`` are held to the same assertions (the
``vipps`` fixture runs every contract test on both), so the fake the service tests use cannot
drift from what the adapter sees over HTTP. After them, what only the adapter and the
simulator can show: the access token cached per tenant, the headers of every call, retries
with back-off (Retry-After honoured) on 429 and 5xx with the same Idempotency-Key, 409 on a
key reused for another request, bulk calls of at most 2000, Vipps' charge rules on the test
clock, the payer's scenarios and signed webhooks (duplicated and reordered under a seed)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from devhost.vipps_sim import VippsSimulator
from shared.adapters.vipps import VippsClient, VippsCredentials, WebhookRejected, verify_webhook
from shared.clock import SettableClock
from shared.ports import (
    AgreementDraft,
    ChargeRequest,
    ProviderRefused,
    ProviderUnavailable,
    VippsAgreement,
    VippsRecurring,
)
from tests.fakes.providers import FakeVipps

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Oslo
DUE = date(2026, 3, 20)
TENANT = "demo"
CREDENTIALS = {"demo": VippsCredentials("client-demo", "secret-demo", "key-demo", "212121", "hook-secret-demo"),
               "other": VippsCredentials("client-other", "secret-other", "key-other", "343434", "hook-secret-other")}


def draft(key: str = "a7-s1", initial: bool = True, price: int = 29900) -> AgreementDraft:
    return AgreementDraft(key, "Avisa Digital", "Avisa Digital, monthly", price, "NOK", "MONTH", 1,
                          "https://abonno.example/my/a7", "https://abonno.example/checkout/a7", "4791234567",
                          price if initial else None, f"i{key[1:]}" if initial else "", "March")


def charge(agreement_id: str, charge_id: str = "c7-1-1", amount: int = 29900, due: date = DUE,
           retry_days: int = 2) -> ChargeRequest:
    return ChargeRequest(agreement_id, charge_id, amount, "NOK", "April", due, retry_days, "0000007000017")


@dataclass
class World:
    """The port, and what the payer and Vipps' batch do to it."""

    port: VippsRecurring
    approve: Callable[[str], None]
    reject: Callable[[str], None]
    user_stop: Callable[[str], None]
    collect: Callable[[str, date], None]  # the charge (agreement id, due) is taken on its due day


def fake_world() -> World:
    fake = FakeVipps()

    def collect(charge_id: str, due: date) -> None:
        fake.settle(charge_id, "CHARGED")

    return World(fake, fake.approve, fake.reject, fake.user_stop, collect)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def sim(clock: SettableClock) -> Iterator[VippsSimulator]:
    simulator = VippsSimulator(clock, secret={c.msn: c.webhook_secret for c in CREDENTIALS.values()})
    simulator.start()
    yield simulator
    simulator.stop()


class Recording(requests.Session):
    """A session that keeps (method, url, headers) of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append((str(method), str(url), dict(kwargs.get("headers") or {})))
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(sim: VippsSimulator, waits: list[float]) -> VippsClient:
    return VippsClient(sim.base_url, CREDENTIALS.__getitem__, Recording(), timeout=5.0, sleep=waits.append,
                       seed=1)


@pytest.fixture(params=["fake", "http"])
def vipps(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return fake_world()
    sim: VippsSimulator = request.getfixturevalue("sim")
    clock: SettableClock = request.getfixturevalue("clock")
    client: VippsClient = request.getfixturevalue("client")

    def collect(charge_id: str, due: date) -> None:
        clock.set(datetime(due.year, due.month, due.day, 8, tzinfo=UTC))
        sim.process(due)

    return World(client, sim.approve, sim.reject, sim.user_stop, collect)


def active(world: World, key: str = "a7-s1", initial: bool = True) -> str:
    agreement = world.port.create_agreement(TENANT, draft(key, initial), key)
    world.approve(agreement.id)
    return agreement.id


# ---- the contract: the fake and adapter+simulator alike ----------------------------------------------


def test_a_draft_agreement_is_pending_with_a_confirmation_url_and_reads_back_the_same(vipps: World) -> None:
    made = vipps.port.create_agreement(TENANT, draft(), "a7-s1")
    assert (made.status, made.external_id, made.price_minor, made.currency) == ("PENDING", "a7-s1", 29900, "NOK")
    assert made.id and made.confirmation_url
    read = vipps.port.agreement(TENANT, made.id)
    assert (read.id, read.status, read.external_id, read.price_minor) == (made.id, "PENDING", "a7-s1", 29900)


def test_the_same_idempotency_key_and_draft_is_the_same_agreement_and_another_draft_is_refused_409(
        vipps: World) -> None:
    first = vipps.port.create_agreement(TENANT, draft(), "a7-s1")
    assert vipps.port.create_agreement(TENANT, draft(), "a7-s1").id == first.id
    with pytest.raises(ProviderRefused) as refused:
        vipps.port.create_agreement(TENANT, draft(price=19900), "a7-s1")
    assert refused.value.status == 409


def test_an_approved_agreement_is_active_and_its_initial_charge_captured(vipps: World) -> None:
    agreement_id = active(vipps)
    assert vipps.port.agreement(TENANT, agreement_id).status == "ACTIVE"
    initial = vipps.port.charge(TENANT, agreement_id, "i7-s1")
    assert (initial.status, initial.amount_minor, initial.captured_minor) == ("CHARGED", 29900, 29900)
    assert [c.id for c in vipps.port.charges(TENANT, agreement_id)] == ["i7-s1"]


def test_a_rejected_draft_reads_as_stopped(vipps: World) -> None:
    made = vipps.port.create_agreement(TENANT, draft(), "a7-s1")
    vipps.reject(made.id)
    assert vipps.port.agreement(TENANT, made.id).status == "STOPPED"


def test_charges_are_created_once_per_charge_id_and_read_back(vipps: World) -> None:
    agreement_id = active(vipps)
    assert vipps.port.create_charges(TENANT, [charge(agreement_id)]) == {"c7-1-1": ""}
    assert vipps.port.create_charges(TENANT, [charge(agreement_id)]) == {"c7-1-1": ""}  # a repeated run
    read = vipps.port.charge(TENANT, agreement_id, "c7-1-1")
    assert (read.id, read.agreement_id, read.amount_minor, read.currency, read.due) == (
        "c7-1-1", agreement_id, 29900, "NOK", DUE)
    assert read.status in ("PENDING", "DUE") and read.captured_minor == 0
    assert read.external_id == "0000007000017"
    assert sorted(c.id for c in vipps.port.charges(TENANT, agreement_id)) == ["c7-1-1", "i7-s1"]


def test_a_charge_id_used_for_another_charge_is_refused_and_the_first_stays(vipps: World) -> None:
    agreement_id = active(vipps)
    vipps.port.create_charges(TENANT, [charge(agreement_id)])
    outcome = vipps.port.create_charges(TENANT, [charge(agreement_id, amount=39900)])
    assert outcome["c7-1-1"] != ""
    assert vipps.port.charge(TENANT, agreement_id, "c7-1-1").amount_minor == 29900


def test_charges_on_an_agreement_that_is_not_active_or_with_retry_days_above_14_are_refused_one_by_one(
        vipps: World) -> None:
    agreement_id = active(vipps)
    pending = vipps.port.create_agreement(TENANT, draft("a8-s1"), "a8-s1")
    outcome = vipps.port.create_charges(TENANT, [
        charge(agreement_id, "c7-1-1"), charge(pending.id, "c8-1-1"), charge(agreement_id, "c7-2-1", retry_days=15)])
    assert outcome["c7-1-1"] == "" and outcome["c8-1-1"] and outcome["c7-2-1"]


def test_a_charge_is_collected_on_its_due_day_and_refunded_at_most_what_was_captured(vipps: World) -> None:
    agreement_id = active(vipps)
    vipps.port.create_charges(TENANT, [charge(agreement_id)])
    vipps.collect("c7-1-1", DUE)
    assert vipps.port.charge(TENANT, agreement_id, "c7-1-1").captured_minor == 29900
    vipps.port.refund(TENANT, agreement_id, "c7-1-1", 10000, "Refund", "r1")
    vipps.port.refund(TENANT, agreement_id, "c7-1-1", 10000, "Refund", "r1")  # the same refund again
    read = vipps.port.charge(TENANT, agreement_id, "c7-1-1")
    assert (read.status, read.refunded_minor) == ("PARTIALLY_REFUNDED", 10000)
    with pytest.raises(ProviderRefused) as refused:
        vipps.port.refund(TENANT, agreement_id, "c7-1-1", 19901, "Refund", "r2")
    assert refused.value.status == 400
    with pytest.raises(ProviderRefused) as reused:
        vipps.port.refund(TENANT, agreement_id, "c7-1-1", 5000, "Refund", "r1")
    assert reused.value.status == 409
    vipps.port.refund(TENANT, agreement_id, "c7-1-1", 19900, "Refund", "r3")
    assert vipps.port.charge(TENANT, agreement_id, "c7-1-1").status == "REFUNDED"


def test_a_pending_charge_can_be_cancelled(vipps: World) -> None:
    agreement_id = active(vipps)
    vipps.port.create_charges(TENANT, [charge(agreement_id)])
    vipps.port.cancel_charge(TENANT, agreement_id, "c7-1-1", "cancel-c7-1-1")
    assert vipps.port.charge(TENANT, agreement_id, "c7-1-1").status == "CANCELLED"


def test_the_price_of_an_active_agreement_is_updated_but_not_of_a_pending_one(vipps: World) -> None:
    agreement_id = active(vipps)
    vipps.port.update_price(TENANT, agreement_id, 34900, "price-a7-34900")
    assert vipps.port.agreement(TENANT, agreement_id).price_minor == 34900
    pending = vipps.port.create_agreement(TENANT, draft("a8-s1"), "a8-s1")
    with pytest.raises(ProviderRefused) as refused:
        vipps.port.update_price(TENANT, pending.id, 34900, "price-a8-34900")
    assert refused.value.status == 400


@pytest.mark.parametrize("who", ["merchant", "user"])
def test_a_stopped_agreement_cancels_its_pending_charges_and_takes_no_new_ones(vipps: World, who: str) -> None:
    agreement_id = active(vipps)
    vipps.port.create_charges(TENANT, [charge(agreement_id)])
    if who == "merchant":
        vipps.port.stop_agreement(TENANT, agreement_id, "stop-a7")
    else:
        vipps.user_stop(agreement_id)
    assert vipps.port.agreement(TENANT, agreement_id).status == "STOPPED"
    assert vipps.port.charge(TENANT, agreement_id, "c7-1-1").status == "CANCELLED"
    assert vipps.port.create_charges(TENANT, [charge(agreement_id, "c7-2-1")])["c7-2-1"] != ""
    with pytest.raises(ValueError):
        vipps.approve(agreement_id)  # STOPPED is for good


def test_what_does_not_exist_is_refused_404(vipps: World) -> None:
    agreement_id = active(vipps)
    for call in (lambda: vipps.port.agreement(TENANT, "agr_nothing"),
                 lambda: vipps.port.charge(TENANT, agreement_id, "c9-9-9"),
                 lambda: vipps.port.charge(TENANT, "agr_nothing", "i7-s1")):
        with pytest.raises(ProviderRefused) as refused:
            call()
        assert refused.value.status == 404


def test_the_webhook_secret_is_the_tenant_s(vipps: World) -> None:
    assert isinstance(vipps.port.webhook_secret(TENANT), str) and vipps.port.webhook_secret(TENANT)


# ---- the adapter against the simulator: token, headers, retries ---------------------------------------


def api_requests(client: VippsClient) -> list[tuple[str, str, dict[str, str]]]:
    session = client.session
    assert isinstance(session, Recording)
    return [r for r in session.sent if "/recurring/" in r[1]]


def test_the_access_token_is_fetched_once_per_tenant_and_every_call_carries_vipps_headers(
        client: VippsClient, sim: VippsSimulator) -> None:
    agreement_id = active(World(client, sim.approve, sim.reject, sim.user_stop, lambda c, d: None))
    client.create_charges(TENANT, [charge(agreement_id)])
    client.charge(TENANT, agreement_id, "c7-1-1")
    client.cancel_charge(TENANT, agreement_id, "c7-1-1", "cancel-c7-1-1")
    client.stop_agreement(TENANT, agreement_id, "stop-a7")
    client.create_agreement("other", draft("a9-s1"), "a9-s1")
    assert dict(sim.token_calls) == {"212121": 1, "343434": 1}
    session = client.session
    assert isinstance(session, Recording)
    token_calls = [h for _m, url, h in session.sent if url.endswith("/accesstoken/get")]
    assert [(h["client_id"], h["Merchant-Serial-Number"]) for h in token_calls] == [
        ("client-demo", "212121"), ("client-other", "343434")]
    assert all("Authorization" not in h for h in token_calls)
    for method, _url, headers in api_requests(client):
        assert headers["Authorization"].startswith("Bearer ")
        assert headers["Ocp-Apim-Subscription-Key"] in ("key-demo", "key-other")
        assert headers["Merchant-Serial-Number"] in ("212121", "343434")
        assert headers["X-Request-Id"]
        assert all(0 < len(headers[f"Vipps-System-{n}"]) <= 30
                   for n in ("Name", "Version", "Plugin-Name", "Plugin-Version"))
        assert ("Idempotency-Key" in headers) == (method in ("POST", "PATCH", "DELETE"))


def test_a_token_is_renewed_shortly_before_it_expires(sim: VippsSimulator) -> None:
    sim.token_ttl = 600
    now = [1000.0]
    client = VippsClient(sim.base_url, CREDENTIALS.__getitem__, monotonic=lambda: now[0], sleep=lambda s: None)
    made = client.create_agreement(TENANT, draft(), "a7-s1")
    now[0] += 500  # 100 s before the expiry: still good
    client.agreement(TENANT, made.id)
    assert sim.token_calls["212121"] == 1
    now[0] += 50  # within the margin: renewed
    client.agreement(TENANT, made.id)
    assert sim.token_calls["212121"] == 2


def test_a_token_vipps_no_longer_accepts_is_replaced_once(client: VippsClient, sim: VippsSimulator) -> None:
    made = client.create_agreement(TENANT, draft(), "a7-s1")
    sim.revoke_tokens()
    assert client.agreement(TENANT, made.id).id == made.id
    assert sim.token_calls["212121"] == 2


def test_429_is_retried_after_its_retry_after_with_the_same_idempotency_key_and_makes_one_agreement(
        client: VippsClient, sim: VippsSimulator, waits: list[float]) -> None:
    sim.fail_next(2, 429, path="/recurring/v3/agreements", retry_after=3)
    made = client.create_agreement(TENANT, draft(), "a7-s1")
    assert waits == [3.0, 3.0]
    posts = [h for m, url, h in api_requests(client) if m == "POST"]
    assert len(posts) == 3
    assert {h["Idempotency-Key"] for h in posts} == {"a7-s1"} and len({h["X-Request-Id"] for h in posts}) == 1
    assert list(sim.agreements) == [made.id]


def test_a_retry_after_beyond_the_bound_waits_only_the_bound(client: VippsClient, sim: VippsSimulator,
                                                            waits: list[float]) -> None:
    sim.fail_next(1, 429, path="/recurring/", retry_after=3600)
    client.create_agreement(TENANT, draft(), "a7-s1")
    assert waits == [client.max_wait]


def test_5xx_is_retried_with_exponential_back_off_and_jitter(client: VippsClient, sim: VippsSimulator,
                                                             waits: list[float]) -> None:
    sim.fail_next(3, 503, path="/recurring/")
    client.create_agreement(TENANT, draft(), "a7-s1")
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        base = client.backoff * 2 ** attempt
        assert 0.5 * base <= wait < 1.5 * base


def test_after_the_retries_the_provider_is_unavailable_and_nothing_was_made(client: VippsClient,
                                                                            sim: VippsSimulator) -> None:
    sim.fail_next(client.retries + 1, 503, path="/recurring/")
    with pytest.raises(ProviderUnavailable):
        client.create_agreement(TENANT, draft(), "a7-s1")
    assert sim.agreements == {}


def test_no_connection_is_provider_unavailable(waits: list[float]) -> None:
    closed = VippsSimulator(SettableClock(START))
    url = closed.base_url
    closed.stop()  # the port is closed now
    client = VippsClient(url, CREDENTIALS.__getitem__, timeout=1.0, sleep=waits.append, retries=2)
    with pytest.raises(ProviderUnavailable):
        client.agreement(TENANT, "agr_x")
    assert len(waits) == 2


def test_a_4xx_problem_is_refused_with_its_detail_and_not_retried(client: VippsClient, waits: list[float]) -> None:
    with pytest.raises(ProviderRefused) as refused:
        client.create_agreement(TENANT, replace(draft(), interval_count=40), "a7-s1")
    assert refused.value.status == 400 and "interval.count" in refused.value.detail
    assert waits == []


def test_vipps_answers_a_repeated_key_from_its_memory_even_a_4xx(client: VippsClient, sim: VippsSimulator) -> None:
    bad = replace(draft(), interval_count=40)
    for _ in range(2):
        with pytest.raises(ProviderRefused) as refused:
            client.create_agreement(TENANT, bad, "a7-s1")
        assert refused.value.status == 400
    assert sim.calls["POST /recurring/v3/agreements"] == 1
    with pytest.raises(ProviderRefused) as conflict:
        client.create_agreement(TENANT, draft(), "a7-s1")  # the same key, another request
    assert conflict.value.status == 409


def test_charges_go_in_bulk_calls_of_at_most_2000(client: VippsClient, sim: VippsSimulator) -> None:
    agreement_id = active(World(client, sim.approve, sim.reject, sim.user_stop, lambda c, d: None))
    many = [charge(agreement_id, f"c7-{n}-1", due=DUE + timedelta(days=n % 300)) for n in range(1, 2002)]
    outcome = client.create_charges(TENANT, many)
    assert len(outcome) == 2001 and set(outcome.values()) == {""}
    assert sim.calls["POST /recurring/v3/agreements/charges"] == 2
    # run again, batched differently: every charge is found to exist as asked, nothing is made twice
    again = client.create_charges(TENANT, many[1000:])
    assert set(again.values()) == {""} and len(sim.charges) == 2002


# ---- Vipps' rules and the payer's scenarios on the test clock ---------------------------------------


@pytest.fixture
def world(client: VippsClient, sim: VippsSimulator) -> World:
    return World(client, sim.approve, sim.reject, sim.user_stop, lambda c, d: None)


def test_a_charge_is_due_at_least_the_lead_time_ahead_and_at_most_two_years(world: World,
                                                                           sim: VippsSimulator) -> None:
    agreement_id = active(world)
    today = sim.today()
    outcome = world.port.create_charges(TENANT, [
        charge(agreement_id, "c7-1-1", due=today), charge(agreement_id, "c7-2-1", due=today + timedelta(days=1)),
        charge(agreement_id, "c7-3-1", due=today + timedelta(days=731))])
    assert "ahead" in outcome["c7-1-1"] and outcome["c7-2-1"] == "" and "2 years" in outcome["c7-3-1"]


def test_the_lead_time_is_counted_in_oslo_days(world: World, sim: VippsSimulator, clock: SettableClock) -> None:
    agreement_id = active(world)
    clock.set(datetime(2026, 3, 31, 22, 30, tzinfo=UTC))  # 00:30 on 1 April in Oslo (summer time)
    outcome = world.port.create_charges(TENANT, [charge(agreement_id, "c7-1-1", due=date(2026, 4, 1)),
                                                 charge(agreement_id, "c7-2-1", due=date(2026, 4, 2))])
    assert outcome["c7-1-1"] != "" and outcome["c7-2-1"] == ""


def test_a_charge_failing_one_day_is_retried_and_then_charged(world: World, sim: VippsSimulator) -> None:
    agreement_id = active(world)
    sim.charge_outcome("4791234567", "fail_days", 1)
    world.port.create_charges(TENANT, [charge(agreement_id, retry_days=2)])
    assert sim.process(DUE) == {"retrying": 1}
    assert world.port.charge(TENANT, agreement_id, "c7-1-1").status == "DUE"
    assert sim.process(DUE + timedelta(days=1)) == {"CHARGED": 1}
    assert world.port.charge(TENANT, agreement_id, "c7-1-1").captured_minor == 29900


def test_a_charge_that_keeps_failing_is_failed_when_its_retry_days_run_out(world: World,
                                                                          sim: VippsSimulator) -> None:
    agreement_id = active(world)
    world.port.create_charges(TENANT, [charge(agreement_id, retry_days=1)])
    sim.charge_outcome(agreement_id, "fail")
    sim.process(DUE)
    assert world.port.charge(TENANT, agreement_id, "c7-1-1").status == "DUE"
    sim.process(DUE + timedelta(days=1))
    failed = world.port.charge(TENANT, agreement_id, "c7-1-1")
    assert (failed.status, failed.failure_reason, failed.captured_minor) == ("FAILED", "user_action_required", 0)
    assert [e["eventType"] for e in sim.events][-1] == "recurring.charge-failed.v1"


def test_a_charge_refused_after_a_bulk_call_is_failed_with_a_creation_failed_event(world: World,
                                                                                   sim: VippsSimulator) -> None:
    agreement_id = active(world)
    sim.charge_outcome("*", "creation_fail")
    assert world.port.create_charges(TENANT, [charge(agreement_id)]) == {"c7-1-1": ""}
    assert world.port.charge(TENANT, agreement_id, "c7-1-1").status == "FAILED"
    assert sim.events[-1]["eventType"] == "recurring.charge-creation-failed.v1"


def test_a_charge_due_within_30_days_is_due_and_later_ones_pending(world: World, sim: VippsSimulator) -> None:
    agreement_id = active(world)
    world.port.create_charges(TENANT, [charge(agreement_id, "c7-1-1", due=date(2026, 3, 20)),
                                       charge(agreement_id, "c7-2-1", due=date(2026, 5, 20))])
    assert [world.port.charge(TENANT, agreement_id, c).status for c in ("c7-1-1", "c7-2-1")] == ["DUE", "PENDING"]
    sim.process(date(2026, 4, 25))
    assert world.port.charge(TENANT, agreement_id, "c7-2-1").status == "DUE"


def test_a_refund_more_than_365_days_after_the_capture_is_refused(world: World, sim: VippsSimulator,
                                                                  clock: SettableClock) -> None:
    agreement_id = active(world)
    clock.advance(timedelta(days=366))
    with pytest.raises(ProviderRefused) as refused:
        world.port.refund(TENANT, agreement_id, "i7-s1", 100, "Refund", "r1")
    assert refused.value.status == 400 and "365" in refused.value.detail


def test_payers_approve_reject_or_ignore_by_phone_and_ignored_drafts_expire(world: World, sim: VippsSimulator,
                                                                           clock: SettableClock) -> None:
    sim.payer("4790000001", "approve")
    sim.payer("4790000002", "reject")
    made = {phone: world.port.create_agreement(TENANT, replace(draft(f"a{n}-s1"), phone=phone), f"a{n}-s1")
            for n, phone in enumerate(("4790000001", "4790000002", "4790000003"), start=1)}
    assert sim.process() == {"ACTIVE": 1, "STOPPED": 1}
    clock.advance(sim.pending_ttl)
    assert sim.process() == {"EXPIRED": 1}
    assert [world.port.agreement(TENANT, a.id).status for a in made.values()] == ["ACTIVE", "STOPPED", "EXPIRED"]
    assert [e["eventType"] for e in sim.events if "agreement" in e["eventType"]] == [
        "recurring.agreement-activated.v1", "recurring.agreement-rejected.v1", "recurring.agreement-expired.v1"]


def test_an_initial_charge_that_fails_expires_the_agreement(world: World, sim: VippsSimulator) -> None:
    sim.charge_outcome("4791234567", "fail")
    made = world.port.create_agreement(TENANT, draft(), "a7-s1")
    sim.approve(made.id)
    assert world.port.agreement(TENANT, made.id).status == "EXPIRED"
    assert world.port.charge(TENANT, made.id, "i7-s1").status == "FAILED"


def test_stopping_is_sent_alone_and_an_expired_agreement_cannot_be_stopped(world: World, sim: VippsSimulator,
                                                                          client: VippsClient) -> None:
    made = world.port.create_agreement(TENANT, draft(), "a7-s1")
    sim.expire(made.id)
    with pytest.raises(ProviderRefused) as refused:
        client.stop_agreement(TENANT, made.id, "stop-a7")
    assert refused.value.status == 400
    token = requests.post(f"{sim.base_url}/accesstoken/get", headers={
        "client_id": "c", "client_secret": "s", "Ocp-Apim-Subscription-Key": "k",
        "Merchant-Serial-Number": "212121"}, timeout=5).json()["access_token"]
    answer = requests.patch(f"{sim.base_url}/recurring/v3/agreements/{made.id}", json={
        "status": "STOPPED", "productName": "x"}, headers={
        "Authorization": f"Bearer {token}", "Ocp-Apim-Subscription-Key": "k", "Merchant-Serial-Number": "212121",
        "Idempotency-Key": "stop-2"}, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"].endswith("#validation-error")


def test_a_call_without_a_token_or_idempotency_key_is_refused(sim: VippsSimulator) -> None:
    assert requests.get(f"{sim.base_url}/recurring/v3/agreements/agr_x", timeout=5).status_code == 401
    token = requests.post(f"{sim.base_url}/accesstoken/get", headers={
        "client_id": "c", "client_secret": "s", "Ocp-Apim-Subscription-Key": "k",
        "Merchant-Serial-Number": "212121"}, timeout=5).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Ocp-Apim-Subscription-Key": "k", "Merchant-Serial-Number": "212121"}
    for key in (None, "", "a/b", "a#b", "x" * 41):
        sent = headers | ({"Idempotency-Key": key} if key is not None else {})
        answer = requests.post(f"{sim.base_url}/recurring/v3/agreements", json={}, headers=sent, timeout=5)
        assert answer.status_code == 400 and answer.json()["type"].endswith("#idempotency-key-header")


# ---- controls over HTTP and the payer's page ----------------------------------------------------------


def test_the_confirmation_page_lets_the_payer_approve_and_returns_to_the_merchant(world: World,
                                                                                 sim: VippsSimulator) -> None:
    made = world.port.create_agreement(TENANT, draft(), "a7-s1")
    page = requests.get(made.confirmation_url, timeout=5)
    assert page.status_code == 200 and "Avisa Digital" in page.text and "/approve" in page.text
    answer = requests.post(f"{sim.base_url}/_sim/agreements/{made.id}/approve?redirect=1", timeout=5,
                           allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == "https://abonno.example/checkout/a7"
    assert world.port.agreement(TENANT, made.id).status == "ACTIVE"


def test_scenarios_are_set_over_http(world: World, sim: VippsSimulator) -> None:
    def control(path: str, body: dict[str, Any] | None = None) -> Any:
        answer = requests.post(f"{sim.base_url}/_sim/{path}", json=body or {}, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    control("payers", {"who": "4791234567", "behaviour": "approve"})
    control("outcomes", {"who": "4791234567", "outcome": "fail_days", "days": 1})
    made = world.port.create_agreement(TENANT, draft(initial=False), "a7-s1")
    assert control("process") == {"ACTIVE": 1}
    world.port.create_charges(TENANT, [charge(made.id)])
    control("clock", {"now": "2026-03-21T08:00:00+00:00"})
    assert control("process") == {"CHARGED": 1}  # failed on the 20th (counted as one day), charged on the 21st
    control("faults", {"times": 1, "status": 503, "path": "/recurring/"})
    assert world.port.agreement(TENANT, made.id).status == "ACTIVE"
    control(f"agreements/{made.id}/stop")
    state = requests.get(f"{sim.base_url}/_sim/state", timeout=5).json()
    assert state["agreements"] == {"STOPPED": 1} and state["today"] == "2026-03-21"
    assert requests.post(f"{sim.base_url}/_sim/agreements/agr_nothing/approve", timeout=5).status_code == 404
    assert requests.post(f"{sim.base_url}/_sim/payers", json={"who": "1", "behaviour": "dance"},
                         timeout=5).status_code == 400


# ---- signed webhooks ----------------------------------------------------------------------------------


class Receiver:
    """Our end of the webhooks: verifies each delivery with the secret of the tenant its path
    names (as ``functions/vipps_webhook`` does) and keeps the payloads it accepted."""

    def __init__(self, clock: SettableClock, fail_first: int = 0) -> None:
        self.clock = clock
        self.accepted: list[tuple[str, dict[str, Any]]] = []  # (tenant, payload)
        self.rejected = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(receiver.receive(self.path, dict(self.headers.items()), body))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, tenant: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/vipps/{tenant}/webhook"

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        tenant = path.split("/")[3]
        secrets = {name: c.webhook_secret for name, c in CREDENTIALS.items()} | {
            c.msn: c.webhook_secret for c in CREDENTIALS.values()}
        try:
            verify_webhook(secrets.get(tenant, ""), path, headers, body, self.clock.now(),
                           timedelta(minutes=5))
        except WebhookRejected:
            with self.lock:
                self.rejected += 1
            return 401
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                return 500
            self.accepted.append((tenant, json.loads(body)))
        return 200

    def types(self) -> list[str]:
        return [p["eventType"].removeprefix("recurring.").removesuffix(".v1") for _t, p in self.accepted]


@pytest.fixture
def receiver(clock: SettableClock) -> Iterator[Receiver]:
    made = Receiver(clock)
    yield made
    made.server.shutdown()
    made.server.server_close()


def hooked(sim: VippsSimulator, receiver: Receiver) -> World:
    sim.webhook_url = {c.msn: receiver.url(tenant) for tenant, c in CREDENTIALS.items()}
    client = VippsClient(sim.base_url, CREDENTIALS.__getitem__, sleep=lambda s: None)

    def collect(charge_id: str, due: date) -> None:
        sim.process(due)

    return World(client, sim.approve, sim.reject, sim.user_stop, collect)


def lifecycle(world: World, key: str = "a7-s1", tenant: str = TENANT) -> str:
    """An agreement approved (initial charge captured), a renewal captured, one more charge
    pending when the payer stops the agreement in the app (it is cancelled)."""
    made = world.port.create_agreement(tenant, draft(key), key)
    world.approve(made.id)
    world.port.create_charges(tenant, [charge(made.id, f"c{key[1:2]}-1-1"),
                                       charge(made.id, f"c{key[1:2]}-2-1", due=DUE + timedelta(days=30))])
    world.collect(f"c{key[1:2]}-1-1", DUE)
    world.user_stop(made.id)
    return made.id


def test_every_event_is_delivered_signed_to_the_tenant_s_url_with_what_names_it(sim: VippsSimulator,
                                                                               receiver: Receiver) -> None:
    agreement_id = lifecycle(hooked(sim, receiver))
    assert sim.flush()
    assert receiver.rejected == 0
    assert receiver.types() == ["agreement-activated", "charge-captured", "charge-captured", "agreement-stopped",
                                "charge-canceled"]
    payloads = [p for _t, p in receiver.accepted]
    assert {p["agreementId"] for p in payloads} == {agreement_id} and {p["msn"] for p in payloads} == {"212121"}
    assert {p["agreementExternalId"] for p in payloads} == {"a7-s1"}
    assert [p.get("chargeId") for p in payloads] == [None, "i7-s1", "c7-1-1", None, "c7-2-1"]
    assert payloads[2]["amount"] == 29900 and payloads[2]["currency"] == "NOK"
    assert payloads[2]["chargeExternalId"] == "0000007000017"
    assert payloads[3]["actor"] == "USER"
    assert len({p["eventId"] for p in payloads}) == 5
    assert sim.sent["delivered"] == 5 and sim.sent["recurring.charge-captured.v1"] == 2


def test_each_merchant_s_events_go_to_its_own_registration(sim: VippsSimulator, receiver: Receiver) -> None:
    world = hooked(sim, receiver)
    lifecycle(world, "a7-s1", TENANT)
    lifecycle(world, "a8-s1", "other")
    assert sim.flush()
    by_tenant = {t: {p["msn"] for tt, p in receiver.accepted if tt == t} for t in CREDENTIALS}
    assert by_tenant == {"demo": {"212121"}, "other": {"343434"}} and receiver.rejected == 0


def test_a_delivery_our_end_fails_is_sent_again(sim: VippsSimulator, receiver: Receiver) -> None:
    receiver.fail_first = 1
    world = hooked(sim, receiver)
    made = world.port.create_agreement(TENANT, draft(initial=False), "a7-s1")
    world.approve(made.id)
    assert sim.flush()
    assert receiver.types() == ["agreement-activated"] and sim.sent["failed"] == 1 and sim.sent["delivered"] == 1


def test_a_receiver_with_another_secret_rejects_every_delivery(sim: VippsSimulator, receiver: Receiver) -> None:
    sim.secret = "not-the-registration-s-secret"
    sim.webhook_retries = 0
    world = hooked(sim, receiver)
    made = world.port.create_agreement(TENANT, draft(initial=False), "a7-s1")
    world.approve(made.id)
    assert sim.flush()
    assert receiver.accepted == [] and receiver.rejected == 1


def deliveries(clock: SettableClock, seed: int, **options: Any) -> tuple[list[str], list[str]]:
    """The events made and the events delivered (event ids) of one lifecycle under ``seed``."""
    receiver = Receiver(clock)
    sim = VippsSimulator(clock, secret={c.msn: c.webhook_secret for c in CREDENTIALS.values()}, seed=seed,
                         **options)
    sim.start()
    try:
        lifecycle(hooked(sim, receiver))
        assert sim.flush()
        return [e["eventId"] for e in sim.events], [p["eventId"] for _t, p in receiver.accepted]
    finally:
        sim.stop()
        receiver.server.shutdown()
        receiver.server.server_close()


def test_duplicates_deliver_every_event_twice_with_its_event_id(clock: SettableClock) -> None:
    made, delivered = deliveries(clock, 1, duplicates=1.0)
    assert sorted(delivered) == sorted(made * 2)


def test_reordering_and_delays_are_the_same_under_the_same_seed(clock: SettableClock) -> None:
    first = deliveries(clock, 7, reorder=0.5, max_delay=0.01)
    clock.set(START)
    second = deliveries(clock, 7, reorder=0.5, max_delay=0.01)
    assert first == second
    made, delivered = first
    assert sorted(delivered) == sorted(made) and delivered != made  # all of them, not in the order made


def test_the_simulator_runs_standalone() -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    process = subprocess.Popen([sys.executable, "-m", "devhost.vipps_sim", "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and "Vipps simulator on" in process.stdout.readline()
        state = requests.get(f"http://127.0.0.1:{port}/_sim/state", timeout=5).json()
        assert state["agreements"] == {} and state["webhooks"] == {}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_no_secret_reaches_the_log(client: VippsClient, sim: VippsSimulator, caplog: pytest.LogCaptureFixture,
                                   waits: list[float]) -> None:
    caplog.set_level("DEBUG")
    sim.fail_next(1, 503, path="/recurring/")
    agreement_id = active(World(client, sim.approve, sim.reject, sim.user_stop, lambda c, d: None))
    with pytest.raises(ProviderRefused):
        client.charge(TENANT, agreement_id, "c9-9-9")
    tokens = list(sim._tokens)
    assert caplog.records and tokens
    text = caplog.text + repr(CREDENTIALS[TENANT])
    for secret in ("secret-demo", "key-demo", "hook-secret-demo", *tokens):
        assert secret not in text


def test_an_answer_that_never_comes_times_out_and_is_retried(waits: list[float]) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are accepted by the kernel, and never answered
    try:
        client = VippsClient(f"http://127.0.0.1:{silent.getsockname()[1]}", CREDENTIALS.__getitem__, timeout=0.2,
                             sleep=waits.append, retries=1)
        with pytest.raises(ProviderUnavailable):
            client.agreement(TENANT, "agr_x")
        assert len(waits) == 1
    finally:
        silent.close()


def test_a_charge_above_five_times_the_agreement_s_price_is_refused(world: World) -> None:
    agreement_id = active(world)
    outcome = world.port.create_charges(TENANT, [charge(agreement_id, "c7-1-1", amount=5 * 29900),
                                                 charge(agreement_id, "c7-2-1", amount=5 * 29900 + 1)])
    assert outcome["c7-1-1"] == "" and "5 times" in outcome["c7-2-1"]


def test_every_payer_without_a_scenario_of_their_own_does_the_default(world: World, sim: VippsSimulator) -> None:
    requests.post(f"{sim.base_url}/_sim/payers", json={"who": "*", "behaviour": "approve"}, timeout=5)
    sim.payer("4790000002", "reject")
    first = world.port.create_agreement(TENANT, draft("a1-s1"), "a1-s1")
    second = world.port.create_agreement(TENANT, replace(draft("a2-s1"), phone="4790000002"), "a2-s1")
    sim.process()
    assert [world.port.agreement(TENANT, a.id).status for a in (first, second)] == ["ACTIVE", "STOPPED"]


def test_charges_are_listed_page_by_page(world: World, sim: VippsSimulator) -> None:
    sim.page_size = 2
    agreement_id = active(world)
    world.port.create_charges(TENANT, [charge(agreement_id, f"c7-{n}-1", due=DUE + timedelta(days=n))
                                       for n in range(1, 6)])
    assert sorted(c.id for c in world.port.charges(TENANT, agreement_id)) == [
        "c7-1-1", "c7-2-1", "c7-3-1", "c7-4-1", "c7-5-1", "i7-s1"]
    assert sim.calls["GET /recurring/v3/agreements/{id}/charges"] == 3


class Garbling(requests.Session):
    """A session whose 2xx answers lose their body's promised fields (or are not JSON at all)."""

    def __init__(self, body: bytes, only: str = "/recurring/") -> None:
        super().__init__()
        self.body = body
        self.only = only

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if self.only in str(url) and response.ok:
            response._content = self.body
        return response


UNREADABLE = [b"<html>gateway</html>", b"{}", b"[]", b'{"id": null}', b"null"]
NOT_AS_PROMISED = [b'{"id": "x", "agreementId": "y", "status": "WHATEVER", "pricing": {"amount": 100}}',
                   b'{"id": "x", "agreementId": "y", "status": "ACTIVE", "amount": 299.0, '
                   b'"pricing": {"amount": 299.0}}']


@pytest.mark.parametrize(("call", "body"), [
    *[("agreement", b) for b in UNREADABLE + NOT_AS_PROMISED], *[("charge", b) for b in UNREADABLE + NOT_AS_PROMISED],
    *[("create_agreement", b) for b in UNREADABLE],
    *[("create_charges", b) for b in (b"<html>gateway</html>", b"[]", b"null", b'{"chargeSuccesses": 5}')]])
def test_an_answer_without_what_the_api_promises_is_unavailable_not_a_crash(sim: VippsSimulator, call: str,
                                                                            body: bytes) -> None:
    made = VippsClient(sim.base_url, CREDENTIALS.__getitem__).create_agreement(TENANT, draft(), "a7-s1")
    client = VippsClient(sim.base_url, CREDENTIALS.__getitem__, Garbling(body), sleep=lambda s: None)
    calls: dict[str, Callable[[], object]] = {
        "agreement": lambda: client.agreement(TENANT, made.id),
        "charge": lambda: client.charge(TENANT, made.id, "i7-s1"),
        "create_agreement": lambda: client.create_agreement(TENANT, draft("a8-s1"), "a8-s1"),
        "create_charges": lambda: client.create_charges(TENANT, [charge(made.id)])}
    with pytest.raises(ProviderUnavailable):
        calls[call]()


def test_a_charge_a_bulk_answer_does_not_name_is_looked_up(world: World, sim: VippsSimulator) -> None:
    agreement_id = active(world)
    client = VippsClient(sim.base_url, CREDENTIALS.__getitem__, Garbling(b"{}", only="/agreements/charges"),
                         sleep=lambda s: None)
    # the bulk call creates c7-1-1 and refuses c8-1-1 (its agreement is pending), but its answer
    # names neither: each is read back, and what Vipps has is the outcome
    pending = world.port.create_agreement(TENANT, draft("a8-s1"), "a8-s1")
    outcome = client.create_charges(TENANT, [charge(agreement_id, "c7-1-1"), charge(pending.id, "c8-1-1")])
    assert outcome["c7-1-1"] == "" and outcome["c8-1-1"] != ""
    assert ("212121", "c7-1-1") in sim.charges and ("212121", "c8-1-1") not in sim.charges


# ---- the fake and adapter+simulator, step by step under the same random operations ------------------


@dataclass
class Twin:
    """One world for the stateful test: the port, and how it moves as the payer and the bank."""

    port: VippsRecurring
    approve: Callable[[str], None]
    reject: Callable[[str], None]
    expire: Callable[[str], None]
    user_stop: Callable[[str], None]
    collect: Callable[[date], None]  # every open charge due by this day is taken


def outcome_of(call: Callable[[], object]) -> object:
    """What a call did, comparable across the twins: its value, or the kind of refusal."""
    try:
        return call()
    except ProviderRefused as exc:
        return ("refused", exc.status)
    except (KeyError, ValueError) as exc:
        return ("not allowed", type(exc).__name__)


class FakeAndSimulatorAgree(RuleBasedStateMachine):
    """Random sequences of drafts, approvals, rejections, stops, charges, collections, price
    updates, cancellations and refunds, applied to ``FakeVipps`` and to the adapter against the
    simulator: every call has the same outcome in both, and both then read the same."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = SettableClock(START)
        self.sim = VippsSimulator(self.clock, pending_ttl=timedelta(days=10_000))
        self.sim.start()
        client = VippsClient(self.sim.base_url, CREDENTIALS.__getitem__, sleep=lambda s: None)
        fake = FakeVipps()

        def fake_collect(day: date) -> None:
            for c in list(fake.charges_by_id.values()):
                open_ = c.status in ("PENDING", "DUE") and c.due != date.min  # date.min: an initial charge
                if open_ and c.due <= day and fake.agreements[c.agreement_id].status == "ACTIVE":
                    fake.settle(c.id, "CHARGED")

        def sim_collect(day: date) -> None:
            self.clock.set(datetime(day.year, day.month, day.day, 8, tzinfo=UTC))
            self.sim.process(day)

        self.twins = (Twin(fake, fake.approve, fake.reject, fake.expire, fake.user_stop, fake_collect),
                      Twin(client, self.sim.approve, self.sim.reject, self.sim.expire, self.sim.user_stop,
                           sim_collect))
        self.ids: dict[str, tuple[str, str]] = {}  # agreement key -> (fake id, simulator id)
        self.charge_ids: dict[str, str] = {}  # charge id -> agreement key
        self.today = START.date()
        self.refunds = 0

    def teardown(self) -> None:
        self.sim.stop()

    def both(self, call: Callable[[Twin, int], object]) -> object:
        fake, http = (outcome_of(lambda t=t, i=i: call(t, i)) for i, t in enumerate(self.twins))
        assert fake == http
        return fake

    def status(self, key: str) -> str:
        return self.twins[0].port.agreement(TENANT, self.ids[key][0]).status

    @rule(n=st.integers(1, 3), initial=st.booleans(), price=st.sampled_from([10000, 29900]))
    def draft(self, n: int, initial: bool, price: int) -> None:
        key = f"a{n}-s1"
        made = [outcome_of(lambda t=t: t.port.create_agreement(TENANT, draft(key, initial, price), key))
                for t in self.twins]
        if all(isinstance(m, VippsAgreement) for m in made):
            fake, http = made
            assert isinstance(fake, VippsAgreement) and isinstance(http, VippsAgreement)
            assert (fake.status, fake.price_minor) == (http.status, http.price_minor)
            self.ids.setdefault(key, (fake.id, http.id))
            if initial:
                self.charge_ids[f"i{n}-s1"] = key
        else:
            assert made[0] == made[1]

    @rule(n=st.integers(1, 3), act=st.sampled_from(["approve", "reject", "expire"]))
    def payer(self, n: int, act: str) -> None:
        key = f"a{n}-s1"
        if key in self.ids:
            self.both(lambda t, i: getattr(t, act)(self.ids[key][i]))

    @rule(n=st.integers(1, 3), by=st.sampled_from(["merchant", "user"]))
    def stop(self, n: int, by: str) -> None:
        key = f"a{n}-s1"
        if key in self.ids and by == "merchant":  # whatever its status: the same answer from both
            self.both(lambda t, i: t.port.stop_agreement(TENANT, self.ids[key][i], f"stop-{key}"))
        elif key in self.ids and self.status(key) == "ACTIVE":  # a payer stops only what they approved
            self.both(lambda t, i: t.user_stop(self.ids[key][i]))

    @rule(n=st.integers(1, 3), demand=st.integers(1, 4), days=st.integers(1, 40), retry=st.sampled_from([0, 2, 15]),
          amount=st.sampled_from([29900, 10000, 200000]))
    def charge(self, n: int, demand: int, days: int, retry: int, amount: int) -> None:
        key, charge_id = f"a{n}-s1", f"c{n}-{demand}-1"
        if key in self.ids:
            due = self.today + timedelta(days=days)
            created = self.both(lambda t, i: t.port.create_charges(TENANT, [
                charge(self.ids[key][i], charge_id, amount, due, retry)])[charge_id] == "")
            if created:
                self.charge_ids.setdefault(charge_id, key)

    @rule(days=st.integers(1, 20))
    def collect(self, days: int) -> None:
        self.today += timedelta(days=days)
        for twin in self.twins:
            twin.collect(self.today)

    @rule(n=st.integers(1, 3), price=st.sampled_from([19900, 39900]))
    def price(self, n: int, price: int) -> None:
        key = f"a{n}-s1"
        if key in self.ids:
            self.both(lambda t, i: t.port.update_price(TENANT, self.ids[key][i], price, f"price-{key}-{price}"))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        open_ = [c for c in self.charge_ids if self.read(c)[0] == "OPEN" and not c.startswith("i")]
        if open_:
            charge_id = data.draw(st.sampled_from(sorted(open_)))
            key = self.charge_ids[charge_id]
            self.both(lambda t, i: t.port.cancel_charge(TENANT, self.ids[key][i], charge_id, f"cancel-{charge_id}"))

    @rule(data=st.data(), amount=st.sampled_from([100, 10000, 29900, 29901]), again=st.booleans())
    def refund(self, data: st.DataObject, amount: int, again: bool) -> None:
        if self.charge_ids:
            charge_id = data.draw(st.sampled_from(sorted(self.charge_ids)))
            key = self.charge_ids[charge_id]
            self.refunds += 0 if again and self.refunds else 1
            self.both(lambda t, i: t.port.refund(TENANT, self.ids[key][i], charge_id, amount, "Refund",
                                                 f"r{self.refunds}"))

    def read(self, charge_id: str) -> tuple[object, ...]:
        key = self.charge_ids[charge_id]
        fake, http = (self.twins[i].port.charge(TENANT, self.ids[key][i], charge_id) for i in (0, 1))
        status = {"PENDING": "OPEN", "DUE": "OPEN"}.get(fake.status, fake.status)
        assert ({"PENDING": "OPEN", "DUE": "OPEN"}.get(http.status, http.status), http.captured_minor,
                http.refunded_minor, http.amount_minor) == (status, fake.captured_minor, fake.refunded_minor,
                                                            fake.amount_minor)
        return status, fake.captured_minor, fake.refunded_minor

    @invariant()
    def both_read_the_same(self) -> None:
        for fake_id, http_id in self.ids.values():
            fake, http = self.twins[0].port.agreement(TENANT, fake_id), self.twins[1].port.agreement(TENANT, http_id)
            assert (fake.status, fake.price_minor, fake.external_id) == (http.status, http.price_minor,
                                                                        http.external_id)
        for charge_id in self.charge_ids:
            self.read(charge_id)


FakeAndSimulatorAgree.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_the_fake_and_the_simulator_agree_step_by_step = FakeAndSimulatorAgree.TestCase


def test_calls_made_together_fetch_one_token_and_one_key_makes_one_agreement(client: VippsClient,
                                                                            sim: VippsSimulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _n: client.create_agreement(TENANT, draft(), "a7-s1"), range(16)))
    assert {m.id for m in made} == set(sim.agreements) and len(sim.agreements) == 1
    assert sim.token_calls["212121"] == 1


def test_one_webhook_url_for_all_merchants_may_name_the_msn(sim: VippsSimulator, receiver: Receiver) -> None:
    world = hooked(sim, receiver)
    sim.webhook_url = receiver.url("{msn}")  # the path names the MSN, not the tenant
    made = world.port.create_agreement(TENANT, draft(initial=False), "a7-s1")
    world.approve(made.id)
    assert sim.flush() and receiver.rejected == 0
    assert [(t, p["eventType"]) for t, p in receiver.accepted] == [("212121", "recurring.agreement-activated.v1")]
