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
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

ROLES = ("admin", "support", "reader")


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
            raise AuthError(401, f"invalid token: {exc}") from exc
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthError(403, f"token has no {self.tenant_claim} claim")
        roles = claims.get("roles") or []
        return Principal(tenant, str(claims["sub"]), frozenset(r for r in roles if isinstance(r, str)))


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
