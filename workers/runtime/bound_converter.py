"""The data converter bound to each payload's workflow, cheaply.

The SDK binds the worker's converter to the workflow (or activity) of every payload it
converts, and clones it to do so with `dataclasses.replace`, which runs `__post_init__`:
a new pydantic payload converter, with an empty type-adapter cache, each time. Here only
the encryption codec takes the context (it binds the workflow id into the ciphertext), so
the clone is a shallow copy with the bound parts set: the same converter, without the
rebuild (9% of a simulated month's CPU went to the rebuilds, in a cProfile)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Self

from temporalio.converter import DataConverter, SerializationContext, WithSerializationContext

CONTEXT_PARTS = ("payload_converter", "payload_codec", "failure_converter", "external_storage")


@dataclasses.dataclass(frozen=True)
class BoundDataConverter(DataConverter):
    def with_context(self, context: SerializationContext) -> Self:
        parts: dict[str, Any] = {name: getattr(self, name) for name in CONTEXT_PARTS}
        bound = {
            name: part.with_context(context) if isinstance(part, WithSerializationContext) else part
            for name, part in parts.items()
        }
        if all(bound[name] is parts[name] for name in CONTEXT_PARTS):
            return self
        cloned = copy.copy(self)
        for name, part in bound.items():
            object.__setattr__(cloned, name, part)
        return cloned
