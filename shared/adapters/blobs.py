"""Blob containers: each adapter's container, created private on first use.

Every container Abonno writes (``documents``, ``branding``, ``print``, ``ehf-outbox``,
``notices``, the bank files' ``rejected`` and ``quarantine``) is private: no public access
level, read only with the account's key or a signed link (``document_files``).
"""

from __future__ import annotations

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient


def container(service: BlobServiceClient, name: str) -> ContainerClient:
    """The container ``name``, created (private) if it is not there yet."""
    client = service.get_container_client(name)
    try:
        client.create_container()  # no public access level: private
    except ResourceExistsError:
        pass
    return client
