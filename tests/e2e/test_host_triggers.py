"""The local host's blob trigger: once per blob version, retried, then poisoned."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite
from devhost.host import MAX_DEQUEUE, LocalHost, route_pattern
from shared.clock import SettableClock
from tests.e2e import blob_app


def test_a_blob_is_handed_to_its_function_once_and_again_only_when_it_changes(azurite: Azurite) -> None:
    host = LocalHost(SettableClock(), azurite.connection_string, app_module="tests.e2e.blob_app")
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        "probe-inbound")
    container.upload_blob("bank/file1.txt", b"hello", overwrite=True)
    host.drain()
    host.drain()
    assert blob_app.seen.count(("probe-inbound/bank/file1.txt", b"hello")) == 1
    container.upload_blob("bank/file1.txt", b"changed", overwrite=True)
    host.drain()
    assert ("probe-inbound/bank/file1.txt", b"changed") in blob_app.seen


def test_a_blob_that_keeps_failing_goes_to_the_poison_queue(azurite: Azurite) -> None:
    host = LocalHost(SettableClock(), azurite.connection_string, app_module="tests.e2e.blob_app")
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        "probe-inbound")
    container.upload_blob("bad.txt", b"FAIL please", overwrite=True)
    for _ in range(MAX_DEQUEUE + 2):
        host.poll_blobs()
    poison = QueueClient.from_connection_string(azurite.connection_string, "webjobs-blobtrigger-poison")
    assert any("bad.txt" in m.content for m in poison.peek_messages(max_messages=32))


def test_route_templates_match_like_the_functions_host() -> None:
    assert route_pattern("merchant/subscribers/{subscriber_no}").match("merchant/subscribers/1001")
    assert not route_pattern("merchant/subscribers/{subscriber_no}").match("merchant/subscribers/1/x")
    assert route_pattern("files/{*rest}").match("files/a/b/c").group("rest") == "a/b/c"  # type: ignore[union-attr]
