"""The composition root: the one place that wires real adapters into the ports.

``build`` puts the Azure adapters of ``shared/adapters`` behind the ports of
``shared/ports.py`` in a ``Context`` (the service layer sees only the ports);
``context()`` does it once per process from the app settings below, ``connect`` for a
connection string (tests, benchmarks). Tests wire in-memory fakes
instead (``tests/fakes``).

App settings (Azure) or environment (local host, tests):

| setting | meaning |
|---|---|
| ``AzureWebJobsStorage`` | storage connection string (Azurite locally) ... |
| ``AzureWebJobsStorage__accountName`` | ... or the account name, used with the managed identity |
| ``ServiceBusConnection__fullyQualifiedNamespace`` | Service Bus namespace (managed identity) |
| ``ServiceBusConnection`` | ... or a connection string; with neither, Azurite queues are the bus |
| ``ABONNO_CLOCK`` | ``system`` (default) or ``settable`` (local host and tests) |
| ``AUTH_ISSUER``, ``AUTH_AUDIENCE``, ``AUTH_JWKS_URL``, ``AUTH_TENANT_CLAIM`` | merchant API tokens |
| ``ABONNO_ACS_EMAIL_ENDPOINT`` | Azure Communication Services Email by the managed identity: mail by ACS |
| ``ABONNO_ACS_EMAIL_CONNECTION`` | ... or by a connection string (``endpoint=...;accesskey=...``) |
| ``ABONNO_SMTP_HOST``, ``ABONNO_SMTP_PORT`` | ... else mail by SMTP to this server (default ``localhost:25``) |
| ``ABONNO_SMTP_USER``, ``ABONNO_SMTP_PASSWORD``, ``ABONNO_SMTP_STARTTLS`` | SMTP login and STARTTLS (``true``) |
| ``ABONNO_PUBLIC_URL`` | the app's base URL, for provider redirects, callbacks and My page links |
| ``ABONNO_VIPPS_URL``, ``ABONNO_VIPPS_CREDENTIALS`` | Vipps base URL; JSON per tenant (Key Vault) |
| ``ABONNO_SWEDBANKPAY_URL``, ``ABONNO_SWEDBANKPAY_CREDENTIALS`` | Swedbank Pay base URL; JSON per tenant (Key Vault) |
| ``ABONNO_SUBSCRIBER_IDP`` | subscribers' identity providers per tenant (JSON; ``adapters.subscriber_auth``) |
| ``ABONNO_MYPAGE_CLIENT_SECRET`` | My page's client secret per tenant (JSON; Key Vault) |
| ``ABONNO_CONNECTOR_CREDENTIALS`` | API connector and site lookup: HTTP Basic pair per tenant, JSON (Key Vault) |
| ``ABONNO_MAIL_SENDER`` | From, when an organisation has no contact e-mail (default ``no-reply@abonno.local``) |
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient

from .adapters.access_point import BlobAccessPoint
from .adapters.access_records import AccessRows
from .adapters.accounts import AccountRepository
from .adapters.attention import AttentionStore
from .adapters.auth import TokenValidator
from .adapters.bus import ServiceBusBus, StorageQueueBus
from .adapters.catalogue_store import CatalogueStore
from .adapters.connector_auth import ConnectorCredentials
from .adapters.deliveries import DeliveryRows
from .adapters.document_files import BlobDocumentFiles
from .adapters.identity_store import CodeRows, SessionRows
from .adapters.imports import ImportLog
from .adapters.indexes import DueIndex, DunningIndex, EmailIndex, OrderRecords, PendingOrders, Tenants
from .adapters.mail import AcsMailer, SmtpMailer
from .adapters.mypage_signin import GraphInviter, SignIn
from .adapters.notify import BlobNotifier
from .adapters.numbering import InvoiceNumbers, SubscriberNumbers
from .adapters.payments_inbox import PaymentsInbox
from .adapters.print_files import BlobPrintFiles
from .adapters.print_queue import PrintRows
from .adapters.provider_watch import WatchRows
from .adapters.subscriber_auth import SubscriberAuthenticator
from .adapters.swedbankpay import swedbankpay_from_settings
from .adapters.tables import Storage, pooled_transport
from .adapters.vipps import vipps_from_settings
from .clock import SettableClock, SystemClock
from .ports import Bus, Clock, Mailer, Notifier
from .service.context import Context

# The Azure SDK logs every request URL at INFO; a URL names table keys, and an index key
# can hold an e-mail address. Logs at INFO carry no personal data, so that logger says
# only what goes wrong.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


@dataclass
class AzureContext(Context):
    """The context on Azure Table Storage, with the raw tables beside the ports: for tests
    that read rows as stored and benchmarks that count round trips (``storage.round_trips``);
    the service layer sees only the ports."""

    storage: Storage


def build(storage: Storage, clock: Clock, bus: Bus, blobs: BlobServiceClient | None = None,
          mailer: Mailer | None = None) -> AzureContext:
    """Every port on its Azure adapter over ``storage`` (and ``blobs``, the same account's
    Blob Storage; the mailer from the app settings unless given)."""
    blobs = blobs or blob_service()
    accounts = AccountRepository(storage)
    return AzureContext(clock=clock, bus=bus, accounts=accounts, catalogue=CatalogueStore(storage),
                        invoice_numbers=InvoiceNumbers(storage), subscriber_numbers=SubscriberNumbers(storage),
                        due_index=DueIndex(storage), emails=EmailIndex(storage), tenants=Tenants(storage),
                        dunning_index=DunningIndex(storage), attention=AttentionStore(storage),
                        orders=OrderRecords(storage), pending=PendingOrders(storage),
                        inbox=PaymentsInbox(storage, accounts),
                        imports=ImportLog(storage), mailer=mailer or mailer_from_settings(),
                        access_point=BlobAccessPoint(blobs), document_files=BlobDocumentFiles(blobs),
                        deliveries=DeliveryRows(storage, accounts), print_queue=PrintRows(storage),
                        mail_sender=os.environ.get("ABONNO_MAIL_SENDER") or DEFAULT_SENDER,
                        notifier=BlobNotifier(blobs), print_files=BlobPrintFiles(blobs), vipps=vipps_from_settings(),
                        swedbankpay=swedbankpay_from_settings(), provider_watch=WatchRows(storage),
                        public_url=(os.environ.get("ABONNO_PUBLIC_URL") or "http://localhost:7071").rstrip("/"),
                        access=AccessRows(storage), codes=CodeRows(storage), sessions=SessionRows(storage, clock),
                        storage=storage)


def connect(conn: str, clock: Clock, pool_size: int = 64, mailer: Mailer | None = None) -> AzureContext:
    """A context on the storage account of a connection string (Azurite: tests, benchmarks),
    its tables and queues made; the bus is that account's queues."""
    storage = Storage.from_connection_string(conn, pool_size=pool_size)
    storage.ensure_tables()
    bus = StorageQueueBus.from_connection_string(conn)
    bus.ensure_queues()
    return build(storage, clock, bus, BlobServiceClient.from_connection_string(conn), mailer)


DEFAULT_SENDER = "no-reply@abonno.local"


def mailer_from_settings() -> Mailer:
    """ACS Email with ``ABONNO_ACS_EMAIL_ENDPOINT`` (the managed identity) or
    ``ABONNO_ACS_EMAIL_CONNECTION`` (a key), else SMTP (``ABONNO_SMTP_*``)."""
    endpoint = os.environ.get("ABONNO_ACS_EMAIL_ENDPOINT")
    if endpoint:
        from azure.communication.email import EmailClient
        from azure.identity import DefaultAzureCredential

        return AcsMailer(EmailClient(endpoint, DefaultAzureCredential()))
    acs = os.environ.get("ABONNO_ACS_EMAIL_CONNECTION")
    if acs:
        return AcsMailer.from_connection_string(acs)
    return SmtpMailer(os.environ.get("ABONNO_SMTP_HOST") or "localhost", int(os.environ.get("ABONNO_SMTP_PORT") or 25),
                      os.environ.get("ABONNO_SMTP_USER") or "", os.environ.get("ABONNO_SMTP_PASSWORD") or "",
                      (os.environ.get("ABONNO_SMTP_STARTTLS") or "").lower() == "true")


_lock = threading.Lock()
_context: Context | None = None
_validator: TokenValidator | None = None
_notifier: Notifier | None = None
_subscriber_auth: SubscriberAuthenticator | None = None
_sign_in: SignIn | None = None
_connector: ConnectorCredentials | None = None
settable_clock = SettableClock()


def _account() -> tuple[str, Any]:
    """The storage account as (endpoint template, managed-identity credential)."""
    from azure.identity import DefaultAzureCredential

    account = os.environ["AzureWebJobsStorage__accountName"]
    return f"https://{account}.{{}}.core.windows.net", DefaultAzureCredential()


def _storage() -> Storage:
    conn = os.environ.get("AzureWebJobsStorage")
    if conn:
        return Storage.from_connection_string(conn)
    from azure.data.tables import TableServiceClient

    endpoint, credential = _account()
    return Storage(TableServiceClient(endpoint.format("table"), credential=credential, transport=pooled_transport()))


def blob_service() -> BlobServiceClient:
    """Blob Storage of the same account: connection string locally, managed identity in Azure."""
    conn = os.environ.get("AzureWebJobsStorage")
    if conn:
        return BlobServiceClient.from_connection_string(conn)
    endpoint, credential = _account()
    return BlobServiceClient(endpoint.format("blob"), credential=credential)


def _bus() -> Bus:
    namespace = os.environ.get("ServiceBusConnection__fullyQualifiedNamespace")
    conn = os.environ.get("ServiceBusConnection")
    if namespace or conn:
        from azure.servicebus import ServiceBusClient

        if namespace:
            from azure.identity import DefaultAzureCredential

            return ServiceBusBus(ServiceBusClient(namespace, DefaultAzureCredential()))
        return ServiceBusBus(ServiceBusClient.from_connection_string(str(conn)))
    bus = StorageQueueBus.from_connection_string(os.environ["AzureWebJobsStorage"])
    bus.ensure_queues()
    return bus


def _clock() -> Clock:
    return settable_clock if os.environ.get("ABONNO_CLOCK") == "settable" else SystemClock()


def context() -> Context:
    global _context
    with _lock:
        if _context is None:
            storage = _storage()
            storage.ensure_tables()
            _context = build(storage, _clock(), _bus())
        return _context


def set_context(ctx: Context | None) -> None:
    """Replace the wiring (tests, local host)."""
    global _context
    with _lock:
        _context = ctx


def set_notifier(notifier: Notifier | None) -> None:
    """Replace where notices go (tests)."""
    global _notifier
    with _lock:
        _notifier = notifier


def notifier() -> Notifier:
    """Where SMS go: the blob adapter (readable files) until a gateway is wired here (the
    context's ``notifier``, unless a test replaced it with ``set_notifier``)."""
    global _notifier
    with _lock:
        if _notifier is not None:
            return _notifier
    return context().notifier


def token_validator() -> TokenValidator:
    global _validator
    with _lock:
        if _validator is None:
            _validator = TokenValidator(os.environ["AUTH_ISSUER"], os.environ["AUTH_AUDIENCE"],
                                        os.environ["AUTH_JWKS_URL"],
                                        os.environ.get("AUTH_TENANT_CLAIM", "abonno_tenant"))
        return _validator


def subscriber_authenticator() -> SubscriberAuthenticator:
    """Subscribers' tokens (and My page's sessions), by the tenant's identity provider."""
    global _subscriber_auth
    with _lock:
        if _subscriber_auth is None:
            _subscriber_auth = SubscriberAuthenticator.from_settings(lambda: context().sessions,
                                                                     lambda: context().clock)
        return _subscriber_auth


def graph_inviter() -> GraphInviter:
    """Microsoft Graph invitations for group seats, by My page's client credentials (where
    the tenant's provider names a ``graph_tenant``; else invitations are the codes alone)."""
    return GraphInviter(subscriber_authenticator())


def sign_in() -> SignIn:
    """My page's sign-in (msal's authorization-code flow with PKCE)."""
    global _sign_in
    authenticator = subscriber_authenticator()  # before the lock: it takes the lock itself
    with _lock:
        if _sign_in is None:
            _sign_in = SignIn(authenticator)
        return _sign_in


def connector_credentials() -> ConnectorCredentials:
    """The API connector's HTTP Basic credentials per tenant (read again after ``reset``)."""
    global _connector
    with _lock:
        if _connector is None:
            _connector = ConnectorCredentials.from_settings()
        return _connector


def reset() -> None:
    global _context, _validator, _notifier, _subscriber_auth, _connector, _sign_in
    with _lock:
        _connector = None
        _sign_in = None
        _context = None
        _validator = None
        _notifier = None
        _subscriber_auth = None
