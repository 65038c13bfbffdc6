"""A provider entry for every tenant (``"*"`` with ``{tenant}`` in its JWKS URL) made a key
set, kept for ever, for each tenant id any anonymous caller named in a route: a script
naming fresh tenant ids grew the process's memory without end (and each one cost a fetch).
The key sets kept are bounded; the oldest goes first."""

from __future__ import annotations

from shared.adapters import subscriber_auth
from shared.adapters.subscriber_auth import SubscriberAuthenticator


def test_the_key_sets_kept_are_bounded_whatever_tenants_callers_name() -> None:
    auth = SubscriberAuthenticator({"*": {"issuer": "https://{tenant}.example/v2.0", "audience": "api://x",
                                          "jwks_url": "https://{tenant}.example/keys"}})
    for n in range(subscriber_auth.MAX_KEY_SETS + 50):
        auth.key_set(auth.provider(f"t{n}").jwks_url)
    assert len(auth._keys) == subscriber_auth.MAX_KEY_SETS
    newest = auth.provider(f"t{subscriber_auth.MAX_KEY_SETS + 49}").jwks_url
    assert newest in auth._keys and auth.provider("t0").jwks_url not in auth._keys
    assert auth.key_set(newest) is auth.key_set(newest)  # one kept is reused, not made again
