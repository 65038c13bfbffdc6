"""The hostile-token set against every authenticated endpoint: each is refused (401 for a
token that is not ours or not valid, 403 for a tenant claim that is not exactly a tenant
id) before anything is read or written, and the refusal says why in our words."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import function_app  # noqa: F401  (registers every endpoint)
from devhost import issuer
from functions.http import REGISTRY
from shared.service.context import Context
from tests.fixtures import function, http

SHOP = "shop-a"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": issuer.ISSUER, "aud": issuer.AUDIENCE, "sub": "mallory", "iat": now, "nbf": now - 5,
            "exp": now + 600, "jti": uuid.uuid4().hex, "abonno_tenant": SHOP, "roles": ["admin"]}
    return {k: v for k, v in (base | changes).items() if v is not None}


def signed(**changes: Any) -> str:
    return jwt.encode(claims(**changes), issuer._private_key(), algorithm="RS256", headers={"kid": issuer.KEY_ID})


def alg_none() -> str:
    return jwt.encode(claims(), None, algorithm="none", headers={"kid": issuer.KEY_ID})


def hs256_with_the_public_key() -> str:
    """The classic key-confusion attack: HMAC keyed with the RSA public key's PEM."""
    pem = issuer._private_key().public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.KEY_ID}
    segments = [jwt.utils.base64url_encode(json.dumps(p).encode()) for p in (header, claims())]
    signing_input = b".".join(segments)
    signature = jwt.utils.base64url_encode(hmac.new(pem, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def tampered() -> str:
    head, _payload, signature = signed().split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims(abonno_tenant="shop-b")).encode()).decode()
    return f"{head}.{payload}.{signature}"


HOSTILE: dict[str, tuple[Any, int, str]] = {
    "alg none": (alg_none, 401, "RS256"),
    "HS256 signed with the public key": (hs256_with_the_public_key, 401, "RS256"),
    "payload changed after signing": (tampered, 401, "signature"),
    "wrong issuer": (lambda: signed(iss="https://evil.example/"), 401, "issuer"),
    "wrong audience": (lambda: signed(aud="api://someone-else"), 401, "audience"),
    "expired": (lambda: signed(exp=int(time.time()) - 120), 401, "expired"),
    "no subject": (lambda: signed(sub=None), 401, "claim"),
    "no tenant claim": (lambda: signed(abonno_tenant=None), 403, "claim"),
    "tenant claim with a trailing newline": (lambda: signed(abonno_tenant=SHOP + "\n"), 403, "tenant"),
    "tenant claim with spaces": (lambda: signed(abonno_tenant=f" {SHOP} "), 403, "tenant"),
    "tenant claim in capitals": (lambda: signed(abonno_tenant=SHOP.upper()), 403, "tenant"),
    "tenant claim with a key separator": (lambda: signed(abonno_tenant=f"{SHOP}|x"), 403, "tenant"),
    "tenant claim not a string": (lambda: signed(abonno_tenant=["shop-a"]), 403, "tenant"),
    "no role": (lambda: signed(roles=[]), 403, "role"),
    "not a JWT": (lambda: "not-a-token", 401, "malformed"),
}
AUTHENTICATED = [spec for spec in REGISTRY if spec.roles is not None]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_token_is_refused_by_every_authenticated_endpoint(ctx: Context, name: str) -> None:
    make, status, words = HOSTILE[name]
    token = make()
    assert AUTHENTICATED, "no authenticated endpoint found"
    rows_before = sum(1 for _ in ctx.storage.query("Catalogue", "PartitionKey eq @pk", {"pk": SHOP}))
    for spec in AUTHENTICATED:
        route = {p: "1" for p in ("subscriber_no", "invoice_number")} | {"id": "avisa", "subscription_id": "s1",
                                                                          "organization_id": "avisa",
                                                                          "correction_id": "c1", "kid": "0000001",
                                                                          "payment_id": "p1"}
        response = function(spec.name)(http(spec.methods[0], f"/api/{spec.route}", {"name": "x"},
                                            headers={"Authorization": f"Bearer {token}"}, route=route))
        problem = json.loads(response.get_body())
        assert response.status_code == status, (spec.name, response.get_body())
        assert response.mimetype == "application/problem+json"
        assert words.lower() in problem["detail"].lower(), (spec.name, problem)
        assert "Traceback" not in problem["detail"] and "jwt" not in problem["detail"].lower()
    assert sum(1 for _ in ctx.storage.query("Catalogue", "PartitionKey eq @pk", {"pk": SHOP})) == rows_before


def test_a_valid_token_of_the_same_shape_is_accepted(ctx: Context) -> None:
    """The set above fails for the reason named, not because every token fails."""
    response = function("catalogue_list_plan")(http("GET", "/api/merchant/catalogue/plans",
                                                    headers={"Authorization": f"Bearer {signed()}"}))
    assert response.status_code == 200
