"""JSON encoding of domain values for storage and messages (pydantic TypeAdapters).

The domain is plain dataclasses; pydantic validates and serialises them at the edge,
so a stored entity that no longer parses fails loudly instead of half-loading.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def dumps(value: Any, kind: Any | None = None) -> str:
    return _adapter(kind or type(value)).dump_json(value).decode()


def loads(kind: type[T], text: str | bytes) -> T:
    result: T = _adapter(kind).validate_json(text)
    return result


def to_jsonable(value: Any, kind: Any | None = None) -> Any:
    return _adapter(kind or type(value)).dump_python(value, mode="json")
