"""The payload codec: ciphertext with the key id in metadata, any known key decrypts, the
current key encrypts, plain payloads pass through, tampering and unknown keys fail loudly."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from temporalio.api.common.v1 import Payload

from workers.runtime.codec import ENCODING, KEY_ID, EncryptionCodec, Keyring, KeyringError
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings
from workers.runtime.temporal import keyring_for

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"mrn": "100234"}')


async def test_round_trip_hides_the_data_and_names_the_key() -> None:
    codec = EncryptionCodec(Keyring.generate("a"))
    [sealed] = await codec.encode([PLAIN])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"a"
    assert b"100234" not in sealed.data
    assert await codec.decode([sealed]) == [PLAIN]


async def test_rotation_old_payloads_still_decrypt_new_ones_use_the_current_key() -> None:
    old = Keyring.generate("a")
    new = Keyring(keys={**old.keys, "b": Keyring.generate("b").keys["b"]}, current="b")
    [under_a] = await EncryptionCodec(old).encode([PLAIN])
    rotated = EncryptionCodec(new)
    assert await rotated.decode([under_a]) == [PLAIN]
    [under_b] = await rotated.encode([PLAIN])
    assert under_b.metadata[KEY_ID] == b"b"
    with pytest.raises(KeyringError, match="unknown key 'b'"):
        await EncryptionCodec(old).decode([under_b])


async def test_plain_payloads_pass_through_and_tampering_is_detected() -> None:
    codec = EncryptionCodec(Keyring.generate("a"))
    assert await codec.decode([PLAIN]) == [PLAIN]
    [sealed] = await codec.encode([PLAIN])
    flipped = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])  # always a different byte
    tampered = Payload(metadata=dict(sealed.metadata), data=flipped)
    with pytest.raises(InvalidTag):
        await codec.decode([tampered])


def test_keyring_parsing_and_errors() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    ring = Keyring.parse(f"k1:{key},k2:{key}", None)
    assert ring.current == "k2"
    with pytest.raises(KeyringError, match="32"):
        Keyring.parse("k1:" + base64.b64encode(b"short").decode(), None)
    with pytest.raises(KeyringError, match="not among"):
        Keyring.parse(f"k1:{key}", "k9")


def test_development_generates_a_private_key_file_and_production_refuses(tmp_path: Path) -> None:
    ring = keyring_for(Settings(state_dir=tmp_path))
    path = tmp_path / "codec-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring_for(Settings(state_dir=tmp_path)) == ring  # generated once, then reused
    with pytest.raises(StackError, match="no payload encryption key is configured"):
        keyring_for(Settings(state_dir=tmp_path / "prod", environment="production"))


def bound(keyring: Keyring, workflow_id: str, namespace: str = "default") -> EncryptionCodec:
    from temporalio.converter import WorkflowSerializationContext

    codec = EncryptionCodec(keyring)
    return codec.with_context(
        WorkflowSerializationContext(namespace=namespace, workflow_id=workflow_id)
    )


async def test_a_payload_moved_to_another_workflow_is_refused_and_the_codec_server_reads_it() -> (
    None
):
    """Issue 18 item 12: ciphertexts are bound to their workflow."""
    ring = Keyring.generate("a")
    [sealed] = await bound(ring, "transition-aaaa").encode([PLAIN])
    assert await bound(ring, "transition-aaaa").decode([sealed]) == [PLAIN]
    with pytest.raises(KeyringError, match="another workflow"):
        await bound(ring, "transition-bbbb").decode([sealed])
    replayed = bound(ring, "transition-aaaa", namespace="ReplayNamespace")  # a Replayer's
    assert await replayed.decode([sealed]) == [PLAIN]
    assert await EncryptionCodec(ring).decode([sealed]) == [PLAIN]  # no context: the UI's
    relabelled = Payload(
        metadata={**sealed.metadata, "carebridge-bound-to": b"transition-bbbb"},
        data=sealed.data,
    )
    with pytest.raises(InvalidTag):  # the binding is authenticated: rewriting it breaks it
        await bound(ring, "transition-bbbb").decode([relabelled])


async def test_a_schedule_payload_decodes_in_the_workflow_it_starts() -> None:
    ring = Keyring.generate("a")
    [sealed] = await bound(ring, "carebridge-digest").encode([PLAIN])
    started = bound(ring, "carebridge-digest-2031-01-06T12:30:00Z")
    assert await started.decode([sealed]) == [PLAIN]


async def test_production_refuses_unencrypted_payloads() -> None:
    strict = EncryptionCodec(Keyring.generate("a"), accept_plaintext=False)
    with pytest.raises(ValueError, match="unencrypted"):
        await strict.decode([PLAIN])


def test_a_keyring_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    Keyring.generate("a").save(path)
    assert Keyring.load(path).current == "a"
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        Keyring.load(path)


async def test_the_converter_bound_to_a_workflow_shares_its_payload_converter() -> None:
    """The SDK binds the converter to every payload's workflow; the bound one encrypts for
    that workflow and reuses the converter's parts rather than building them again."""
    from temporalio.converter import WorkflowSerializationContext

    from workers.runtime.temporal import data_converter

    converter = data_converter(Keyring.generate("a"))
    context = WorkflowSerializationContext(namespace="default", workflow_id="transition-aaaa")
    bound_converter = converter.with_context(context)
    assert bound_converter is not converter
    assert bound_converter.payload_converter is converter.payload_converter
    assert bound_converter.failure_converter is converter.failure_converter
    [sealed] = await bound_converter.encode([{"mrn": "100234"}])
    assert sealed.metadata["carebridge-bound-to"] == b"transition-aaaa"
    assert await bound_converter.decode([sealed]) == [{"mrn": "100234"}]
    other = converter.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="transition-bbbb")
    )
    with pytest.raises(KeyringError, match="another workflow"):
        await other.decode([sealed])
    assert bound_converter.with_context(context) is bound_converter  # bound already
    assert converter.with_context(context) is bound_converter  # built once a workflow
