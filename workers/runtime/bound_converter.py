"""The data converter bound to each payload's workflow, cheaply.

The SDK binds the worker's converter to the workflow (or activity) of every payload it
converts, and clones it to do so with `dataclasses.replace`, which runs `__post_init__`:
a new pydantic payload converter, with an empty type-adapter cache, each time. Here only
the encryption codec takes the context (it binds the workflow id into the ciphertext), so
the converter bound to a workflow is built once, as a shallow copy with the bound codec, and
kept by the workflow id it binds (9% of a simulated month's CPU went to the rebuilds, in a
cProfile, and a worker binds some 20 payloads a workflow task)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Self

from temporalio.converter import DataConverter, SerializationContext, WithSerializationContext

from workers.runtime.codec import EncryptionCodec

CONTEXT_PARTS = ("payload_converter", "payload_codec", "failure_converter", "external_storage")
KEPT = 10_000  # converters kept, one a workflow: more than a worker caches


@dataclasses.dataclass(frozen=True)
class BoundDataConverter(DataConverter):
    _bound: dict[str, Any] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def with_context(self, context: SerializationContext) -> Self:
        parts: dict[str, Any] = {name: getattr(self, name) for name in CONTEXT_PARTS}
        bound = {
            name: part.with_context(context) if isinstance(part, WithSerializationContext) else part
            for name, part in parts.items()
        }
        changed = {name for name in CONTEXT_PARTS if bound[name] is not parts[name]}
        if not changed:
            return self
        codec = bound["payload_codec"]
        if changed != {"payload_codec"} or not isinstance(codec, EncryptionCodec):
            return self._cloned(bound, changed)
        kept: Self | None = self._bound.get(codec.binding)
        if kept is None:
            if len(self._bound) >= KEPT:
                self._bound.clear()
            kept = self._bound[codec.binding] = self._cloned(bound, changed)
        return kept

    def _cloned(self, bound: dict[str, Any], changed: set[str]) -> Self:
        cloned = copy.copy(self)
        for name in changed:
            object.__setattr__(cloned, name, bound[name])
        return cloned
