"""Bounded types for everything that crosses the HTTP boundary (issue 8, part 6).

Every body model, route parameter and query parameter of the merchant, customer-service
and sales-poster APIs is built from these types, so a value the system cannot store or
bill is refused with 400/422 before any use case runs:

* ids and references travel into Table Storage keys: a safe alphabet and a length, so
  ``/ \\ # ?`` and control characters never reach a key;
* amounts are integer minor units within business limits (far inside Int64);
* dates lie in a window billing can compute with (2000-01-01 .. 2100-12-31);
* time zones are IANA names zoneinfo knows; VAT 0-100 %; lead days 0-366;
* every string and list has a length limit.

The raw body is limited before it is parsed (``MAX_BODY`` -> 413, ``MAX_DEPTH`` -> 400), so
a huge or deeply nested document never reaches the JSON parser's recursion.
The domain checks the catalogue again in its constructors (defence in depth).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import zoneinfo
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    create_model,
)

from shared.domain.limits import FIRST_DAY, LAST_DAY, MAX_LEAD_DAYS, MAX_MINOR

MAX_BODY = 256 * 1024  # bytes; a catalogue item or an order is a few KiB
MAX_DEPTH = 16  # nesting of JSON objects and arrays; our deepest body needs 4
BUYER_REFERENCE_MAX = 200  # EHF BuyerReference has no limit of its own; an order reference is short
MAX_NUMBER = 10**9  # subscriber, invoice and demand numbers (keys format them with 8-10 digits)
SAFE = r"^[A-Za-z0-9._-]+$"
DOCUMENT_ID = r"^(?:(?:inv|rem)-[0-9]{8,10}|(?:crn|stp)-[0-9]{10})$"  # the ids of shared.domain.documents
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # no control characters (tab and newlines are text)


class Body(BaseModel):
    """A request body: a field the model does not name is refused, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class BodyTooLarge(ValueError):
    """The body is longer than ``MAX_BODY``: answered 413."""


class UnsupportedMedia(ValueError):
    """A raw body of a media type the endpoint does not take: answered 415."""


def _in_window(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be a date from {FIRST_DAY} to {LAST_DAY}")
    return day


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _digits(value: Any) -> Any:
    """A number in a path or query is plain ASCII digits: no sign, space, '_' or other numerals."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


def _zone(name: str) -> str:
    if name not in _zones():
        raise ValueError("must be an IANA time zone such as Europe/Oslo")
    return name


Id = Annotated[str, StringConstraints(pattern=SAFE, min_length=1, max_length=64),
               Field(description="1-64 of A-Z a-z 0-9 . _ -")]
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]+$", min_length=1, max_length=200),
                Field(description="1-200 of A-Z a-z 0-9 . _ : -")]
Kid = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,25}-?$", min_length=2, max_length=25),
                Field(description="a KID: digits, a MOD11 one may end in '-'")]
Number = Annotated[int, Field(ge=1, le=MAX_NUMBER)]
MinorAmount = Annotated[int, Field(ge=0, le=MAX_MINOR, description="integer minor units (øre, öre, cent)")]
PositiveMinor = Annotated[int, Field(ge=1, le=MAX_MINOR, description="integer minor units (øre, öre, cent)")]
SignedMinor = Annotated[int, Field(ge=-MAX_MINOR, le=MAX_MINOR, description="integer minor units, signed")]
VatBp = Annotated[int, Field(ge=0, le=10000, description="VAT rate in basis points: 2500 is 25 %")]
LeadDays = Annotated[int, Field(ge=0, le=MAX_LEAD_DAYS)]
Days = Annotated[int, Field(ge=0, le=MAX_LEAD_DAYS)]
Quantity = Annotated[int, Field(ge=1, le=10000)]
Day = Annotated[date, AfterValidator(_in_window), Field(description=f"a date from {FIRST_DAY} to {LAST_DAY}")]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_zone),
                     Field(description="IANA time zone, e.g. Europe/Oslo")]


def text(max_length: int, min_length: int = 0) -> Any:
    """A free text of at most ``max_length`` characters without control characters."""
    return Annotated[str, StringConstraints(pattern=PRINTABLE, min_length=min_length, max_length=max_length)]


Name = text(200, 1)
Code = text(64, 1)
Reason = text(500, 1)
Note = text(500)

# Route and query parameters are validated by name, the same way everywhere; a route
# parameter not named here is an ``Id``.
PARAMETERS: dict[str, Any] = {
    "subscriber_no": Annotated[Number, BeforeValidator(_digits)],
    "invoice_number": Annotated[Number, BeforeValidator(_digits)],
    "kid": Kid,
    "payment_id": Ref,
    "report_id": Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]+$", min_length=1, max_length=200)],
    "from": Day,
    "to": Day,
    "q": text(200, 1),
    "sweep": Literal["true", "false", "1", "0", "yes", "no"],
    "source": Id,
    "idempotency-key": Ref,
    "ref": text(300, 1),
    "document_id": Annotated[str, StringConstraints(pattern=DOCUMENT_ID, min_length=12, max_length=14),
                             Field(description="inv-NNNNNNNN, rem-NNNNNNNN (demand numbers), crn-NNNNNNNNNN, "
                                               "stp-NNNNNNNNNN (invoice numbers)")],
}
NUMBER_OR_ZERO = Annotated[Annotated[int, Field(ge=0, le=MAX_NUMBER)], BeforeValidator(_digits)]  # 0: a whole run


@cache
def adapter(name: str, override: Any = None) -> TypeAdapter[Any]:
    return TypeAdapter(override if override is not None else PARAMETERS.get(name, Id))


def parameter(name: str, raw: str, override: Any = None) -> Any:
    """A route or query parameter checked by its name's type, or the endpoint's own type
    for it (raises ValidationError)."""
    return adapter(name, override).validate_strings(raw)


def parameter_schema(name: str, override: Any = None) -> dict[str, Any]:
    return adapter(name, override).json_schema()


def parse_json(raw: bytes) -> Any:
    """JSON within the size and depth limits; NaN and Infinity are not JSON numbers."""
    if len(raw) > MAX_BODY:
        raise BodyTooLarge(f"the body is larger than {MAX_BODY // 1024} KiB")
    if depth(raw) > MAX_DEPTH:
        raise ValueError(f"the body nests objects or arrays deeper than {MAX_DEPTH}")
    return json.loads(raw, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, without parsing."""
    deepest = level = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            level += 1
            deepest = max(deepest, level)
        elif byte in (0x5D, 0x7D):
            level -= 1
    return deepest


# ---- domain records as bounded input models ---------------------------------------------------
# A catalogue item's body is its domain dataclass with every field bounded by the field's
# name and type, derived here rather than written twice, so a field added to the domain is
# bounded at the boundary the day it is added.

def _by_name(name: str, kind: Any) -> Any:
    if kind is int:
        if name.endswith("_minor"):
            return MinorAmount
        if "days" in name:
            return Days
        if name.endswith("_bp"):
            return VatBp
        return Annotated[int, Field(ge=0, le=MAX_MINOR)]
    if kind is str:
        if name == "id" or name.endswith(("_id", "_ids", "_series")):
            return Id
        if name == "time_zone":
            return TimeZone
        if name == "name":
            return Name
        return text(2000 if name == "description" else 200)
    if kind is date:
        return Day
    return None


def _bounded_type(name: str, kind: Any) -> Any:
    simple = _by_name(name, kind)
    if simple is not None:
        return simple
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return bounded(kind)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return typing.Union[tuple(_bounded_type(name, a) for a in args)]  # noqa: UP007
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Annotated[list[_bounded_type(name, args[0])], Field(max_length=200)]  # type: ignore[misc]
    return kind  # bool, enums, literals: exact already


_MODELS: dict[type[Any], type[BaseModel]] = {}


def bounded(cls: type[Any]) -> type[BaseModel]:
    """A pydantic model of the dataclass ``cls`` with bounds for every field (see ``_by_name``);
    one per class, made on first use (a typed memo: ``functools.cache``'s wrapper takes only
    what mypy counts as ``Hashable``, which a ``type[...]`` is not)."""
    model = _MODELS.get(cls)
    return model if model is not None else _MODELS.setdefault(cls, _model_of(cls))


def _model_of(cls: type[Any]) -> type[BaseModel]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        if f.name == "id":  # a record's id is its route parameter: optional in the body, equal if given
            default = None
        fields[f.name] = (_bounded_type(f.name, hints[f.name]) | None if f.name == "id" else
                          _bounded_type(f.name, hints[f.name]), default)
    config = ConfigDict(extra="forbid")
    return create_model(f"{cls.__name__}In", __config__=config, **fields)


def to_domain(cls: type[Any], model: BaseModel, record_id: str) -> Any:
    """The domain record ``record_id`` of a bounded model (its constructor checks the values again)."""
    data = model.model_dump(warnings=False)  # unset fields hold the domain's own defaults
    if data.get("id") not in (None, record_id):
        raise ValueError("the body's id differs from the id in the path")
    return TypeAdapter(cls).validate_python(data | {"id": record_id})
