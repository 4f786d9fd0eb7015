"""Reading fields of the SDK's response objects cheaply."""

from __future__ import annotations

from typing import Any


def field(obj: Any, name: str) -> Any:
    """`obj.name` or None. SDK objects are pydantic models, whose fields live in `__dict__`: reading it
    there avoids the exception (~2 µs) that a `getattr` default costs for an absent field."""
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        return fields.get(name)
    return getattr(obj, name, None)
