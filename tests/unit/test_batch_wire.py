"""``batch.submit`` sends what ``TableClient.submit_transaction`` sends, byte for byte, and
answers what it answers (issue 13: the SDK's per-operation machinery was most of the
client CPU of a bucketed invoice run). The SDK is the oracle: both run against a transport
that records the request and replies with a canned answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http.client import HTTPResponse
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.pipeline.transport import HttpTransport
from azure.core.pipeline.transport._base import HttpClientTransportResponse
from azure.core.utils._pipeline_transport_rest_shared import BytesIOSocket
from azure.data.tables import EdmType, TableClient, TableTransactionError
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters import batch

ACCOUNT = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1"
           "OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:1/devstoreaccount1;")


class Canned(HttpTransport):
    """Records each request; replies with ``reply(request)`` (raw HTTP bytes) or raises ``Sent``."""

    def __init__(self, reply: Any = None) -> None:
        self.sent: list[Any] = []
        self.reply = reply

    def __enter__(self) -> Canned:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request: Any, **_: Any) -> Any:
        self.sent.append(request)
        if self.reply is None:
            raise Sent
        raw = HTTPResponse(BytesIOSocket(self.reply(request)), method="POST")  # type: ignore[arg-type]
        raw.begin()
        return HttpClientTransportResponse(request, raw)


class Sent(Exception):
    pass


def client(transport: Canned) -> TableClient:
    return TableClient.from_connection_string(ACCOUNT, "Subscribers", transport=transport,
                                              retry_total=0)


KEY = st.one_of(st.from_regex(r"[a-z0-9|._~-]{1,30}", fullmatch=True),  # keys as we write them
                st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20))
VALUE = st.one_of(st.text(max_size=40), st.integers(-(2**31), 2**31 - 1), st.booleans(), st.none(),
                  st.floats(allow_nan=False, allow_infinity=False),
                  st.integers(-(2**63), 2**63 - 1).map(lambda v: (v, EdmType.INT64)),
                  st.datetimes(min_value=datetime(1601, 1, 2), timezones=st.just(UTC)))
ENTITY = st.dictionaries(st.from_regex(r"[A-Z][A-Za-z]{0,8}", fullmatch=True), VALUE, max_size=5)
ETAG = st.from_regex(r"W/\"datetime'20[0-9]{2}-01-01T00%3A00%3A00\.[0-9]{1,7}Z'\"", fullmatch=True)
OPTIONS = st.one_of(
    st.tuples(st.just("create"), st.just({})),
    st.tuples(st.just("upsert"), st.sampled_from([{}, {"mode": "merge"}, {"mode": "replace"}])),
    st.tuples(st.just("update"), st.sampled_from([{}, {"mode": "merge"}, {"mode": "replace"}])),
    st.tuples(st.just("update"), st.builds(lambda e, m: {"mode": m, "etag": e,
                                                          "match_condition": MatchConditions.IfNotModified},
                                           ETAG, st.sampled_from(["merge", "replace"]))),
    st.tuples(st.just("delete"), st.just({})),
    st.tuples(st.just("delete"), ETAG.map(lambda e: {"etag": e, "match_condition": MatchConditions.IfNotModified})))


@st.composite
def transactions(draw: Any) -> list[tuple[Any, ...]]:
    pk = draw(KEY)
    keys = draw(st.lists(KEY, min_size=1, max_size=8, unique=True))
    ops: list[tuple[Any, ...]] = []
    for rk in keys:
        kind, options = draw(OPTIONS)
        entity = {"PartitionKey": pk, "RowKey": rk, **(draw(ENTITY) if kind != "delete" else {})}
        ops.append((kind, entity, options) if options or draw(st.booleans()) else (kind, entity))
    return ops


def sdk_body(ops: list[tuple[Any, ...]]) -> bytes:
    transport = Canned()
    with pytest.raises(Sent):
        client(transport).submit_transaction(ops)
    return bytes(transport.sent[0].body)


@settings(max_examples=150, deadline=None)
@given(transactions())
def test_the_body_is_the_sdks_byte_for_byte(ops: list[tuple[Any, ...]]) -> None:
    sdk = sdk_body(ops)
    outer = re.search(rb"--(batch_[0-9a-f-]+)", sdk)
    inner = re.search(rb"(changeset_[0-9a-f-]+)", sdk)
    assert outer and inner
    mine = batch.encode(client(Canned()), ops, inner.group(1).decode(), outer.group(1).decode(),
                        "Mon, 30 Nov 2026 09:00:00 GMT")
    # the SDK stamps each operation with the clock as it serialises it (a second may turn
    # between two); the stamp is the only thing that may differ
    assert dated(mine) == dated(sdk)


def dated(body: bytes) -> bytes:
    return re.sub(rb"\r\n(x-ms-date|Date): [^\r]+", rb"\r\n\1: Mon, 30 Nov 2026 09:00:00 GMT", body)


def test_the_request_is_the_sdks_but_for_its_boundaries_and_ids() -> None:
    ops: list[Any] = [("create", {"PartitionKey": "p", "RowKey": "a", "Body": "x"}),
                      ("delete", {"PartitionKey": "p", "RowKey": "b"})]
    theirs, mine = Canned(), Canned()
    with pytest.raises(Sent):
        client(theirs).submit_transaction(ops)
    with pytest.raises(Sent):
        batch.submit(client(mine), ops)
    varying = {"x-ms-client-request-id", "content-type", "authorization", "content-length", "x-ms-date", "date"}
    a, b = theirs.sent[0], mine.sent[0]
    assert (a.method, a.url) == (b.method, b.url)
    assert {k.lower(): v for k, v in a.headers.items() if k.lower() not in varying} == \
           {k.lower(): v for k, v in b.headers.items() if k.lower() not in varying}
    assert a.headers["Content-Type"].split(";")[0] == b.headers["Content-Type"].split(";")[0] == "multipart/mixed"


def reply(parts: list[tuple[int, str, str]], changeset: bool = True) -> Any:
    """A ``$batch`` reply: each part (status, headers, body) as Azure writes it."""
    def build(_request: Any) -> bytes:
        http = [f"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"HTTP/1.1 {status} X\r\n{headers}\r\n{body}\r\n" for status, headers, body in parts]
        inner = "".join(f"--changesetresponse_c\r\n{p}" for p in http) + "--changesetresponse_c--\r\n"
        payload = (f"--batchresponse_b\r\nContent-Type: multipart/mixed; boundary=changesetresponse_c\r\n\r\n{inner}"
                   if changeset else "".join(f"--batchresponse_b\r\n{p}" for p in http)) + "--batchresponse_b--\r\n"
        data = payload.encode()
        return (b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=batchresponse_b\r\n"
                b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    return build


OPS: list[Any] = [("update", {"PartitionKey": "p", "RowKey": "a"},
                   {"mode": "replace", "etag": 'W/"1"', "match_condition": MatchConditions.IfNotModified}),
                  ("create", {"PartitionKey": "p", "RowKey": "b", "Body": "x"}),
                  ("delete", {"PartitionKey": "p", "RowKey": "c"})]
ERROR = ('Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n',
         '{"odata.error":{"code":"%s","message":{"lang":"en-US","value":"%s:The condition.\\nRequestId:x"}}}')


@pytest.mark.parametrize("parts,changeset", [
    ([(204, 'ETag: W/"2"\r\n', ""), (201, 'ETag: W/"3"\r\nContent-Type: application/json\r\n',
                                      '{"HTTP/1.1 500 x": 1}'), (204, "", "")], True),
    ([(412, ERROR[0], ERROR[1] % ("UpdateConditionNotSatisfied", 0))], True),
    ([(409, ERROR[0], ERROR[1] % ("EntityAlreadyExists", 1))], True),
    ([(409, ERROR[0], ERROR[1] % ("EntityAlreadyExists", 1))], False),
    ([(400, ERROR[0], ERROR[1] % ("InvalidInput", 2))], True),
])
def test_the_answer_is_the_sdks(parts: list[tuple[int, str, str]], changeset: bool) -> None:
    """Success (each ETag), a refused operation (its code and index), an unreadable reply."""
    def outcome(call: Any) -> Any:
        try:
            return [dict(r) for r in call(client(Canned(reply(parts, changeset))), OPS)]
        except Exception as exc:  # compared below
            return (type(exc), getattr(exc, "error_code", None), getattr(exc, "index", None),
                    getattr(exc, "status_code", None), str(exc))
    theirs = outcome(lambda c, ops: c.submit_transaction(ops))
    mine = outcome(batch.submit)
    assert mine == theirs
    assert not isinstance(theirs, tuple) or theirs[0] is TableTransactionError


def raw_reply(head: bytes, payload: bytes) -> Any:
    return lambda _request: head + b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload


OK = (204, 'ETag: W/"2"\r\n', "")


@pytest.mark.parametrize("answer", [
    reply([]),  # a 202 answering no operation
    reply([OK]),  # one of three
    reply([OK, OK]),
    reply([OK, OK, OK, OK]),  # more than were sent
    reply([OK, OK, OK], changeset=False),  # parts, but not of the changeset sent... still three: see below
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: text/plain\r\n", b"ok"),
    raw_reply(b"HTTP/1.1 202 Accepted\r\n", b""),  # no Content-Type at all
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n"),  # cut short
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n", b"{}"),
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=\xc3\xa9\r\n", b""),
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=b\r\n",  # a garbled status line
              b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 xx Bad\r\n\r\n\r\n--c--\r\n--b--\r\n"),
    raw_reply(b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=b\r\n",  # an empty part
              b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\n\r\n--c--\r\n--b--\r\n"),
    reply([(412, "Content-Type: application/json\r\n", '{"odata.error": 5}')]),  # a refusal we cannot read
])
def test_a_reply_that_does_not_answer_every_operation_is_never_a_success(answer: Any) -> None:
    """A 202 whose parts do not answer each operation sent (none, fewer, more, no multipart,
    no Content-Type) or cannot be read (a garbled status line, an empty part, a refusal whose
    error body is not the service's): whether the transaction committed is unknown, so it is
    never reported as committed (the SDK returns the parts it found, or raises whatever
    ``http.client`` or its decoding raised: a ``UnicodeEncodeError`` became a 400 at the HTTP
    boundary, a ``TypeError`` a 500). It is raised as a reply that could not be read
    (``ServiceResponseError``): ``Storage`` sends it again, and a guarded transaction that
    did commit then conflicts, so the caller reloads and finds its work."""
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    try:
        answered = batch.submit(client(Canned(answer)), OPS)
    except ServiceResponseError:
        return
    except HttpResponseError as refused:  # a refusal of an operation (a conflict, a bad value): nothing committed
        assert refused.status_code is not None and 400 <= refused.status_code < 500
        return
    assert len(answered) == len(OPS)  # only the changeset=False shape with three 2xx parts may pass


@pytest.mark.parametrize("status", [400, 404, 409, 413, 500, 503])
@pytest.mark.parametrize("body", [b'{"odata.error": 5}', b"\xff\xfe", b"[1]", b"",
                                  b'{"odata.error":{"code":7,"message":null}}'])
def test_a_refused_batch_whose_error_cannot_be_read_is_still_the_services_refusal(status: int, body: bytes) -> None:
    """A non-202 reply with an error body that is not the service's JSON: the SDK's decoding
    raised ``TypeError`` (a 500 at the HTTP boundary) or ``UnicodeDecodeError`` (a 400 there:
    the caller blamed for storage's reply). It is an ``HttpResponseError`` with the reply's
    status, as an unreadable refusal is."""
    from azure.core.exceptions import HttpResponseError

    answer = raw_reply(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status, body)
    with pytest.raises(HttpResponseError) as refused:
        batch.submit(client(Canned(answer)), OPS)
    assert refused.value.status_code == status


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([200, 201, 204, 400, 404, 409, 412, 413, 500, 503]),
                          st.sampled_from(["", 'ETag: W/"9"\r\n']),
                          st.sampled_from(["", "{}", "not json", ERROR[1] % ("UpdateConditionNotSatisfied", 0),
                                           '{"odata.error": 5}', "HTTP/1.1 204 X"])),
                max_size=5),
       st.booleans())
def test_any_reply_is_a_success_only_when_each_operation_succeeded_and_never_a_stray_exception(
        parts: list[tuple[int, str, str]], changeset: bool) -> None:
    """Fault injection over reply shapes: ``submit`` answers only when every operation sent
    has a 2xx part; otherwise it raises one of the Azure exceptions ``Storage`` and the HTTP
    boundary map (a refusal, or ``ServiceResponseError``: unknown), never ``TypeError``,
    ``http.client``'s or a codec's."""
    from azure.core.exceptions import AzureError

    try:
        answered = batch.submit(client(Canned(reply(parts, changeset))), OPS)
    except AzureError:
        return
    assert len(parts) == len(OPS) == len(answered) and all(200 <= s < 300 for s, _, _ in parts)
