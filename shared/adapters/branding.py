"""Organisations' logos in Blob Storage (C1, L7): container ``branding``, ``{tenant}/{name}``.

The port is ``shared.ports.Logos``. An organisation's ``Branding.logo_blob`` names the
blob; the merchant API stores it (``PUT .../organizations/{id}/logo``) and the PDF
renderer is handed its bytes. The container is private: a logo is read by the app only.
"""

from __future__ import annotations

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from ..ports import Logos as Logos  # re-exported: the port lives in shared/ports.py

CONTAINER = "branding"


class BlobLogos:
    def __init__(self, service: BlobServiceClient) -> None:
        self.container = service.get_container_client(CONTAINER)
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass

    def get(self, tenant: str, name: str) -> bytes | None:
        try:
            return self.container.download_blob(f"{tenant}/{name}").readall()
        except ResourceNotFoundError:
            return None

    def put(self, tenant: str, name: str, data: bytes, media_type: str) -> None:
        self.container.upload_blob(f"{tenant}/{name}", data, overwrite=True,
                                   content_settings=ContentSettings(content_type=media_type))
