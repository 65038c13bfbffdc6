"""The print house's files (D3): the daily print batch in Blob Storage.

Container ``print`` (private), blob ``{tenant}/{yyyy-mm-dd}/{name}``: per organisation the
merged PDF ``{organization}.pdf``, the CSV manifest ``{organization}.csv`` and the batch's
report ``{organization}.json`` (written last: the mark that the day's batch is done).

A batch can be hundreds of megabytes, so ``open`` writes it as a *block blob* block by
block (``BLOCK`` bytes staged at a time, never the whole file in memory) and commits the
block list when the ``with`` block ends without an error: the blob appears whole, replacing
the one before, or not at all (staged blocks nobody commits are dropped by the service
after a week).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import BinaryIO, cast

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ContentSettings

from .blobs import container

CONTAINER = "print"
BLOCK = 4 * 1024 * 1024


def blob_name(tenant: str, day: date, name: str) -> str:
    return f"{tenant}/{day.isoformat()}/{name}"


class BlockWriter(io.RawIOBase):
    """A writable stream that stages every ``BLOCK`` bytes as a block of ``blob``."""

    def __init__(self, blob: BlobClient, block_size: int | None = None) -> None:
        super().__init__()
        self.blob = blob
        self.block_size = block_size or BLOCK
        self.buffer = bytearray()
        self.blocks: list[BlobBlock] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.buffer += data
        self.size += len(data)
        while len(self.buffer) >= self.block_size:
            self._stage(bytes(self.buffer[:self.block_size]))
            del self.buffer[:self.block_size]
        return len(data)

    def _stage(self, data: bytes) -> None:
        block_id = base64.b64encode(b"%010d" % len(self.blocks)).decode()
        self.blob.stage_block(block_id, data)
        self.blocks.append(BlobBlock(block_id))

    def commit(self, content_type: str) -> None:
        if self.buffer:
            self._stage(bytes(self.buffer))
            self.buffer.clear()
        self.blob.commit_block_list(self.blocks, content_settings=ContentSettings(content_type=content_type))


class BlobPrintFiles:
    def __init__(self, service: BlobServiceClient) -> None:
        self.container = container(service, CONTAINER)

    def get(self, tenant: str, day: date, name: str) -> bytes | None:
        try:
            return self.container.download_blob(blob_name(tenant, day, name)).readall()
        except ResourceNotFoundError:
            return None

    def put(self, tenant: str, day: date, name: str, data: bytes, content_type: str) -> None:
        self.container.upload_blob(blob_name(tenant, day, name), data, overwrite=True,
                                   content_settings=ContentSettings(content_type=content_type))

    @contextmanager
    def open(self, tenant: str, day: date, name: str, content_type: str) -> Iterator[BinaryIO]:
        writer = BlockWriter(self.container.get_blob_client(blob_name(tenant, day, name)))
        yield cast(BinaryIO, writer)
        writer.commit(content_type)  # reached only when the block raised nothing
