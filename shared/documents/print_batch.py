"""Many PDFs as one, streamed: the print channel's daily batch (L7, D3).

A print house takes one PDF per organisation and day with every letter in postal-code
order. ``merge(pdfs, out)`` writes that PDF: each input is parsed (pypdf), the objects its
pages reach are renumbered and written straight to ``out``, and only what the end of the
file needs is kept: the byte offset of each object (for the cross-reference table) and
the object number of each page (for the page tree). Memory does not grow with the
number of documents: one document is held at a time (``Merger``).

Objects that are byte-identical once renumbered (the fonts, encodings and logos every
invoice of an organisation carries, and the objects they refer to) are written once and
shared: each object is serialised after the objects it refers to, so its bytes say
everything it is, and its digest finds an earlier copy. The digests kept are bounded
(``SHARED``, least recently used go first), so sharing costs no memory that grows either.

A document goes in whole or not at all: its objects are serialised into a buffer of their
own and written only once all of it could be read, so an input that cannot be read
raises ``UnreadablePdf`` and leaves the output as it was (the caller may go on with the
next). The output is plain PDF 1.7: a header, the objects, one cross-reference table, a
trailer with an ``/ID`` made from the content (the same inputs give the same bytes).

PDF syntax: ISO 32000-1, 7.3 (objects), 7.5 (file structure), 7.7.3 (the page tree).
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from io import BytesIO
from typing import Any, BinaryIO

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    PdfObject,
    StreamObject,
)

HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
CATALOG = 1  # object numbers the merger gives itself; documents' objects follow
PAGES = 2
SHARED = 512  # digests of written objects remembered for sharing (bounded: memory stays flat)
CHUNK = 1024  # page references or cross-reference entries written at a time at the end
DROPPED = {"/Parent", "/StructParents", "/B"}  # a page's links into its own document's trees
INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")  # ISO 32000-1, 7.7.3.4
DEPTH = 64  # page tree levels followed up for inherited attributes


class UnreadablePdf(ValueError):
    """An input that is not a PDF the merger can copy (not a PDF, encrypted, broken)."""


def merge(pdfs: Iterable[bytes], out: BinaryIO) -> int:
    """Write every page of ``pdfs``, in order, as one PDF to ``out``; return the pages written.

    Streamed: ``pdfs`` is read one document at a time and written as it comes."""
    merger = Merger(out)
    for pdf in pdfs:
        merger.add(pdf)
    return merger.close()


class Merger:
    """One merged PDF being written to ``out``: ``add`` each document, then ``close``."""

    def __init__(self, out: BinaryIO, shared: int = SHARED) -> None:
        self.out = out
        self.shared_limit = shared
        self.position = 0
        self.digest = hashlib.md5(usedforsecurity=False)  # of the bytes written: the file's /ID
        self.offsets = array("Q", [0, 0])  # byte offset of object n at [n - 1]; 0: not written
        self.pages = array("Q")  # object numbers of the pages, in order
        self.shared: OrderedDict[bytes, int] = OrderedDict()
        self.objects_shared = 0  # objects not written again because an identical one was
        self.closed = False
        self._write(HEADER)

    @property
    def page_count(self) -> int:
        return len(self.pages)

    def add(self, pdf: bytes) -> int:
        """Append every page of one PDF; return its page count. All or nothing: an input
        that cannot be read raises ``UnreadablePdf`` and nothing of it is written."""
        if self.closed:
            raise ValueError("the merged PDF is closed")
        copy = _Copy(self, pdf)
        try:
            copy.run()
        except UnreadablePdf:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise UnreadablePdf(f"{type(exc).__name__}: {exc}") from exc
        self._commit(copy)
        return len(copy.pages)

    def close(self) -> int:
        """Write the page tree, the catalogue, the cross-reference table and the trailer."""
        if self.closed:
            return len(self.pages)
        self.closed = True
        self._object(PAGES, b"<</Type/Pages/Count %d/Kids[" % len(self.pages))
        for start in range(0, len(self.pages), CHUNK):
            self._write(b"".join(b"%d 0 R " % n for n in self.pages[start:start + CHUNK]))
        self._write(b"]>>\nendobj\n")
        self._object(CATALOG, b"<</Type/Catalog/Pages %d 0 R>>\nendobj\n" % PAGES)
        self._xref_and_trailer()
        return len(self.pages)

    # ---- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.position += len(data)

    def _object(self, number: int, body_start: bytes) -> None:
        self.offsets[number - 1] = self.position
        self._write(b"%d 0 obj\n" % number + body_start)

    def _commit(self, copy: _Copy) -> None:
        base = self.position
        self.offsets.extend(base + relative for relative in copy.offsets)
        self._write(copy.buffer.getvalue())
        self.pages.extend(copy.pages)
        for key, number in copy.new_shared.items():
            self._remember(key, number)
        self.objects_shared += copy.objects_shared

    def _remember(self, key: bytes, number: int) -> None:
        if self.shared_limit <= 0:
            return
        self.shared[key] = number
        self.shared.move_to_end(key)
        while len(self.shared) > self.shared_limit:
            self.shared.popitem(last=False)

    def _xref_and_trailer(self) -> None:
        start = self.position
        size = len(self.offsets) + 1
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        for first in range(0, len(self.offsets), CHUNK):
            self._write(b"".join(b"%010d 00000 n \n" % o if o else b"0000000000 65535 f \n"
                                 for o in self.offsets[first:first + CHUNK]))
        file_id = self.digest.hexdigest().encode()
        self._write(b"trailer\n<</Size %d/Root %d 0 R/ID[<%s><%s>]>>\nstartxref\n%d\n%%%%EOF\n"
                    % (size, CATALOG, file_id, file_id, start))


class _Copy:
    """One input document's objects, renumbered from the merger's next free number and
    serialised into a buffer of its own (the merger writes it when all went well)."""

    def __init__(self, merger: Merger, pdf: bytes) -> None:
        self.merger = merger
        self.pdf = pdf
        self.first = len(merger.offsets) + 1  # the first object number this document may use
        self.next = self.first
        self.buffer = BytesIO()
        self.offsets: list[int] = []  # relative to the buffer, for numbers first, first + 1, ...
        self.numbers: dict[tuple[int, int], int] = {}  # input (idnum, generation) -> output number
        self.active: set[tuple[int, int]] = set()  # being serialised (a reference to one is a cycle)
        self.reserved: dict[tuple[int, int], int] = {}  # numbers given ahead to objects in a cycle
        self.new_shared: dict[bytes, int] = {}
        self.objects_shared = 0
        self.pages: list[int] = []

    def run(self) -> None:
        try:
            reader = PdfReader(BytesIO(self.pdf), strict=False)
        except Exception as exc:  # pypdf raises many kinds on a file that is not a PDF
            raise UnreadablePdf(f"not a PDF: {type(exc).__name__}: {exc}") from exc
        try:
            self.copy(reader)
        finally:
            _release(reader)

    def copy(self, reader: PdfReader) -> None:
        if reader.is_encrypted:
            raise UnreadablePdf("encrypted PDF")
        pages = list(reader.pages)
        if not pages:
            raise UnreadablePdf("a PDF without pages")
        for page in pages:
            ref = page.indirect_reference
            if ref is None:
                raise UnreadablePdf("a page that is not an indirect object")
            self.pages.append(self.visit(ref, page=True, inherited=_inherited(ref.get_object())))

    def allocate(self) -> int:
        number = self.next
        self.next += 1
        self.offsets.append(-1)
        return number

    def visit(self, ref: IndirectObject, page: bool = False, inherited: dict[str, Any] | None = None) -> int:
        """The output number of the input object ``ref`` names, copying it (and what it
        refers to) the first time."""
        key = (ref.idnum, ref.generation)
        if key in self.numbers:
            return self.numbers[key]
        if key in self.active:  # a cycle: the object gets its number now and keeps it
            return self.reserved.setdefault(key, self.allocate())
        self.active.add(key)
        obj: Any = ref.get_object()
        is_page = page or (isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page")
        if is_page and inherited and isinstance(obj, DictionaryObject):  # its tree's, now its own (the tree stays)
            obj = dict(obj.items()) | {k: v for k, v in inherited.items() if k not in obj}
        body = self.serialise(obj, page=is_page)
        self.active.discard(key)
        number = self.reserved.pop(key, None)
        if number is None:
            number = self.place(body, shareable=not is_page)
        else:
            self.emit(number, body)
        self.numbers[key] = number
        return number

    def place(self, body: bytes, shareable: bool) -> int:
        """The number of an object written with exactly ``body``, or a new one written now."""
        if shareable and self.merger.shared_limit > 0:
            key = hashlib.blake2b(body, digest_size=20).digest()
            found = self.new_shared.get(key) or self.merger.shared.get(key)
            if found is not None:
                self.objects_shared += 1
                if key in self.merger.shared:
                    self.merger.shared.move_to_end(key)
                return found
            number = self.allocate()
            self.emit(number, body)
            self.new_shared[key] = number
            return number
        number = self.allocate()
        self.emit(number, body)
        return number

    def emit(self, number: int, body: bytes) -> None:
        self.offsets[number - self.first] = self.buffer.tell()
        self.buffer.write(b"%d 0 obj\n" % number)
        self.buffer.write(body)
        self.buffer.write(b"\nendobj\n")

    # ---- serialising -----------------------------------------------------------------------

    def serialise(self, obj: Any, page: bool = False) -> bytes:
        if isinstance(obj, IndirectObject):
            return b"%d 0 R" % self.visit(obj)
        if isinstance(obj, StreamObject):
            data: bytes = obj._data  # the stream as stored (still encoded by its /Filter)
            entries = {k: v for k, v in obj.items() if k != "/Length"}
            return (self._dictionary(entries, page=False)[:-2] + b"/Length %d>>\nstream\n" % len(data)
                    + data + b"\nendstream")
        if isinstance(obj, dict):
            return self._dictionary(obj, page=page)
        if isinstance(obj, ArrayObject):
            return b"[" + b" ".join(self.serialise(item) for item in obj) + b"]"
        if isinstance(obj, PdfObject):
            stream = BytesIO()
            obj.write_to_stream(stream)
            return stream.getvalue()
        raise UnreadablePdf(f"an object pypdf could not read: {type(obj).__name__}")

    def _dictionary(self, entries: dict[Any, Any], page: bool) -> bytes:
        parts = [b"<<"]
        for key, value in entries.items():
            if page and key in DROPPED:
                continue
            if isinstance(value, NullObject):
                continue
            parts.append(_name(key) + b" " + self.serialise(value))
        if page:
            parts.append(b"/Parent %d 0 R" % PAGES)
        parts.append(b">>")
        return b"".join(parts)


def _inherited(page: Any) -> dict[str, Any]:
    """The attributes a page inherits from the page tree nodes above it (as references or
    values, unresolved), nearest first."""
    found: dict[str, Any] = {}
    node, depth = page, 0
    while isinstance(node, DictionaryObject) and "/Parent" in node and depth < DEPTH:
        node, depth = node.raw_get("/Parent").get_object(), depth + 1
        if isinstance(node, DictionaryObject):
            found.update({k: node.raw_get(k) for k in INHERITABLE if k in node and k not in page and k not in found})
    return found


def _release(reader: PdfReader) -> None:
    """Break the reader's cycles: it and its objects refer to each other (its object cache,
    its catalogue), and left to the cycle collector, the garbage of thousands of documents
    piles up between the collector's rounds, so the peak would grow with the batch."""
    reader.close()  # the object cache, trailer and page list
    if hasattr(reader, "_validated_root"):
        reader._validated_root = None  # the catalogue it keeps (pypdf 7)


def _name(key: Any) -> bytes:
    stream = BytesIO()
    NameObject(key).write_to_stream(stream)
    return stream.getvalue()
