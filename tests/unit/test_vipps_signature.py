"""Vipps webhook signatures (``shared.adapters.vipps.sign_webhook`` / ``verify_webhook``),
exactly as the Webhooks API's request authentication says (references/vipps/webhooks/
request-authentication.md): the worked example there is the first test; forged, re-signed
with another secret, stale, future, tampered and re-pointed requests are rejected; and a
property over bodies and paths: what is signed verifies, and any change to it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.vipps import WebhookRejected, sign_webhook, verify_webhook

# The reference's sample values (request-authentication.md, "Sample values").
SECRET = "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A=="
PATH = "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63"
HOST = "webhook.site"
BODY = b'{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}'
DATE = "Thu, 30 Mar 2023 08:38:32 GMT"
SENT = datetime(2023, 3, 30, 8, 38, 32, tzinfo=UTC)
TOLERANCE = timedelta(minutes=5)


def test_the_reference_example_signs_to_the_published_headers() -> None:
    headers = sign_webhook(SECRET, PATH, HOST, DATE, BODY)
    assert headers["x-ms-date"] == DATE
    assert headers["x-ms-content-sha256"] == "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4="
    assert headers["Authorization"] == ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
                                        "&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=")


def test_a_datetime_is_written_as_the_rfc_1123_date_vipps_sends() -> None:
    assert sign_webhook(SECRET, PATH, HOST, SENT, BODY) == sign_webhook(SECRET, PATH, HOST, DATE, BODY)


def published() -> dict[str, str]:
    return {"x-ms-date": DATE, "x-ms-content-sha256": "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=",
            "host": HOST, "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
            "&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U="}


def test_the_reference_delivery_verifies_within_the_tolerance_either_side() -> None:
    for now in (SENT, SENT + TOLERANCE, SENT - TOLERANCE):
        verify_webhook(SECRET, PATH, published(), BODY, now, TOLERANCE)


def test_header_names_are_case_insensitive() -> None:
    shouted = {k.upper(): v for k, v in published().items()}
    verify_webhook(SECRET, PATH, shouted, BODY, SENT, TOLERANCE)


def forged(signature: str) -> dict[str, str]:
    return published() | {"Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
                                           f"&Signature={signature}"}


@pytest.mark.parametrize(("case", "secret", "path", "headers", "body", "now"), [
    ("forged signature", SECRET, PATH, forged("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), BODY, SENT),
    ("wrong secret", "another-secret", PATH, published(), BODY, SENT),
    ("no secret configured", "", PATH, published(), BODY, SENT),
    ("tampered body", SECRET, PATH, published(), BODY.replace(b"hello", b"hellO"), SENT),
    ("empty body", SECRET, PATH, published(), b"", SENT),
    ("wrong path", SECRET, "/another-hook", published(), BODY, SENT),
    ("a query added", SECRET, PATH + "?x=1", published(), BODY, SENT),
    ("stale date", SECRET, PATH, published(), BODY, SENT + TOLERANCE + timedelta(seconds=1)),
    ("date in the future", SECRET, PATH, published(), BODY, SENT - TOLERANCE - timedelta(seconds=1)),
    ("another host", SECRET, PATH, published() | {"host": "evil.example"}, BODY, SENT),
    ("another date, re-hashed", SECRET, PATH, published() | {"x-ms-date": "Thu, 30 Mar 2023 08:38:33 GMT"},
     BODY, SENT),
    ("hash of another body", SECRET, PATH, published() | {"x-ms-content-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NM"
                                                          "pJWZG3hSuFU="}, BODY, SENT),
    ("garbled date", SECRET, PATH, sign_webhook(SECRET, PATH, HOST, "not a date", BODY), BODY, SENT),
    ("date without a zone", SECRET, PATH, sign_webhook(SECRET, PATH, HOST, "Thu, 30 Mar 2023 08:38:32", BODY),
     BODY, SENT),
    ("garbled authorization", SECRET, PATH, published() | {"Authorization": "Bearer x"}, BODY, SENT),
    ("no authorization", SECRET, PATH, {k: v for k, v in published().items() if k != "Authorization"}, BODY, SENT),
    ("no date", SECRET, PATH, {k: v for k, v in published().items() if k != "x-ms-date"}, BODY, SENT),
    ("no content hash", SECRET, PATH, {k: v for k, v in published().items() if k != "x-ms-content-sha256"},
     BODY, SENT),
    ("no host", SECRET, PATH, {k: v for k, v in published().items() if k != "host"}, BODY, SENT),
])
def test_a_request_that_is_not_vipps_is_rejected(case: str, secret: str, path: str, headers: dict[str, str],
                                                 body: bytes, now: datetime) -> None:
    with pytest.raises(WebhookRejected):
        verify_webhook(secret, path, headers, body, now, TOLERANCE)


paths = st.from_regex(r"/[A-Za-z0-9/_.-]{0,40}(\?[A-Za-z0-9=&]{1,20})?", fullmatch=True)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(secret=st.text(min_size=1, max_size=64), path=paths, body=st.binary(max_size=512), sent=moments,
       skew=st.integers(min_value=-300, max_value=300))
def test_whatever_is_signed_verifies_within_the_tolerance(secret: str, path: str, body: bytes, sent: datetime,
                                                          skew: int) -> None:
    headers = sign_webhook(secret, path, "abonno.example:7071", sent.replace(microsecond=0), body)
    verify_webhook(secret, path, headers, body, sent.replace(microsecond=0) + timedelta(seconds=skew), TOLERANCE)


@given(secret=st.text(min_size=1, max_size=64), path=paths, body=st.binary(min_size=1, max_size=512),
       flip=st.integers(min_value=0), other_path=paths)
def test_any_change_to_the_body_or_the_path_is_rejected(secret: str, path: str, body: bytes, flip: int,
                                                        other_path: str) -> None:
    headers = sign_webhook(secret, path, "abonno.example", SENT, body)
    i = flip % len(body)
    tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
    with pytest.raises(WebhookRejected):
        verify_webhook(secret, path, headers, tampered, SENT, TOLERANCE)
    if other_path != path:
        with pytest.raises(WebhookRejected):
            verify_webhook(secret, other_path, headers, body, SENT, TOLERANCE)


HOSTILE_IDS = ["..", ".", "a/b", "a?b=1", "a#b", "a%2Fb", "a b", "a\nb", "x" * 101, "", "ä"]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_an_id_that_is_no_single_path_segment_is_never_sent_to_vipps(hostile: str) -> None:
    """Hostile review (issue 11): ids reach the Vipps client from webhook bodies; ``..`` was
    resolved by requests to another resource (``/recurring/v3/``). Every call refuses such an
    id before anything is sent (404: there is no such agreement or charge)."""
    from shared.adapters.vipps import VippsClient, VippsCredentials
    from shared.ports import ProviderRefused

    class Recording:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def request(self, method: str, url: str, **kwargs: object) -> None:
            self.calls.append(url)
            raise AssertionError(f"sent {method} {url}")

        def post(self, url: str, **kwargs: object) -> None:
            raise AssertionError(f"sent POST {url}")

    session = Recording()
    client = VippsClient("https://vipps.test", lambda t: VippsCredentials("c", "s", "k", "1", "w"), session=session)
    for call in (lambda: client.agreement("t", hostile), lambda: client.charge("t", hostile, "c1-1-1"),
                 lambda: client.charge("t", "agr_1", hostile),
                 lambda: client.refund("t", "agr_1", hostile, 100, "Refund", "r-1"),
                 lambda: client.cancel_charge("t", hostile, "c1-1-1", "k1"),
                 lambda: client.stop_agreement("t", hostile, "k2")):
        with pytest.raises(ProviderRefused) as refused:
            call()
        assert refused.value.status == 404
    assert session.calls == []
