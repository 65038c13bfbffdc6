"""Renderers of documents (L7): a ``shared.domain.documents.Document`` in, bytes out.

``pdf`` (what subscribers read and print), ``ehf`` (PEPPOL BIS Billing 3.0 UBL for
organisations), ``texts`` (labels per language, amounts and dates the local way) and
``print_batch`` (many PDFs as one, streamed). Like ``shared.formats`` they are pure: no
storage, no clock, no Azure SDK; the same document and template version give the same
bytes.
"""
