"""Payload encryption: an AES-256-GCM PayloadCodec with a keyring, so everything carebridge
puts in Temporal (inputs, results, signals, updates, queries, activity payloads, failure
messages) is ciphertext there. The key id travels in the payload metadata: payloads decrypt
with any known key and are encrypted with the current one, so keys rotate under running
30-day transitions.

A payload is bound to the workflow it belongs to: its workflow id (opaque, no PHI) is
authenticated data of the cipher and written in its metadata, so it decrypts only as
written, and a decoder that knows its workflow refuses a payload moved from another one (the
codec server, which is not told the workflow, reads the binding from the metadata). The
namespace is left out: a Replayer decodes production histories under its own namespace.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
BOUND_TO = "carebridge-bound-to"  # the workflow id, authenticated with the data
NONCE_BYTES = 12
PRIVATE_MODE = 0o600


class KeyringError(ValueError):
    """No usable key, or a malformed one; the message says how to fix it."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"the current key {self.current!r} is not among the keys")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32")

    @classmethod
    def parse(cls, spec: str, current: str | None) -> Keyring:
        """`id:base64key,id2:base64key`; the current key defaults to the last one."""
        keys = {}
        for item in (part.strip() for part in spec.split(",") if part.strip()):
            key_id, _, encoded = item.partition(":")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise KeyringError(f"key {key_id!r} is not valid base64") from exc
        if not keys:
            raise KeyringError("no keys given")
        return cls(keys=keys, current=current or list(keys)[-1])

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """Read a keyring file; one that others can read is refused (its keys decrypt every
        patient's data)."""
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyringError(
                f"{path} is readable by others (mode {mode:o}): chmod 600 it before use"
            )
        data = json.loads(path.read_text())
        return cls(
            keys={k: base64.b64decode(v) for k, v in data["keys"].items()},
            current=data["current"],
        )

    def save(self, path: Path) -> None:
        """Write with 0600 permissions (the file is created private, never widened)."""
        body = json.dumps(
            {
                "current": self.current,
                "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            },
            indent=2,
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(body)

    @classmethod
    def generate(cls, key_id: str = "dev-1") -> Keyring:
        return cls(keys={key_id: AESGCM.generate_key(bit_length=256)}, current=key_id)


class PlaintextPayloadError(ValueError):
    """An unencrypted payload where only encrypted ones are accepted (production)."""


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    def __init__(
        self, keyring: Keyring, *, accept_plaintext: bool = True, binding: str = ""
    ) -> None:
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}
        self._accept_plaintext = accept_plaintext
        self._binding = binding  # the context's workflow id, "" when unknown

    @property
    def binding(self) -> str:
        return self._binding

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        """The same codec bound to the workflow the payloads belong to (the SDK calls this)."""
        binding = ""
        known = isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
        if known and context.workflow_id:  # type: ignore[attr-defined]
            binding = str(context.workflow_id)  # type: ignore[attr-defined]
        if binding == self._binding:
            return self
        codec = copy.copy(self)  # the keyring's ciphers shared, not built again
        codec._binding = binding
        return codec

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._keyring.current
        cipher = self._ciphers[key_id]
        metadata = {"encoding": ENCODING, KEY_ID: key_id.encode()}
        if self._binding:
            metadata[BOUND_TO] = self._binding.encode()
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), _aad(key_id, self._binding))
            out.append(Payload(metadata=metadata, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if not self._accept_plaintext:
                raise PlaintextPayloadError("an unencrypted payload: refused in production")
            return payload  # written before encryption was on: read as is
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyringError(f"payload encrypted with unknown key {key_id!r}")
        bound_to = payload.metadata.get(BOUND_TO, b"").decode()
        if bound_to and self._binding and not self._binding.startswith(bound_to):
            # A schedule encodes with its id prefix; the workflow it starts has that prefix.
            raise KeyringError("payload belongs to another workflow")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        return Payload.FromString(cipher.decrypt(nonce, sealed, _aad(key_id, bound_to)))


def _aad(key_id: str, binding: str) -> bytes:
    """Authenticated data: the key id, and the workflow binding when there is one (payloads
    written before binding have the key id alone, and still decrypt)."""
    return f"{key_id}\x1f{binding}".encode() if binding else key_id.encode()
