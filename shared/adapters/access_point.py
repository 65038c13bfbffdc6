"""The EHF / PEPPOL access point (L7, D3; manual 7.12): the port ``shared.ports.AccessPoint``.

``BlobAccessPoint`` is the local one: each UBL document goes to the blob container
``ehf-outbox`` as ``{tenant}/{yyyy-mm-dd}/{name}``, created only if absent, so a document
is never exported twice (manual 7.12: "never exported twice"), however often delivery is
retried. Every organisation number is a receiver here (a real access point asks the
PEPPOL directory: SML/SMP); an adapter for a commercial access point implements the same
two methods.
"""

from __future__ import annotations

from datetime import date

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from .blobs import container

CONTAINER = "ehf-outbox"
SCHEMES = ("0192", "0007")  # Norwegian and Swedish organisation numbers (PEPPOL EAS codes)


class BlobAccessPoint:
    def __init__(self, service: BlobServiceClient) -> None:
        self.container = container(service, CONTAINER)

    def can_receive(self, tenant: str, scheme: str, organization_number: str) -> bool:
        return scheme in SCHEMES and organization_number.isdigit()

    def send(self, tenant: str, day: date, name: str, ubl: bytes) -> str:
        blob = f"{tenant}/{day.isoformat()}/{name}"
        try:
            self.container.upload_blob(blob, ubl, overwrite=False,
                                       content_settings=ContentSettings(content_type="application/xml"))
        except ResourceExistsError:
            pass  # sent before: the first transmission stands
        return blob
