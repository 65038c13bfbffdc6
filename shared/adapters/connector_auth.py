"""HTTP Basic credentials of the identity provider's API connector, per tenant (issue 12).

Azure AD B2C calls its API connector (and the publisher's own servers call the site
lookup) with HTTP Basic credentials (``secure-rest-api.md``: Authentication type = Basic),
as INFO-Subscription's ``userclaims`` takes them. Each tenant has its own pair in the app
setting ``ABONNO_CONNECTOR_CREDENTIALS``, a JSON object from tenant id to
``{"username", "password"}`` (a Key Vault reference in Azure); ``"*"`` is a default for
tenants not named, with ``{tenant}`` in its values replaced by the tenant id (for the local
host; production names each tenant, so one tenant's pair opens nothing of another's).

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
from collections.abc import Mapping

from .auth import AuthError

SETTING = "ABONNO_CONNECTOR_CREDENTIALS"
REALM = 'Basic realm="abonno-access", charset="UTF-8"'
_NOBODY = ("\x00no-user", "\x00no-password")  # compared against when a tenant has none: same work, never equal


class ConnectorCredentials:
    def __init__(self, config: Mapping[str, Mapping[str, str]]) -> None:
        self._config = dict(config)

    @classmethod
    def from_settings(cls) -> ConnectorCredentials:
        return cls(json.loads(os.environ.get(SETTING) or "{}"))

    def pair(self, tenant: str) -> tuple[str, str] | None:
        raw = self._config.get(tenant) or self._config.get("*")
        if raw is None or not raw.get("username") or not raw.get("password"):
            return None
        return str(raw["username"]).replace("{tenant}", tenant), str(raw["password"]).replace("{tenant}", tenant)

    def check(self, authorization: str | None, tenant: str) -> None:
        """``AuthError`` 401 unless ``authorization`` is ``Basic`` with the tenant's pair."""
        given = _basic(authorization)
        expected = self.pair(tenant)
        user, password = expected or _NOBODY
        got_user, got_password = given or ("", "")
        same_user = hmac.compare_digest(got_user.encode(), user.encode())
        same_password = hmac.compare_digest(got_password.encode(), password.encode())
        if expected is None or given is None or not (same_user and same_password):
            raise AuthError(401, "the connector's credentials are missing or wrong")


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
