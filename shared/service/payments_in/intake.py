"""The blob trigger's use case: a bank file dropped at ``inbound/{tenant}/{file}``, imported once.

A file outside a tenant's folder, or for a tenant that does not exist, is quarantined; a
file that cannot be imported is rejected with a readable report beside it; a transient
storage error is raised for the host to retry, at most ``MAX_ATTEMPTS`` times over all
restarts. Every decision is kept in the import log, so a redelivery does nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import re

from ...adapters.imports import MAX_ATTEMPTS, is_transient
from ...domain.import_report import ImportReport, rejected
from ...formats.payments import BankFileError
from ...ports import FileDrop
from ..context import Context
from .bank_file import TransmissionConflict, import_bank_file

log = logging.getLogger(__name__)

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # what the merchant API accepts as a tenant id


def receive_bank_file(ctx: Context, drop: FileDrop, name: str, data: bytes) -> ImportReport | None:
    """A file dropped at ``inbound/{name}`` (``name`` = ``{tenant}/{file}``): import it once.

    Any failure but a transient storage error ends with the file in ``rejected/`` beside an
    ``.error.txt`` report, after one attempt; the decision is kept in storage, so a host
    that restarts (or redelivers) finds it and does nothing more. A transient storage error
    is raised for the host to retry, at most ``MAX_ATTEMPTS`` times over all restarts.
    """
    imports = ctx.imports
    attempts, decided = imports.attempt(name, data)
    if decided is not None:
        log.info("bank file %s was handled before (%s); nothing to do", name, decided)
        return None
    tenant, _, file = name.partition("/")
    if _quarantined(ctx, drop, name, data):
        return None
    if attempts > MAX_ATTEMPTS:
        return _reject(ctx, drop, tenant, name, data, f"the import failed {attempts - 1} times (storage unavailable "
                                                     "or the process died); not tried again", partial=True)
    try:
        report = import_bank_file(ctx, tenant, file, data)
    except Exception as exc:
        if is_transient(exc):
            raise  # the host tries again; the attempts are counted above
        refused_whole = isinstance(exc, (BankFileError, TransmissionConflict))  # raised before anything is booked
        if not refused_whole:
            log.exception("bank file %s failed part-way", name)
        return _reject(ctx, drop, tenant, name, data, f"{type(exc).__name__}: {exc}", partial=not refused_whole)
    if not report.balanced:
        drop.reject(name, data, _report_text(name, "its records did not all land somewhere: " + "; ".join(
            report.problems), report.id, partial=True))
    imports.decide(name, data, report.status.value, report.id)
    return report


def _quarantined(ctx: Context, drop: FileDrop, name: str, data: bytes) -> bool:
    """A file outside a tenant's folder, or for a tenant that does not exist, goes to
    ``quarantine/`` with a report; nothing is written for any tenant."""
    tenant, _, file = name.partition("/")
    if file and "/" not in file and TENANT_ID.fullmatch(tenant) and ctx.tenants.exists(tenant):
        return False
    why = (f"tenant {tenant!r} does not exist" if file and "/" not in file
           else "a bank file must be dropped in a tenant's folder: inbound/{tenant}/{file}")
    drop.quarantine(name, data, f"Bank file inbound/{name} was quarantined: {why}. Nothing was written.\n")
    ctx.imports.decide(name, data, "quarantined")
    log.warning("bank file %s quarantined: %s", name, why)
    return True


def _reject(ctx: Context, drop: FileDrop, tenant: str, name: str, data: bytes, reason: str,
            partial: bool = False) -> ImportReport:
    imports = ctx.imports
    report = rejected(f"rejected.{hashlib.sha256(data).hexdigest()[:24]}", name.partition("/")[2],
                      ctx.clock.now().isoformat(), reason)
    imports.save(tenant, report)
    drop.reject(name, data, _report_text(name, reason, report.id, partial))
    imports.decide(name, data, "rejected", report.id)
    log.warning("bank file %s rejected: %s", name, reason)
    return report


def _report_text(name: str, reason: str, report_id: str = "", partial: bool = False) -> str:
    booked = ("Whatever it booked before it stopped stays booked, once; dropping the file again under another "
              "name finishes the import and books only what is missing." if partial else "Nothing was booked.")
    text = f"Bank file inbound/{name} was rejected. {booked}\n\nReason: {reason}\n"
    if report_id:
        text += f"\nImport report: GET /api/merchant/payments/imports/{report_id}\n"
    return text
