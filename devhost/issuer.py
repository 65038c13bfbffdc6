"""The development token issuer: what Entra ID / B2C is in Azure, for the local host.

An RSA key kept in ``.abonno/`` (created on first use, never committed) signs tokens;
its public half is written as a JWKS file that the merchant API's validator reads
through a ``file://`` URL, and that the local host also serves at ``/_dev/jwks.json``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .azurite import ROOT

ISSUER = "https://abonno.local/dev-issuer"
AUDIENCE = "api://abonno-merchant"
SUBSCRIBER_ISSUER = "https://abonno.local/dev-idp/{tenant}/v2.0"  # per tenant, as B2C / External ID issuers are
SUBSCRIBER_AUDIENCE = "api://abonno-self-service"
KEY_ID = "abonno-dev-1"
MY_PAGE_CLIENT = "abonno-my-page"  # My page's client id at the development identity provider (``devhost.dev_idp``)


def state_dir() -> Path:
    path = Path(os.environ.get("ABONNO_DEV_DIR", ROOT / ".abonno"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _private_key() -> rsa.RSAPrivateKey:
    pem = state_dir() / "dev-issuer.pem"
    if not pem.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tmp = pem.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        os.replace(tmp, pem)
    loaded = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


def jwks() -> dict[str, list[dict[str, str]]]:
    jwk = json.loads(RSAAlgorithm.to_jwk(_private_key().public_key()))
    return {"keys": [jwk | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]}


def jwks_path() -> Path:
    path = state_dir() / "jwks.json"
    path.write_text(json.dumps(jwks()))
    return path


def configure_environment() -> None:
    """Point the merchant API's validator, and every tenant's subscriber identity provider
    (and My page's sign-in: ``devhost.dev_idp``), at this issuer (for the local host and tests)."""
    os.environ.setdefault("AUTH_ISSUER", ISSUER)
    os.environ.setdefault("AUTH_AUDIENCE", AUDIENCE)
    os.environ.setdefault("AUTH_JWKS_URL", jwks_path().resolve().as_uri())
    os.environ.setdefault("ABONNO_SUBSCRIBER_IDP", json.dumps({"*": {
        "issuer": SUBSCRIBER_ISSUER, "audience": SUBSCRIBER_AUDIENCE, "jwks_url": jwks_path().resolve().as_uri(),
        "oidc_authority": SUBSCRIBER_ISSUER, "client_id": MY_PAGE_CLIENT, "scope": f"{SUBSCRIBER_AUDIENCE}/access"}}))
    os.environ.setdefault("ABONNO_MYPAGE_CLIENT_SECRET", json.dumps({"*": "development-secret"}))


def token(tenant: str, roles: list[str], subject: str = "dev-user", ttl: int = 3600,
          issuer: str = ISSUER, audience: str = AUDIENCE) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "nbf": now - 5, "exp": now + ttl,
              "jti": uuid.uuid4().hex, "abonno_tenant": tenant, "roles": roles}
    return jwt.encode(claims, _private_key(), algorithm="RS256", headers={"kid": KEY_ID})


def subscriber_token(tenant: str, subject: str, email: str | None = None, name: str | None = None,
                     ttl: int = 3600, issuer: str | None = None, audience: str = SUBSCRIBER_AUDIENCE) -> str:
    """A subscriber's ID / access token as the tenant's identity provider would issue it
    (External ID's shape: ``oid``, ``email``, ``name``)."""
    now = int(time.time())
    claims: dict[str, object] = {"iss": issuer or SUBSCRIBER_ISSUER.format(tenant=tenant), "aud": audience,
                                 "sub": subject, "oid": subject, "iat": now, "nbf": now - 5, "exp": now + ttl,
                                 "jti": uuid.uuid4().hex}
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, _private_key(), algorithm="RS256", headers={"kid": KEY_ID})
