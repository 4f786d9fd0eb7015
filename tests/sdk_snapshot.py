"""The openai SDK's resource classes as they were: some instrumentations leave a wrapper behind when uninstrumented
(OpenLLMetry 0.62.4 keeps its `Completions.create` layer), which must not reach later tests."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Iterator

from llmledger.wrapper.peers import PATCH_POINTS


@contextlib.contextmanager
def openai_sdk_restored() -> Iterator[None]:
    """Put back every method of the openai SDK's classes on exit, as it was on entry (the modules instrumentations
    patch are imported first: one imported later, inside the block, would keep its wrapper)."""
    for module_name, _class, _method in PATCH_POINTS:
        importlib.import_module(module_name)
    saved = [
        (cls, dict(cls.__dict__))
        for name, module in list(sys.modules.items())
        if name == "openai" or name.startswith("openai.")
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__.startswith("openai")
    ]
    try:
        yield
    finally:
        for cls, attributes in saved:
            for attribute, value in attributes.items():
                if callable(value) and cls.__dict__.get(attribute) is not value:
                    setattr(cls, attribute, value)
