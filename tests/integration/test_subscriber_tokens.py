"""Subscribers' tokens and sessions against every subscriber endpoint (``Endpoint.subscriber``,
so endpoints others add are covered by themselves): the token matrix (issuer, audience,
tenant, expiry, signature, key rotation, B2C's and External ID's claims), merchant and
subscriber tokens never crossing, and My page's cookie with its CSRF token."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from functions.http import REGISTRY
from shared.adapters import subscriber_auth
from shared.adapters.auth import AuthError
from shared.adapters.subscriber_auth import KeySet, SubscriberAuthenticator, session_key
from shared.ports import Session, SubscriberPrincipal
from shared.service.context import Context
from tests.fakes.identity import FakeSessions
from tests.fixtures import function, http

SHOP = "shop-a"
SUBSCRIBER_ENDPOINTS = [spec for spec in REGISTRY if spec.subscriber]
MERCHANT_ENDPOINTS = [spec for spec in REGISTRY if spec.roles is not None]
ROUTE = {"subscriber_no": "1", "invoice_number": "1", "subscription_id": "s1", "member": "m1", "id": "avisa",
         "organization_id": "avisa", "correction_id": "c1", "kid": "0000001", "payment_id": "p1"}


def subscriber_claims(tenant: str = SHOP, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": issuer.SUBSCRIBER_ISSUER.format(tenant=tenant), "aud": issuer.SUBSCRIBER_AUDIENCE,
            "sub": "reader-1", "oid": "reader-1", "iat": now, "nbf": now - 5, "exp": now + 600,
            "jti": uuid.uuid4().hex, "email": "reader@example.com", "name": "Reader"}
    return {k: v for k, v in (base | changes).items() if v is not None}


def signed(claims: dict[str, Any], key: Any = None, kid: str = issuer.KEY_ID) -> str:
    return jwt.encode(claims, key or issuer._private_key(), algorithm="RS256", headers={"kid": kid})


OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
HOSTILE: dict[str, tuple[Any, str]] = {
    "another tenant's token": (lambda: signed(subscriber_claims("shop-b")), "issuer"),
    "wrong issuer": (lambda: signed(subscriber_claims(iss="https://evil.example/v2.0")), "issuer"),
    "wrong audience": (lambda: signed(subscriber_claims(aud="api://other")), "audience"),
    "expired": (lambda: signed(subscriber_claims(exp=int(time.time()) - 120)), "expired"),
    "not valid yet": (lambda: signed(subscriber_claims(nbf=int(time.time()) + 600)), "not valid yet"),
    "signed by another key under our kid": (lambda: signed(subscriber_claims(), OTHER_KEY), "signature"),
    "an unknown key id": (lambda: signed(subscriber_claims(), OTHER_KEY, "rotated-away"), "key"),
    "alg none": (lambda: jwt.encode(subscriber_claims(), None, algorithm="none"), "key"),
    "alg none under our key id": (lambda: jwt.encode(subscriber_claims(), None, algorithm="none",
                                                      headers={"kid": issuer.KEY_ID}), "RS256"),
    "a merchant token": (lambda: issuer.token(SHOP, ["admin"]), "issuer"),
    "a merchant-shaped token of the right issuer": (lambda: signed(subscriber_claims(roles=["admin"])), "merchant"),
    "an app-only token of the directory": (lambda: signed(subscriber_claims(idtyp="app")), "application"),
    "no subject": (lambda: signed(subscriber_claims(sub=None)), "claim"),
    "not a JWT": (lambda: "not-a-token", "malformed"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_token_is_refused_by_every_subscriber_endpoint(ctx: Context, name: str) -> None:
    make, words = HOSTILE[name]
    assert SUBSCRIBER_ENDPOINTS, "no subscriber endpoint found"
    for spec in SUBSCRIBER_ENDPOINTS:
        response = function(spec.name)(http(spec.methods[0], f"/api/{spec.route}", {"email": "x@example.com"},
                                            headers={"Authorization": f"Bearer {make()}"},
                                            route=ROUTE | {"tenant": SHOP}))
        problem = json.loads(response.get_body())
        assert response.status_code == 401, (spec.name, problem)
        assert words.lower() in problem["detail"].lower(), (spec.name, problem)
    assert ctx.codes.get(SHOP, "link", "x") is None


def test_a_subscriber_token_is_refused_by_every_merchant_endpoint(ctx: Context) -> None:
    token = signed(subscriber_claims())
    for spec in MERCHANT_ENDPOINTS:
        response = function(spec.name)(http(spec.methods[0], f"/api/{spec.route}", {"name": "x"},
                                            headers={"Authorization": f"Bearer {token}"}, route=ROUTE))
        assert response.status_code == 401, (spec.name, response.get_body())


def test_external_id_and_b2c_tokens_give_the_same_kind_of_login() -> None:
    auth = SubscriberAuthenticator.from_settings()
    external = auth.validate(signed(subscriber_claims(sub="pairwise-x", oid="object-1")), SHOP)
    b2c = auth.validate(signed(subscriber_claims(sub="object-2", oid=None, email=None, name=None,
                                                 emails=["b2c@example.com"], given_name="Bo", family_name="Bee")),
                        SHOP)
    assert (external.subject, external.email, external.name) == ("object-1", "reader@example.com", "Reader")
    assert (b2c.subject, b2c.email, b2c.name) == ("object-2", "b2c@example.com", "Bo Bee")
    assert external.login != b2c.login and external.login.startswith("l") and len(external.login) == 41
    other = auth.validate(signed(subscriber_claims("shop-b", sub="pairwise-x", oid="object-1")), "shop-b")
    assert other.login != external.login  # the same object id at another tenant's issuer is another login


def _jwks_file(path: Path, *keys: tuple[str, Any]) -> None:
    path.write_text(json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(k.public_key())) | {"kid": kid, "alg": "RS256"}
                                         for kid, k in keys]}))


def test_a_rotated_key_is_fetched_once_and_a_dropped_key_stops_working(tmp_path: Path) -> None:
    old, new = rsa.generate_private_key(public_exponent=65537, key_size=2048), OTHER_KEY
    jwks = tmp_path / "jwks.json"
    _jwks_file(jwks, ("k1", old))
    now = [1000.0]
    keys = KeySet(jwks.as_uri(), now=lambda: now[0])
    auth = SubscriberAuthenticator({"*": {"issuer": issuer.SUBSCRIBER_ISSUER, "audience": issuer.SUBSCRIBER_AUDIENCE,
                                          "jwks_url": jwks.as_uri()}})
    auth._keys[jwks.as_uri()] = keys
    assert auth.validate(signed(subscriber_claims(), old, "k1"), SHOP).subject == "reader-1"
    _jwks_file(jwks, ("k1", old), ("k2", new))  # the provider publishes the next key
    for _ in range(20):  # within REFRESH_AFTER of the last fetch: unknown kids do not make us fetch
        with pytest.raises(AuthError):
            auth.validate(signed(subscriber_claims(), new, f"forged-{uuid.uuid4().hex}"), SHOP)
    now[0] += subscriber_auth.REFRESH_AFTER
    assert auth.validate(signed(subscriber_claims(), new, "k2"), SHOP).subject == "reader-1"
    assert keys.fetches == 2
    _jwks_file(jwks, ("k2", new))  # the old key retired
    now[0] += subscriber_auth.KEYS_TTL
    with pytest.raises(AuthError) as refused:
        auth.validate(signed(subscriber_claims(), old, "k1"), SHOP)
    assert "key" in refused.value.reason and keys.fetches == 3


class _Clock:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def now(self) -> Any:
        return self.ctx.clock.now()


def _signed_in(ctx: Context, sessions: FakeSessions, tenant: str = SHOP, hours: int = 8,
               principal: bool = True) -> str:
    cookie = uuid.uuid4().hex
    me = SubscriberPrincipal(tenant, "l" + "1" * 40, "iss", "reader-1", "reader@example.com", "Reader")
    sessions.put(Session(session_key(cookie), tenant, "the-csrf", ctx.clock.now() + timedelta(hours=hours),
                         me if principal else None))
    return cookie


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_change_with_the_cookie_needs_the_sessions_csrf_token(ctx: Context, method: str) -> None:
    sessions = FakeSessions()
    auth = SubscriberAuthenticator.from_settings(lambda: sessions, lambda: ctx.clock)
    cookie = _signed_in(ctx, sessions)
    jar = {"Cookie": f"other=1; abonno_session={cookie}"}
    assert auth.authenticate(jar, "GET", SHOP).session == session_key(cookie)
    for token in (None, "", "the-csr", "the-csrf-", "THE-CSRF"):
        with pytest.raises(AuthError) as refused:
            auth.authenticate(jar | ({"X-CSRF-Token": token} if token is not None else {}), method, SHOP)
        assert refused.value.status == 403
    assert auth.authenticate(jar | {"X-CSRF-Token": "the-csrf"}, method, SHOP).login == "l" + "1" * 40


def test_a_session_ended_pending_or_of_another_tenant_is_nobody(ctx: Context) -> None:
    sessions = FakeSessions()
    auth = SubscriberAuthenticator.from_settings(lambda: sessions, lambda: ctx.clock)
    cases = {"expired": _signed_in(ctx, sessions, hours=-1), "pending": _signed_in(ctx, sessions, principal=False),
             "another tenant's": _signed_in(ctx, sessions, tenant="shop-b"), "unknown": "no-such-cookie"}
    for name, cookie in cases.items():
        with pytest.raises(AuthError) as refused:
            auth.authenticate({"Cookie": f"abonno_session={cookie}"}, "GET", SHOP)
        assert refused.value.status == 401, name
    with pytest.raises(AuthError):
        auth.authenticate({}, "GET", SHOP)


def test_the_cli_prints_a_subscriber_token_the_tenants_provider_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    from devhost.cli import main

    assert main(["token", "--tenant", SHOP, "--subscriber", "reader-9", "--email", "r9@example.com"]) == 0
    token = capsys.readouterr().out.strip()
    me = SubscriberAuthenticator.from_settings().validate(token, SHOP)
    assert (me.subject, me.email) == ("reader-9", "r9@example.com")
    with pytest.raises(AuthError):
        SubscriberAuthenticator.from_settings().validate(token, "shop-b")
