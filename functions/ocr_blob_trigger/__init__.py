"""Blob trigger: bank files dropped by SFTP into ``inbound/{tenant}/{file}`` (P1).

In Azure the trigger takes Event Grid events (the only blob source Flex Consumption
supports); locally the host polls the Azurite container. Each file is imported once
(``payments_in.receive_bank_file``): a file that cannot be imported, for whatever reason,
is copied to ``rejected/`` with a readable ``.error.txt`` report after one attempt, and a
file for a tenant that does not exist to ``quarantine/``; the decision is kept in
storage, so neither a redelivery nor a host restart tries it again. Only a transient
storage error is raised, for the host to retry.
"""

from __future__ import annotations

import azure.functions as func

from shared import bootstrap
from shared.adapters.imports import BankFileDrop
from shared.domain.import_report import ImportReport
from shared.service.payments_in import receive_bank_file

bp = func.Blueprint()
INBOUND = "inbound"


def handle(name: str, data: bytes) -> ImportReport | None:
    """``name`` is ``{tenant}/{file}`` inside the inbound container."""
    return receive_bank_file(bootstrap.context(), BankFileDrop(bootstrap.blob_service()), name, data)


@bp.function_name("ocr_blob_trigger")
@bp.blob_trigger(arg_name="blob", path=INBOUND + "/{name}", connection="AzureWebJobsStorage",
                 source=func.BlobSource.EVENT_GRID)
def ocr_blob_trigger(blob: func.InputStream) -> None:
    name = (blob.name or "").split("/", 1)[1]  # the host passes "inbound/{name}"
    handle(name, blob.read())
