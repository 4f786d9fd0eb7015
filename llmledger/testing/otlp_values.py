"""Python values as OTLP attribute values (for the sample-data generator, tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList


def any_value(value: Any) -> AnyValue:
    """bool, int, float, str, bytes, lists or tuples of those, and dicts (as key-value lists)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    raise TypeError(f"no OTLP attribute value for {type(value).__name__}")


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    """An attribute dict as OTLP key-values, in order."""
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]
