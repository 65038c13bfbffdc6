"""The notification adapter (D3): SMS (and plain notices) as readable files in Blob Storage.
Documents by e-mail go through ``adapters.mail`` (SMTP or ACS Email); this adapter is the
SMS channel until an SMS gateway is chosen.

The port (``shared.ports.Notifier``): ``send(notice)`` delivers one e-mail or SMS. ``BlobNotifier`` writes each
notice into the ``notices`` container as ``{tenant}/{date}/{id}.eml`` (an RFC 5322
message any mail client opens) or ``.json`` (an SMS: recipient and text), so a person
can read exactly what would be sent. It is the adapter locally and until an e-mail/SMS
gateway is chosen; a gateway adapter implements the same one method. Writing the
same notice twice overwrites it with the same bytes: delivery is idempotent.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

from azure.storage.blob import BlobServiceClient

from ..ports import Notice
from ..ports import Notifier as Notifier  # re-exported: the port lives in shared/ports.py
from .blobs import container

CONTAINER = "notices"




def as_eml(notice: Notice) -> bytes:
    message = EmailMessage()
    message["From"] = notice.sender
    message["To"] = notice.to
    message["Subject"] = notice.subject
    message["Message-ID"] = f"<{notice.id}@abonno>"
    message.set_content(notice.body)
    return bytes(message)


def as_sms(notice: Notice) -> bytes:
    return json.dumps({"to": notice.to, "from": notice.sender, "text": notice.body}, ensure_ascii=False,
                      indent=2).encode()


class BlobNotifier:
    def __init__(self, service: BlobServiceClient) -> None:
        self.container = container(service, CONTAINER)

    def send(self, notice: Notice) -> None:
        sms = notice.channel == "sms"
        name = f"{notice.tenant}/{notice.day}/{notice.id}.{'json' if sms else 'eml'}"
        self.container.upload_blob(name, as_sms(notice) if sms else as_eml(notice), overwrite=True)
