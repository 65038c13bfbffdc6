"""My page's sign-in at the tenant's identity provider with ``msal`` (issue 12): the
server-side authorization-code flow with PKCE of a confidential client (a
backend-for-frontend: the tokens never reach the browser), and Microsoft Graph by client
credentials where group invitations need it.

The tenant's entry in ``ABONNO_SUBSCRIBER_IDP`` (``subscriber_auth``) names, besides the
issuer, audience and JWKS:

| key | meaning |
|---|---|
| ``authority`` | B2C (``https://{t}.b2clogin.com/{t}.onmicrosoft.com/{policy}``) or External ID |
| ``oidc_authority`` | ... or any OpenID Connect issuer (the development identity provider) |
| ``client_id`` | My page's app registration |
| ``scope`` | the API scope the access token is asked for (its audience is the entry's ``audience``) |
| ``graph_tenant`` | the directory for Microsoft Graph (invitations); none: no invitations sent |

The client secret is ``ABONNO_MYPAGE_CLIENT_SECRET`` (JSON tenant -> secret, ``"*"`` for
all; a Key Vault reference in Azure). The access token msal gets is validated like any
bearer token (``SubscriberAuthenticator.validate``), so a session holds exactly what a
bearer call would.

Locally the provider is ``devhost.dev_idp`` under the issuer ``https://abonno.local/...``;
msal insists on https, so its HTTP client sends what it asks of ``https://abonno.local/dev-idp/``
to the local host's ``/_dev/idp/`` (``public_url``), and the browser is sent there too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

import msal  # type: ignore[import-untyped]
import requests

from ..ports import SubscriberPrincipal
from .auth import AuthError
from .subscriber_auth import SubscriberAuthenticator

SECRET_SETTING = "ABONNO_MYPAGE_CLIENT_SECRET"
DEV_PREFIX = "https://abonno.local/dev-idp/"
TIMEOUT = 10


class SignInFailed(ValueError):
    """The provider refused the sign-in, or its answer did not match the flow begun (400)."""


class LocalAuthorityClient(requests.Session):
    """msal's HTTP client: URLs under ``DEV_PREFIX`` go to the local host instead."""

    def __init__(self, local_base: str) -> None:
        super().__init__()
        self.local_base = local_base.rstrip("/") + "/_dev/idp/"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        verb = method.decode() if isinstance(method, bytes) else method
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(verb, self.browser_url(target), *args, **kwargs)

    def browser_url(self, url: str) -> str:
        return self.local_base + url[len(DEV_PREFIX):] if url.startswith(DEV_PREFIX) else url


class SignIn:
    """Begins and finishes the authorization-code flow for a tenant (``begin``, ``finish``)."""

    def __init__(self, authenticator: SubscriberAuthenticator, public_url: str,
                 secrets: Mapping[str, str] | None = None) -> None:
        self.authenticator = authenticator
        self.http = LocalAuthorityClient(public_url)
        self.secrets = dict(secrets if secrets is not None else json.loads(os.environ.get(SECRET_SETTING) or "{}"))
        self._http_cache: dict[Any, Any] = {}  # the providers' discovery documents, kept between sign-ins
        self._lock = threading.Lock()

    def _app(self, tenant: str) -> tuple[msal.ConfidentialClientApplication, Mapping[str, Any]]:
        """A client for one sign-in, with a token cache of its own: no user's token outlives
        the request in this process's memory."""
        settings = self.authenticator.settings(tenant)
        client_id = settings.get("client_id")
        secret = self.secrets.get(tenant) or self.secrets.get("*")
        if not client_id or not secret or not (settings.get("authority") or settings.get("oidc_authority")):
            raise AuthError(401, "this tenant has no My page sign-in configured")
        where: dict[str, Any] = ({"oidc_authority": settings["oidc_authority"]} if settings.get("oidc_authority")
                                 else {"authority": settings["authority"]})
        with self._lock:
            app = msal.ConfidentialClientApplication(str(client_id), client_credential=secret, http_client=self.http,
                                                     token_cache=msal.TokenCache(), http_cache=self._http_cache,
                                                     **where)
        return app, settings

    def begin(self, tenant: str, redirect_uri: str) -> dict[str, Any]:
        """msal's flow (state, nonce, PKCE verifier, ``auth_uri``): kept in the session; the
        browser is sent to ``browser_url(flow["auth_uri"])``."""
        app, settings = self._app(tenant)
        scopes = [s for s in str(settings.get("scope") or "").split() if s]
        return dict(app.initiate_auth_code_flow(scopes, redirect_uri=redirect_uri, response_mode="query"))

    def browser_url(self, url: str) -> str:
        return self.http.browser_url(url)

    def finish(self, tenant: str, flow: Mapping[str, Any], response: Mapping[str, str]) -> SubscriberPrincipal:
        """Redeem the code the provider sent back (``response``: the callback's query) for
        tokens, and the principal of the access token (or, without an API scope, the ID token)."""
        app, settings = self._app(tenant)
        try:
            result = app.acquire_token_by_auth_code_flow(dict(flow), dict(response))
        except ValueError as exc:  # msal: state mismatch, or a response that is no answer to this flow
            raise SignInFailed("the sign-in answer does not belong to this sign-in; start again") from exc
        if "error" in result:
            raise SignInFailed("the identity provider did not sign you in; start again")
        if settings.get("scope"):
            return self.authenticator.validate(str(result.get("access_token") or ""), tenant)
        return self.authenticator.validate(str(result.get("id_token") or ""), tenant,
                                           audience=str(settings["client_id"]))


class GraphInviter:
    """Invites a person to the tenant's directory by Microsoft Graph (``POST /invitations``),
    with a client-credentials token of My page's app; nothing where ``graph_tenant`` is not
    configured (locally)."""

    def __init__(self, authenticator: SubscriberAuthenticator, secrets: Mapping[str, str] | None = None,
                 http: requests.Session | None = None) -> None:
        self.authenticator = authenticator
        self.secrets = dict(secrets if secrets is not None else json.loads(os.environ.get(SECRET_SETTING) or "{}"))
        self.http = http or requests.Session()

    def invite(self, tenant: str, email: str, name: str, redirect_url: str) -> bool:
        """True if an invitation was sent; False where Graph is not configured."""
        settings = self.authenticator.settings(tenant)
        directory, client_id = settings.get("graph_tenant"), settings.get("client_id")
        secret = self.secrets.get(tenant) or self.secrets.get("*")
        if not directory or not client_id or not secret:
            return False
        app = msal.ConfidentialClientApplication(str(client_id), client_credential=secret, http_client=self.http,
                                                 authority=f"https://login.microsoftonline.com/{directory}")
        token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        if "access_token" not in token:
            raise SignInFailed("Microsoft Graph refused My page's credentials")
        answer = self.http.post("https://graph.microsoft.com/v1.0/invitations", timeout=TIMEOUT,
                                headers={"Authorization": f"Bearer {token['access_token']}"},
                                json={"invitedUserEmailAddress": email, "invitedUserDisplayName": name,
                                      "inviteRedirectUrl": redirect_url, "sendInvitationMessage": True})
        answer.raise_for_status()
        return True
