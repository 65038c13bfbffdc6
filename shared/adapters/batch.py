"""Entity-group transactions written and read on the wire, without the SDK's per-operation work.

``TableClient.submit_transaction`` builds an ``HttpRequest`` per operation, runs header
policies on each in a fresh thread pool, serialises each through ``http.client`` and the
``email`` generator, deep-copies the lot, and parses the response with the ``email``
parser and ``http.client`` again, part by part: about 5 ms of client CPU for a transaction
of 50 operations, most of what a bucketed invoice run costs (issue 13). Here the multipart
body is one string built from the same pieces (the SDK's entity encoding
``_add_entity_properties``, its JSON encoder, its key escaping and URLs, the headers each
operation carries: ``tests/unit/test_batch_wire.py`` holds it byte for byte to what the SDK
sends) and goes through the client's own pipeline (signing, retries, transport); a reply
whose every part succeeded is read with a few splits. Anything else (a refused operation,
a non-202 reply, a reply we cannot read) is decoded by the SDK's own error decoding, so the
exceptions, codes and indexes are the SDK's; but a 202 whose parts do not answer every
operation sent (the SDK returns the parts it found) or cannot be read (the SDK raises what
``http.client`` raised) raises ``ServiceResponseError``: whether
it committed is unknown, as after a cut connection, and ``Storage.transact`` treats it so.
An operation of a shape not handled here (an unknown kind or option) sends the whole
transaction through the SDK.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from email import message_from_bytes
from email.utils import formatdate
from http.client import HTTPResponse
from typing import Any, cast
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ServiceResponseError
from azure.core.rest import HttpRequest, HttpResponse
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse as _Part
from azure.core.serialization import AzureJSONEncoder
from azure.core.utils._pipeline_transport_rest_shared import BytesIOSocket as _Socket
from azure.data.tables import TableClient, TableTransactionError, UpdateMode
from azure.data.tables._error import RequestTooLargeError
from azure.data.tables._error import _decode_error as _sdk_decode_error
from azure.data.tables._error import _validate_tablename_error as _sdk_validate
from azure.data.tables._serialize import _add_entity_properties

# the SDK's own (untyped) pieces, used as they are
_decode_error: Any = _sdk_decode_error
_validate_tablename_error: Any = _sdk_validate
Part: Any = _Part
Socket: Any = _Socket

_PART_HEAD = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n"
_STATUS = re.compile(rb"HTTP/1\.1 (\d{3})")
_ETAG = re.compile(rb"\r\netag: *([^\r\n]*)", re.IGNORECASE)
_BOUNDARY = re.compile(rb"boundary=([^\s;\"]+)")


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.~|-]*")  # what ``quote(safe="")`` keeps, and the bar it writes %7C
_JSON = AzureJSONEncoder()  # what ``json.dumps(value, cls=AzureJSONEncoder)`` builds on each call


def _key(value: str) -> str:
    if _PLAIN_KEY.fullmatch(value):  # our keys: quote's answer without its per-character walk
        return value.replace("|", "%7C")
    return quote(value.replace("'", "''"), safe="")


def _body(entity: Mapping[str, Any]) -> str:
    return _JSON.encode(_add_entity_properties(entity))


def _request(i: int, base: str, table: str, version: str, date: str, operation: Sequence[Any]) -> str | None:
    """One operation as the SDK writes it into a changeset, or None for a shape not handled here."""
    kind, entity = operation[0], operation[1]
    options: Mapping[str, Any] = operation[2] if len(operation) > 2 else {}
    kind = kind.lower() if isinstance(kind, str) else kind
    etag, condition = options.get("etag"), options.get("match_condition")
    if kind == "create" and not options:
        method, url, body, accept, if_match = "POST", f"{base}/{table}", _body(entity), True, None
    else:
        if (set(options) - {"mode", "etag", "match_condition"} or not isinstance(entity.get("PartitionKey"), str)
                or not isinstance(entity.get("RowKey"), str)):
            return None
        url = f"{base}/{table}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
        if condition == MatchConditions.IfNotModified and etag:
            if_match = etag
        elif condition in (None, MatchConditions.Unconditionally) and not etag:
            if_match = "*"
        else:
            return None
        mode = options.get("mode", UpdateMode.MERGE)
        if kind == "delete" and "mode" not in options:
            method, body, accept = "DELETE", None, True
        elif kind in ("update", "upsert") and mode in (UpdateMode.MERGE, UpdateMode.REPLACE):
            if kind == "upsert":
                if etag or condition:
                    return None
                if_match = None
            method, body, accept = ("PUT" if mode == UpdateMode.REPLACE else "PATCH"), _body(entity), False
        else:
            return None
    lines = [f"{method} {url} HTTP/1.1"]
    encoded = None if body is None else body.encode()
    if encoded is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(encoded)}"]
    lines += [f"x-ms-version: {version}", "DataServiceVersion: 3.0",
              "Accept: application/json;odata=minimalmetadata" if accept else "Accept: application/json"]
    if if_match is not None:
        lines.append(f"If-Match: {if_match}")
    lines += [f"x-ms-date: {date}", f"Date: {date}", "", body or ""]
    return _PART_HEAD.format(i) + "\r\n".join(lines)


def encode(client: TableClient, operations: Sequence[Sequence[Any]], changeset: str, batch: str,
           date: str | None = None) -> bytes | None:
    """The ``$batch`` body the SDK would send for ``operations`` (None: a shape it must send)."""
    base = f"{client.scheme}://{client._primary_hostname}"
    version = client._client._config.version
    date = date or formatdate(usegmt=True)
    parts = []
    for i, operation in enumerate(operations):
        part = _request(i, base, client.table_name, version, date, operation)
        if part is None:
            return None
        parts.append(part)
    cs = f"--{changeset}\r\n"
    inner = cs + f"\r\n{cs}".join(parts) + f"\r\n--{changeset}--\r\n"
    text = (f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n{inner}"
            f"\r\n--{batch}--\r\n")
    return text.encode()


def submit(client: TableClient, operations: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """``client.submit_transaction(operations)``: the same request, reply and exceptions."""
    if not operations or client._cosmos_endpoint or getattr(client, "_query_str", ""):
        return _via_sdk(client, operations)
    _check_partition(operations)
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    body = encode(client, operations, changeset, batch)
    if body is None:
        return _via_sdk(client, operations)
    request = HttpRequest("POST", f"{client.scheme}://{client._primary_hostname}/$batch", content=body,
                          headers={"x-ms-version": client.api_version, "DataServiceVersion": "3.0",
                                   "MaxDataServiceVersion": "3.0;NetFx",
                                   "Content-Type": f"multipart/mixed; boundary={batch}",
                                   "Accept": "application/json"})
    response = client._client.send_request(request, stream=True)
    content: bytes = cast(Any, response).body()  # read whole (the SDK reads it whole too)
    if response.status_code == 413:
        raise _refusal(response, error_message="The transaction request was too large",
                       error_type=RequestTooLargeError)
    if response.status_code != 202:
        decoded = _refusal(response)
        _validate_tablename_error(decoded, client.table_name)
        raise decoded
    etags = _succeeded(content, len(operations))
    if etags is not None:
        return [{"etag": e} if e is not None else {} for e in etags]
    if "Content-Type" not in response.headers:
        raise ServiceResponseError("a $batch reply without a Content-Type: committed or not, unknown")
    try:
        answered = _read_slowly(response, content, client.table_name)
    except AzureError:
        raise  # the service's answer, decoded: a refused operation
    except Exception as exc:  # http.client, email or the SDK's decoding could not read it
        raise ServiceResponseError(f"a $batch reply that cannot be read ({type(exc).__name__}): "
                                   "committed or not, unknown") from exc
    if len(answered) != len(operations):  # the SDK returns what it found; committed or not is unknown
        raise ServiceResponseError(f"a $batch reply answering {len(answered)} of {len(operations)} operations")
    return answered


def _refusal(response: Any, **kwargs: Any) -> Exception:
    """The SDK's exception for a refused reply; one with the reply's status when the SDK's
    decoding fails on an error body that is not the service's (it raised ``TypeError`` or
    ``UnicodeDecodeError``, which the HTTP boundary took for a bug or a bad request)."""
    try:
        decoded: Exception = _decode_error(response=response, **kwargs)
    except Exception:
        decoded = HttpResponseError(message=f"a refusal ({response.status_code}) whose error cannot be read",
                                    response=response)
        decoded.error_code = None  # type: ignore[attr-defined]  # what the SDK's checks read
    return decoded


def _via_sdk(client: TableClient, operations: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in client.submit_transaction(cast(Any, list(operations)))]


def _check_partition(operations: Sequence[Sequence[Any]]) -> None:
    """What ``TableBatchOperations`` refuses before sending (``Storage.transact`` checks first)."""
    keys = set()
    for operation in operations:
        entity = operation[1]
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise ValueError("PartitionKey and/or RowKey were not provided in entity")
        keys.add(entity["PartitionKey"])
    if len(keys) > 1:
        raise ValueError("Partition Keys in the batch must all be the same.")


def _succeeded(content: bytes, count: int) -> list[str | None] | None:
    """Each operation's ETag when every part of the reply is a 2xx; None otherwise."""
    boundary = _BOUNDARY.search(content)
    if boundary is None:
        return None
    chunks = content.split(b"--" + boundary.group(1))
    etags: list[str | None] = []
    for chunk in chunks:
        status = _STATUS.search(chunk)
        if status is None:
            continue
        if not 200 <= int(status.group(1)) < 300:
            return None
        head = chunk[status.start():chunk.find(b"\r\n\r\n", status.start())]
        etag = _ETAG.search(head)
        etags.append(etag.group(1).decode() if etag else None)
    return etags if len(etags) == count else None


def _read_slowly(response: HttpResponse, content: bytes, table: str) -> list[dict[str, Any]]:
    """A reply with a refused part (or one not read above), read as the SDK's ``_batch_send``
    reads it: its exception, or (no part refused) each part's ETag."""
    message = message_from_bytes(b"Content-Type: " + response.headers["Content-Type"].encode("ascii")
                                 + b"\r\n\r\n" + content)
    parts: list[Any] = []
    stack = [message]
    while stack:
        node = stack.pop(0)
        if node.get_content_type() == "application/http":
            raw = HTTPResponse(Socket(node.get_payload(decode=True)), method="POST")
            raw.begin()
            parts.append(Part(request=response.request, internal_response=raw))
        elif node.is_multipart():
            stack[0:0] = cast(list[Any], node.get_payload())
    failed = [p for p in parts if not 200 <= p.status_code < 300]
    if not failed:
        return [{"etag": p.headers["Etag"]} if "Etag" in p.headers else {} for p in parts]
    if failed[0].status_code == 413:
        raise _refusal(response, error_message="The transaction request was too large",
                       error_type=RequestTooLargeError)
    decoded = _refusal(failed[0], error_type=TableTransactionError)
    _validate_tablename_error(decoded, table)
    raise decoded
