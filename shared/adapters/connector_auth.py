"""HTTP Basic credentials of the identity provider's API connector, per tenant (issue 12).

Azure AD B2C calls its API connector (and the publisher's own servers call the site
lookup) with HTTP Basic credentials (``secure-rest-api.md``: Authentication type = Basic),
as INFO-Subscription's ``userclaims`` takes them. Each tenant has its own pair in the app
setting ``ABONNO_CONNECTOR_CREDENTIALS``, a JSON object from tenant id to
``{"username", "password"}`` (a Key Vault reference in Azure); ``"*"`` is a default for
tenants not named, with ``{tenant}`` in its values replaced by the tenant id (for the local
host; production names each tenant, so one tenant's pair opens nothing of another's).

Entra External ID calls its custom claims provider with a bearer token of its own instead
(``custom-extension-overview.md``, "Protect your REST API"): a tenant whose entry also has
``"extension": {"issuer", "audience", "jwks_url"}`` takes, on the connector only, such a
token: RS256 against the tenant's published keys, issuer (``https://{domain}.ciamlogin.com/
{tenantId}/v2.0``), audience (the extension's app registration) and expiry checked, and
``azp`` (v2) or ``appid`` (v1) the authentication events service, ``EVENTS_APP``.

Both the user name and the password are compared in constant time (``hmac.compare_digest``
over the whole values, both always compared), so the answer's timing tells a caller
nothing about how much of either was right; a tenant without credentials is refused the
same way as wrong credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from .auth import AuthError, _key_source, _reason

SETTING = "ABONNO_CONNECTOR_CREDENTIALS"
REALM = 'Basic realm="abonno-access", charset="UTF-8"'
EVENTS_APP = "99045fe1-7639-4a75-9d4a-577b6ca3810f"  # Entra's authentication events service (azp / appid)
_NOBODY = ("\x00no-user", "\x00no-password")  # compared against when a tenant has none: same work, never equal


class ConnectorCredentials:
    def __init__(self, config: Mapping[str, Mapping[str, Any]]) -> None:
        self._config = dict(config)
        self._keys: dict[str, Callable[[str], Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> ConnectorCredentials:
        return cls(json.loads(os.environ.get(SETTING) or "{}"))

    def pair(self, tenant: str) -> tuple[str, str] | None:
        raw = self._config.get(tenant) or self._config.get("*")
        if raw is None or not raw.get("username") or not raw.get("password"):
            return None
        return str(raw["username"]).replace("{tenant}", tenant), str(raw["password"]).replace("{tenant}", tenant)

    def check(self, authorization: str | None, tenant: str, extension: bool = False) -> None:
        """``AuthError`` 401 unless ``authorization`` is ``Basic`` with the tenant's pair, or
        (``extension``: the connector) a bearer token of the tenant's External ID events service."""
        if extension and authorization and authorization[:7].lower() == "bearer ":
            self._events_token(authorization[7:].strip(), tenant)
            return
        given = _basic(authorization)
        expected = self.pair(tenant)
        user, password = expected or _NOBODY
        got_user, got_password = given or ("", "")
        same_user = hmac.compare_digest(got_user.encode(), user.encode())
        same_password = hmac.compare_digest(got_password.encode(), password.encode())
        if expected is None or given is None or not (same_user and same_password):
            raise AuthError(401, "the connector's credentials are missing or wrong")


    def _events_token(self, token: str, tenant: str) -> None:
        raw = self._config.get(tenant) or self._config.get("*") or {}
        ext = raw.get("extension")
        if not isinstance(ext, Mapping):
            raise AuthError(401, "this tenant takes no bearer token on the connector")
        issuer, audience, jwks_url = (str(ext[k]).replace("{tenant}", tenant)
                                      for k in ("issuer", "audience", "jwks_url"))
        try:
            with self._lock:
                source = self._keys.get(jwks_url) or self._keys.setdefault(jwks_url, _key_source(jwks_url))
            claims = jwt.decode(token, source(token), algorithms=["RS256"], audience=audience, issuer=issuer,
                                options={"require": ["exp", "iss", "aud"]})
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise AuthError(401, _reason(exc)) from exc
        if EVENTS_APP not in (claims.get("azp"), claims.get("appid")):
            raise AuthError(401, "the token is not Entra's authentication events service's")


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of a ``Basic`` header; None if there is none or it is malformed."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        text = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon else None
