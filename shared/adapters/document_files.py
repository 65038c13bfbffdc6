"""Rendered documents as blobs, and time-limited signed links to them (L7, D3).

Container ``documents`` (private: never public access), blob
``{tenant}/{subscriber_no}/{document id}.{pdf|xml}``. A document renders to the same bytes
every time (same stored demand, same template version), so writing it again overwrites it
with the same bytes.

A link (``link``) is a read-only SAS for one blob that expires ``valid_for`` from now: a
*user-delegation* SAS in Azure (signed with a key Entra ID hands the managed identity;
the account has shared-key access disabled), an *account-key* SAS on Azurite (the
connection string's key). The storage service checks the expiry against its own clock,
so it is computed from the real time, never the settable test clock. A few minutes of
start-time slack cover clock skew.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, ContentSettings, generate_blob_sas

from .blobs import container

CONTAINER = "documents"
BRANDING = "branding"  # logos: ``{tenant}/{Branding.logo_blob}``
SKEW = timedelta(minutes=5)


def blob_name(tenant: str, subscriber_no: int, document_id: str, suffix: str) -> str:
    return f"{tenant}/{subscriber_no:010d}/{document_id}.{suffix}"


class BlobDocumentFiles:
    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service
        self.container = container(service, CONTAINER)

    def put(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, data: bytes,
            content_type: str) -> str:
        name = blob_name(tenant, subscriber_no, document_id, suffix)
        self.container.upload_blob(name, data, overwrite=True,
                                   content_settings=ContentSettings(content_type=content_type))
        return name

    def get(self, tenant: str, subscriber_no: int, document_id: str, suffix: str) -> bytes | None:
        try:
            return self.container.download_blob(blob_name(tenant, subscriber_no, document_id, suffix)).readall()
        except ResourceNotFoundError:
            return None

    def link(self, tenant: str, subscriber_no: int, document_id: str, suffix: str, valid_for: timedelta) -> str:
        name = blob_name(tenant, subscriber_no, document_id, suffix)
        now = datetime.now(UTC)  # the storage service's clock decides, not ours
        start, expiry = now - SKEW, now + valid_for
        account = str(self.service.account_name)
        key = getattr(self.service.credential, "account_key", None)
        if key:  # Azurite, or an account reached by connection string
            sas = generate_blob_sas(account, CONTAINER, name, account_key=key,
                                    permission=BlobSasPermissions(read=True), expiry=expiry, start=start)
        else:  # the managed identity: a user-delegation key, valid as long as the link
            delegation = self.service.get_user_delegation_key(start, expiry)
            sas = generate_blob_sas(account, CONTAINER, name, user_delegation_key=delegation,
                                    permission=BlobSasPermissions(read=True), expiry=expiry, start=start)
        return f"{self.container.get_blob_client(name).url}?{sas}"

    def logo(self, tenant: str, name: str) -> bytes | None:
        try:
            return self.service.get_blob_client(BRANDING, f"{tenant}/{name}").download_blob().readall()
        except ResourceNotFoundError:
            return None

    def put_logo(self, tenant: str, name: str, data: bytes, content_type: str) -> None:
        branding = container(self.service, BRANDING)
        branding.upload_blob(f"{tenant}/{name}", data, overwrite=True,
                             content_settings=ContentSettings(content_type=content_type))
