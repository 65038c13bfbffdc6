"""The demo's readers on My page (M1, S8; issue 12), through the local host's HTTP API as a
browser's backend would call it with the readers' bearer tokens from the development
issuer: a few readers link their login to their subscription by the code mailed to the
subscriber's address (one reader links a second, a household), ask the access API what
they may read, look at their subscriptions and invoices, stop a subscription and restart
it, and export their data. Every answer is checked; ``figures`` are the demo's
``logins_linked``, ``access_checks``, ``self_service_stops`` and ``self_service_restarts``
and its ``self_service`` check."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from . import issuer

NOTICES = "notices"  # where the notices channel leaves the codes it mails (shared.adapters.notify)
READERS = 4  # readers who link a login; the first also links the subscriber after them (a household)


@dataclass
class SelfService:
    session: requests.Session
    base: str
    tenant: str
    connection_string: str
    linked: int = 0
    access_checks: int = 0
    stops: int = 0
    restarts: int = 0
    failures: list[str] = field(default_factory=list)
    used: set[tuple[str, str]] = field(default_factory=set)  # (address, code) redeemed already

    def call(self, token: str, method: str, path: str, body: Any = None, ok: int = 200) -> Any:
        response = self.session.request(method, f"{self.base}/{path}", json=body,
                                        headers={"Authorization": f"Bearer {token}"})
        if response.status_code != ok:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response.json() if response.content else {}

    def code_for(self, address: str) -> str | None:
        """The newest code the notices channel mailed to ``address`` not redeemed yet (a blob's
        time has whole seconds: two codes to one address may share it)."""
        box = BlobServiceClient.from_connection_string(self.connection_string).get_container_client(NOTICES)
        found: list[tuple[Any, str]] = []
        try:
            for blob in box.list_blobs(name_starts_with=f"{self.tenant}/"):
                message = email.message_from_bytes(box.download_blob(blob.name).readall())
                if str(message["To"]).strip().lower() == address.lower():
                    text = message.get_payload(decode=True)
                    match = re.search(rb"\b([0-9]{6})\b", text if isinstance(text, bytes) else b"")
                    if match and (address.lower(), match.group(1).decode()) not in self.used:
                        found.append((blob.last_modified, match.group(1).decode()))
        except ResourceNotFoundError:
            return None
        return max(found)[1] if found else None

    def link(self, token: str, address: str) -> list[dict[str, Any]]:
        """Link the token's login to the subscriber of ``address`` by the mailed code."""
        if self.call(token, "POST", f"my/{self.tenant}/links", {"email": address}, ok=202) is None:
            return []
        code = self.code_for(address)
        if code is None:
            self.failures.append(f"no code mailed to {address}")
            return []
        self.used.add((address.lower(), code))
        done = self.call(token, "POST", f"my/{self.tenant}/links/confirm", {"email": address, "code": code})
        if done is None:
            return []
        self.linked += 1
        return list(done.get("subscribers", []))

    def check_access(self, token: str, subscriptions: list[dict[str, Any]]) -> None:
        """The access API answers the reader; one with a subscription running today reads something."""
        claims = self.call(token, "GET", f"access/{self.tenant}/me")
        if claims is not None:
            self.access_checks += 1
            if any(s.get("status") == "active" for s in subscriptions) and not claims.get("products"):
                self.failures.append("a linked reader with an active subscription has no access")

    def stop_and_restart(self, token: str, number: int) -> None:
        """Stop the first subscription My page lets the reader stop, then restart it."""
        mine = f"my/{self.tenant}/subscribers/{number}"
        subs = self.call(token, "GET", f"{mine}/subscriptions")
        self.call(token, "GET", f"{mine}/invoices")
        self.check_access(token, (subs or {}).get("subscriptions", []))
        stoppable = [s for s in (subs or {}).get("subscriptions", []) if s.get("can_stop")]
        if not stoppable:
            return
        sub = stoppable[0]["id"]
        if self.call(token, "POST", f"{mine}/subscriptions/{sub}/stop", {"on": None, "code": None}) is None:
            return
        self.stops += 1
        if self.call(token, "POST", f"{mine}/subscriptions/{sub}/restart", {}) is None:
            return
        self.restarts += 1
        after = self.call(token, "GET", f"{mine}/subscriptions") or {}
        restarted = [s for s in after.get("subscriptions", []) if s["status"] in ("active", "future")]
        if not restarted:
            self.failures.append(f"subscriber {number}: nothing runs after the restart")

    def export(self, token: str, number: int) -> None:
        data = self.call(token, "GET", f"my/{self.tenant}/subscribers/{number}/export")
        if data is not None and (data.get("profile", {}).get("number") != number or not data.get("logins")):
            self.failures.append(f"subscriber {number}: the export misses its profile or logins")

    def figures(self) -> dict[str, Any]:
        return {"logins_linked": self.linked, "access_checks": self.access_checks,
                "self_service_stops": self.stops, "self_service_restarts": self.restarts}


def run(session: requests.Session, base: str, tenant: str, connection_string: str,
        addresses: list[str]) -> tuple[dict[str, Any], bool, list[str]]:
    """The readers of ``addresses`` (one each; the first reader also links the address after
    the readers') on My page; returns the figures, whether every answer was as expected, and
    what was not."""
    demo = SelfService(session, base, tenant, connection_string)
    readers = addresses[:READERS]
    for i, address in enumerate(readers):
        token = issuer.subscriber_token(tenant, f"reader-{i}", email=address, name=f"Reader {i}")
        subscribers = demo.link(token, address)
        if i == 0 and len(addresses) > READERS:
            subscribers += demo.link(token, addresses[READERS])  # a household: one login, two subscribers
        listed = demo.call(token, "GET", f"my/{tenant}/subscribers") or {}
        numbers = [s["number"] for s in listed.get("subscribers", [])]
        if sorted(numbers) != sorted({s["number"] for s in subscribers}):
            demo.failures.append(f"reader {i}: My page lists {numbers}, linked {subscribers}")
        if numbers:
            demo.stop_and_restart(token, numbers[0])
            demo.export(token, numbers[0])
    return demo.figures(), not demo.failures and demo.linked > 0, demo.failures
