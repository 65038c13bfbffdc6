"""The Vipps webhook function, called as the Functions host calls it, with the production
wiring of the secret (``ABONNO_VIPPS_CREDENTIALS``): only a request signed by Vipps for
this tenant's URL, with its own body and a fresh date, queues anything; every other
request is 401 problem+json and queues nothing. The queued message carries the event's
identity, so a redelivery is the same message (Service Bus drops it); the provider worker
re-reads what it names (tests/integration/test_provider_functions.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.vipps_webhook import COUNTS, MAX_BODY, NEVER_VIPPS, TOLERANCE
from shared.adapters.bus import PROVIDER_EVENTS
from shared.adapters.vipps import sign_webhook, vipps_from_settings
from shared.ports import BusMessage
from shared.service.context import Context
from tests.fixtures import function, http, queued, received

SECRET = "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A=="
HOST = "abonno.example.no"


@pytest.fixture
def hooked(ctx: Context, tenant: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``tenant`` registered at Vipps with ``SECRET``, as the app settings say in Azure."""
    credentials = {tenant: {"client_id": "c", "client_secret": "s", "subscription_key": "k", "msn": "123456",
                            "webhook_secret": SECRET}}
    monkeypatch.setenv("ABONNO_VIPPS_CREDENTIALS", json.dumps(credentials))
    ctx.vipps = vipps_from_settings()
    received(ctx, PROVIDER_EVENTS)
    yield tenant


def event(**fields: Any) -> bytes:
    payload = {"msn": "123456", "agreementId": "agr_5kSeqz2", "agreementExternalId": "a1001-s1",
               "eventType": "recurring.charge-captured.v1", "chargeId": "c1001-5-1", "chargeExternalId": "00012345",
               "amount": 34800, "currency": "NOK", "occurred": "2026-01-05T08:00:00Z",
               "eventId": "0b0b5d3a-4b4e-4a53-9b5f-2f1c4c1f7e11"} | fields
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def path(tenant: str) -> str:
    return f"/api/vipps/{tenant}/webhook"


def signed(ctx: Context, tenant: str, body: bytes, secret: str = SECRET, at: Any = None,
           to: str | None = None) -> dict[str, str]:
    return sign_webhook(secret, to or path(tenant), HOST, at or ctx.clock.now(), body)


def post(tenant: str, body: bytes, headers: dict[str, str], target: str | None = None) -> Any:
    target = target or path(tenant)
    req = http("POST", f"https://{HOST}{target}", body, headers={"Content-Type": "application/json", **headers},
               route={"tenant": tenant})
    return function("vipps_webhook")(req)


def problem_of(response: Any) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json"
    data: dict[str, Any] = json.loads(response.get_body())
    return data


def test_a_signed_event_is_queued_once_with_its_identity_and_answered_200(ctx: Context, hooked: str) -> None:
    body = event()
    before = COUNTS["received"]
    response = post(hooked, body, signed(ctx, hooked, body))
    assert response.status_code == 200, response.get_body()
    assert json.loads(response.get_body()) == {"status": "queued"}
    (message,) = queued(ctx, PROVIDER_EVENTS)
    assert message.id == "vipps.0b0b5d3a-4b4e-4a53-9b5f-2f1c4c1f7e11"
    assert message.body == {"tenant": hooked, "provider": "vipps", "event_type": "recurring.charge-captured.v1",
                            "agreement_id": "agr_5kSeqz2", "charge_id": "c1001-5-1"}
    assert COUNTS["received"] == before + 1


def test_vipps_documented_example_is_accepted_under_its_own_url(ctx: Context, hooked: str) -> None:
    """The reference's sample (request-authentication.md): its date, host, path and body."""
    body = b'{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}'
    ctx.clock.set(datetime(2023, 3, 30, 8, 38, 32, tzinfo=UTC))  # type: ignore[attr-defined]
    headers = {"x-ms-date": "Thu, 30 Mar 2023 08:38:32 GMT",
               "x-ms-content-sha256": "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=",
               "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
                                "&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=",
               "host": "webhook.site"}
    req = http("POST", "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63", body,
               headers={"Content-Type": "application/json", **headers}, route={"tenant": hooked})
    response = function("vipps_webhook")(req)
    assert response.status_code == 422  # verified: then it is no Recurring event (no eventType)
    assert queued(ctx, PROVIDER_EVENTS) == []


def test_an_agreement_event_names_the_agreement_only(ctx: Context, hooked: str) -> None:
    body = event(eventType="recurring.agreement-stopped.v1", chargeId=None, chargeExternalId=None, amount=None,
                 actor="USER", eventId=None)
    assert post(hooked, body, signed(ctx, hooked, body)).status_code == 200
    (message,) = queued(ctx, PROVIDER_EVENTS)
    assert message.body["agreement_id"] == "agr_5kSeqz2" and message.body["charge_id"] is None
    assert message.id.startswith("vipps.") and len(message.id) <= 128  # type+agreement+charge+occurred, hashed


def test_without_an_event_id_the_identity_is_type_agreement_charge_and_when(ctx: Context, hooked: str) -> None:
    ids = []
    for fields in ({}, {}, {"occurred": "2026-01-05T08:00:01Z"}, {"eventType": "recurring.charge-reserved.v1"},
                   {"chargeId": "c1001-5-2"}):
        received(ctx, PROVIDER_EVENTS)
        body = event(eventId=None, **fields)
        assert post(hooked, body, signed(ctx, hooked, body)).status_code == 200
        (message,) = queued(ctx, PROVIDER_EVENTS)
        ids.append(message.id)
    assert ids[0] == ids[1]  # the same event delivered again: the same message id
    assert len(set(ids)) == 4


CASES = {
    "forged signature": lambda ctx, t, b: signed(ctx, t, b) | {
        "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
                         "agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U="},
    "wrong secret": lambda ctx, t, b: signed(ctx, t, b, secret="another-registration's-secret"),
    "stale date": lambda ctx, t, b: signed(ctx, t, b, at=ctx.clock.now() - TOLERANCE - timedelta(seconds=1)),
    "date from the future": lambda ctx, t, b: signed(ctx, t, b, at=ctx.clock.now() + TOLERANCE + timedelta(seconds=1)),
    "tampered body": lambda ctx, t, b: signed(ctx, t, b.replace(b"34800", b"34900")),
    "body hash of another body": lambda ctx, t, b: signed(ctx, t, b) | {
        "x-ms-content-sha256": signed(ctx, t, b"{}")["x-ms-content-sha256"]},
    "signed for another tenant's URL": lambda ctx, t, b: signed(ctx, t, b, to="/api/vipps/other/webhook"),
    "signed for another host": lambda ctx, t, b: signed(ctx, t, b) | {"host": "evil.example"},
    "no signature": lambda ctx, t, b: {},
    "no date": lambda ctx, t, b: {k: v for k, v in signed(ctx, t, b).items() if k != "x-ms-date"},
    "not a date": lambda ctx, t, b: signed(ctx, t, b, at="yesterday"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_request_not_signed_by_vipps_for_this_url_is_401_and_queues_nothing(ctx: Context, hooked: str,
                                                                                 case: str) -> None:
    body = event()
    headers = CASES[case](ctx, hooked, body)
    before = COUNTS["rejected"]
    response = post(hooked, body, headers)
    assert response.status_code == 401, (case, response.get_body())
    assert problem_of(response)["status"] == 401
    assert queued(ctx, PROVIDER_EVENTS) == []
    assert COUNTS["rejected"] == before + 1


@pytest.mark.parametrize("other", ["no-such-tenant", "Not A Tenant\n", "x" * 41])
def test_a_tenant_without_a_vipps_registration_is_401_like_a_forgery(ctx: Context, hooked: str, other: str) -> None:
    body = event()
    response = post(other, body, signed(ctx, other, body))
    assert response.status_code == 401
    assert problem_of(response)["detail"] == "the request is not signed by Vipps for this endpoint"
    assert queued(ctx, PROVIDER_EVENTS) == []


def test_a_replay_after_the_tolerance_is_refused(ctx: Context, hooked: str) -> None:
    body = event()
    headers = signed(ctx, hooked, body)
    assert post(hooked, body, headers).status_code == 200
    ctx.clock.advance(TOLERANCE + timedelta(seconds=1))  # type: ignore[attr-defined]
    assert post(hooked, body, headers).status_code == 401
    assert len(queued(ctx, PROVIDER_EVENTS)) == 1


def test_a_date_header_is_checked_as_signed_not_as_reformatted(ctx: Context, hooked: str) -> None:
    """x-ms-date is part of the signed string: any other spelling of the same moment is another string."""
    body = event()
    headers = signed(ctx, hooked, body)
    headers["x-ms-date"] = format_datetime(ctx.clock.now(), usegmt=False)
    assert post(hooked, body, headers).status_code == 401


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_of_the_body_is_401(ctx: Context, hooked: str, position: int, flip: int) -> None:
    body = event()
    headers = signed(ctx, hooked, body)
    i = position % len(body)
    tampered = body[:i] + bytes([body[i] ^ flip]) + body[i + 1:]
    assert post(hooked, tampered, headers).status_code == 401
    assert queued(ctx, PROVIDER_EVENTS) == []


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=600))
def test_any_body_signed_right_is_queued_read_or_refused_never_500(ctx: Context, hooked: str, body: bytes) -> None:
    received(ctx, PROVIDER_EVENTS)
    response = post(hooked, body, signed(ctx, hooked, body))
    assert response.status_code in (200, 400, 422), response.get_body()
    if response.status_code != 200 or json.loads(response.get_body())["status"] == "ignored":
        assert queued(ctx, PROVIDER_EVENTS) == []


def test_an_event_type_we_do_not_act_on_is_200_and_queues_nothing(ctx: Context, hooked: str) -> None:
    body = event(eventType="epayments.payment.authorized.v1")
    response = post(hooked, body, signed(ctx, hooked, body))
    assert response.status_code == 200 and json.loads(response.get_body()) == {"status": "ignored"}
    assert queued(ctx, PROVIDER_EVENTS) == []


@pytest.mark.parametrize("event_type", ["recurring.agreement-activated.v1", "recurring.agreement-rejected.v1",
                                        "recurring.agreement-stopped.v1", "recurring.agreement-expired.v1",
                                        "recurring.charge-reserved.v1", "recurring.charge-captured.v1",
                                        "recurring.charge-canceled.v1", "recurring.charge-failed.v1",
                                        "recurring.charge-creation-failed.v1", "recurring.charge-refunded.v1"])
def test_every_recurring_event_type_is_queued(ctx: Context, hooked: str, event_type: str) -> None:
    agreement = "agreement" in event_type
    body = event(eventType=event_type, chargeId=None if agreement else "c1001-5-1")
    assert post(hooked, body, signed(ctx, hooked, body)).status_code == 200
    (message,) = queued(ctx, PROVIDER_EVENTS)
    assert message.body["event_type"] == event_type
    assert message.body["charge_id"] == (None if agreement else "c1001-5-1")


def test_a_signed_body_over_the_limit_is_413_and_an_unsigned_one_401(ctx: Context, hooked: str) -> None:
    """The signature comes first: a stranger learns nothing of the endpoint's limits."""
    body = event(padding="x" * MAX_BODY)
    assert post(hooked, body, signed(ctx, hooked, body)).status_code == 413
    assert post(hooked, body, {}).status_code == 401
    assert post(hooked, b"<x/>", {"Content-Type": "text/xml"}).status_code == 401
    huge = b" " * (NEVER_VIPPS + 1)
    assert post(hooked, huge, signed(ctx, hooked, huge)).status_code == 401  # never even hashed
    assert queued(ctx, PROVIDER_EVENTS) == []


class DownBus:
    def send(self, queue: str, messages: list[BusMessage]) -> None:
        raise ConnectionError("service bus unreachable")


def test_an_event_that_cannot_be_queued_is_503_so_vipps_sends_it_again(ctx: Context, hooked: str) -> None:
    body = event()
    bus, ctx.bus = ctx.bus, DownBus()  # type: ignore[assignment]
    try:
        response = post(hooked, body, signed(ctx, hooked, body))
    finally:
        ctx.bus = bus
    assert response.status_code == 503 and problem_of(response)["status"] == 503
    assert post(hooked, body, signed(ctx, hooked, body)).status_code == 200  # Vipps' retry gets through
