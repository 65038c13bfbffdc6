"""Blob trigger: bank files dropped by SFTP into ``inbound/{tenant}/{file}`` (P1).

In Azure the trigger takes Event Grid events (the only blob source Flex Consumption
supports); locally the host polls the Azurite container. A file that is not a bank
file, or whose control totals do not add up, books nothing: it is copied to
``rejected/`` with a readable ``.error.txt`` report and not retried. Any other failure
is raised, so the trigger retries and in the end poisons the blob; the import is
idempotent, so a retry after a half-finished run books only what is missing.
"""

from __future__ import annotations

import logging

import azure.functions as func
from azure.core.exceptions import ResourceExistsError

from shared import bootstrap
from shared.formats.bgmax import FormatError
from shared.formats.payments import ControlTotalError, UnknownFormat
from shared.service.payments_in import ImportResult, import_bank_file

bp = func.Blueprint()
log = logging.getLogger(__name__)
INBOUND, REJECTED = "inbound", "rejected"


def handle(name: str, data: bytes) -> ImportResult | None:
    """``name`` is ``{tenant}/{file}`` inside the inbound container."""
    tenant, _, file = name.partition("/")
    if not file:
        reject(name, data, "a bank file must be dropped in a tenant's folder: inbound/{tenant}/{file}")
        return None
    try:
        return import_bank_file(bootstrap.context(), tenant, file, data)
    except (UnknownFormat, ControlTotalError, FormatError) as exc:
        reject(name, data, f"{type(exc).__name__}: {exc}")
        return None


def reject(name: str, data: bytes, reason: str) -> None:
    log.warning("bank file %s rejected: %s", name, reason)
    container = bootstrap.blob_service().get_container_client(REJECTED)
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    container.upload_blob(name, data, overwrite=True)
    report = f"Bank file {INBOUND}/{name} was rejected and nothing was booked.\n\nReason: {reason}\n"
    container.upload_blob(f"{name}.error.txt", report.encode(), overwrite=True)


@bp.function_name("ocr_blob_trigger")
@bp.blob_trigger(arg_name="blob", path=INBOUND + "/{name}", connection="AzureWebJobsStorage", source="EventGrid")
def ocr_blob_trigger(blob: func.InputStream) -> None:
    name = (blob.name or "").split("/", 1)[1]  # the host passes "inbound/{name}"
    handle(name, blob.read())
