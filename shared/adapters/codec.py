"""JSON encoding of domain values for storage and messages (pydantic TypeAdapters).

The domain is plain dataclasses; pydantic validates and serialises them at the edge,
so a stored entity that no longer parses fails loudly instead of half-loading.

Events travel as an envelope, ``{"id", "type", "version", "payload"}``: in the outbox
row's ``Body`` and, without the id (it is the message id) and with the tenant, as a bus
message body. ``event_from`` reads one through ``events.REGISTRY``: an envelope without a
version (written before events had one) is version 1, and an older version's payload is
upgraded by its class before it is validated.

An open demand is one flat object (``demand_json``), as it was stored and shown before
``OpenDemand`` was split into its terms, what is open and its dunning state: the stored
``0|dem|`` rows and the overview keep their form, and rows written before still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter

from ..domain.demands import DemandTerms, DunningState, OpenDemand
from ..domain.events import REGISTRY, Event

T = TypeVar("T")


class UnknownEvent(ValueError):
    """An event of a type, or a version, this code does not know."""


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}  # built once per type: building one costs milliseconds


def _adapter(kind: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:  # two threads may both build one: either will do
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def dumps(value: Any, kind: Any | None = None) -> str:
    return _adapter(kind or type(value)).dump_json(value).decode()


def loads(kind: type[T], text: str | bytes) -> T:
    return cast(T, _adapter(kind).validate_json(text))


def to_jsonable(value: Any, kind: Any | None = None) -> Any:
    return _adapter(kind or type(value)).dump_python(value, mode="json")


def event_envelope(event: Event) -> dict[str, Any]:
    """``{"id", "type", "version", "payload"}``: the payload is the event's fields but the id."""
    data: dict[str, Any] = to_jsonable(event)
    del data["id"]
    wire = type(event).WIRE
    return {"id": event.id, "type": event.TYPE, "version": event.VERSION,
            "payload": {wire.get(name, name): value for name, value in data.items()}}


def event_from(envelope: Mapping[str, Any], registry: Mapping[str, type[Event]] = REGISTRY) -> Event:
    """The event an envelope carries, its payload upgraded to the current version."""
    cls = registry.get(envelope["type"])
    version = envelope.get("version", 1)  # rows and messages from before versions: version 1
    if cls is None or not isinstance(version, int) or version > cls.VERSION:
        raise UnknownEvent(f"event {envelope.get('id')!r}: no type {envelope['type']!r} version {version!r} here")
    payload = dict(envelope["payload"])
    if version < cls.VERSION:
        payload = cls.upgrade(version, payload)
    names = {key: name for name, key in cls.WIRE.items()}
    fields = {names.get(key, key): value for key, value in payload.items()}
    return cast(Event, _adapter(cls).validate_python({**fields, "id": envelope["id"]}))


def dump_event(event: Event) -> str:
    return json.dumps(event_envelope(event), separators=(",", ":"))


def load_event(text: str | bytes) -> Event:
    return event_from(json.loads(text))


_TERMS = tuple(DemandTerms.__dataclass_fields__)
_DUNNING = tuple(DunningState.__dataclass_fields__)


def demand_json(demand: OpenDemand) -> dict[str, Any]:
    """An open demand as one flat object: its terms, what is open and its dunning state."""
    data: dict[str, Any] = to_jsonable(demand)
    return {**data.pop("terms"), **data.pop("dunning"), **data}


def demand_from(data: Mapping[str, Any]) -> OpenDemand:
    """The open demand of a flat object (``demand_json``): a field it lacks has its default."""
    terms = {k: v for k, v in data.items() if k in _TERMS}
    dunning = {k: v for k, v in data.items() if k in _DUNNING}
    rest = {k: v for k, v in data.items() if k not in _TERMS and k not in _DUNNING}
    return cast(OpenDemand, _adapter(OpenDemand).validate_python({**rest, "terms": terms, "dunning": dunning}))


def dump_demand(demand: OpenDemand) -> str:
    return json.dumps(demand_json(demand), separators=(",", ":"))


def load_demand(text: str | bytes) -> OpenDemand:
    return demand_from(json.loads(text))
