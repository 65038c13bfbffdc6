"""Bearer tokens for the merchant API: signature checked against the identity
provider's published keys (JWKS), issuer and audience checked, expiry enforced.

The tenant comes from the token only (claim ``AUTH_TENANT_CLAIM``), never from the
request, so a caller can reach nothing of another tenant (BOLA prevented by
construction, as in polar's repositories). Roles come from the ``roles`` claim (Entra ID
app roles). In Azure the JWKS is the tenant's Entra ID / B2C keys endpoint; locally it
is the development issuer's key file (a ``file://`` URL, read once).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

ROLES = ("admin", "support", "reader")
TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # matched whole (fullmatch): no trailing newline, no case games
REASONS: dict[type[Exception], str] = {  # our words for the library's errors (its text is not shown)
    jwt.ExpiredSignatureError: "the token has expired",
    jwt.ImmatureSignatureError: "the token is not valid yet",
    jwt.InvalidAudienceError: "the token is for another audience",
    jwt.InvalidIssuerError: "the token is from another issuer",
    jwt.MissingRequiredClaimError: "the token lacks a required claim (exp, iss, aud, sub)",
    jwt.InvalidAlgorithmError: "the token is not signed with RS256",
    jwt.InvalidSignatureError: "the token's signature does not verify",
    jwt.PyJWKClientError: "the token's signing key is unknown",
}


def is_tenant_id(value: object) -> bool:
    """A tenant id: 1-40 lowercase letters, digits or '-', exactly (it goes into table keys)."""
    return isinstance(value, str) and TENANT.fullmatch(value) is not None


class AuthError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    tenant: str
    subject: str
    roles: frozenset[str]

    def require(self, allowed: Sequence[str]) -> None:
        if not self.roles.intersection(allowed):
            raise AuthError(403, f"needs one of the roles {', '.join(allowed)}")


class TokenValidator:
    def __init__(self, issuer: str, audience: str, jwks_url: str, tenant_claim: str = "abonno_tenant") -> None:
        self.issuer = issuer
        self.audience = audience
        self.tenant_claim = tenant_claim
        self._signing_key = _key_source(jwks_url)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError(401, "missing bearer token")
        token = authorization.split(" ", 1)[1].strip()
        try:
            key = self._signing_key(token)
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise AuthError(401, _reason(exc)) from exc
        tenant = claims.get(self.tenant_claim)
        if tenant is None:
            raise AuthError(403, f"token has no {self.tenant_claim} claim")
        if not is_tenant_id(tenant):
            raise AuthError(403, f"the token's {self.tenant_claim} claim is not a valid tenant id")
        roles = claims.get("roles") or []
        return Principal(tenant, str(claims["sub"]), frozenset(r for r in roles if isinstance(r, str)))


def _reason(exc: Exception) -> str:
    for cls in type(exc).__mro__:
        if cls in REASONS:
            return REASONS[cls]
    return "the token is malformed or not signed by the identity provider"


def _key_source(jwks_url: str) -> Any:
    """A function from a token to its signing key: remote JWKS (cached) or a local file."""
    if jwks_url.startswith("file://"):
        path = urllib.request.url2pathname(urllib.parse.urlsplit(jwks_url).path)
        with open(path, encoding="utf-8") as handle:
            keys = jwt.PyJWKSet.from_dict(json.load(handle))

        def local(token: str) -> Any:
            kid = jwt.get_unverified_header(token).get("kid")
            for key in keys.keys:
                if key.key_id == kid:
                    return key.key
            raise jwt.PyJWKClientError(f"no key with kid {kid!r}")

        return local
    client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600)
    return lambda token: client.get_signing_key_from_jwt(token).key
