"""PHI at rest: values sealed by the application before they reach PostgreSQL, and keyed
blind indexes that let an exact-match search find a row without decrypting the table.

A sealed value is AES-256-GCM under the same keyring as the Temporal payload codec: it
carries the id of the key that sealed it (so keys rotate: old values open with any known key,
new ones are sealed with the current one, and `reencrypt` moves a row to the current key),
and is bound to its place (`context`, e.g. the table and the row's opaque key) as
authenticated data, so a value copied into another row does not open.

A blind index is an HMAC of a normalised value (an MRN, a birth date, phone digits, a name
token or a prefix of one) under a key derived from the site's key secret: equal inputs give
equal digests, and the digest says nothing without the secret. It does not rotate with the
keyring (the keyring protects the values; the secret already keys every transition id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
NONCE_BYTES = 12
MIN_PREFIX = 2  # a one-letter prefix would list half the registry
MAX_PREFIX = 12


class SealError(ValueError):
    """A sealed value that cannot be opened: unknown key, wrong place, or tampered."""


class FieldCipher:
    """Seals and opens PHI values (bytes, text or JSON) under a keyring."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise SealError(f"the current key {current!r} is not among the keys")
        self.current = current
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    def seal(self, plaintext: bytes, context: str) -> bytes:
        key_id = self.current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext, _aad(key_id, context))
        return bytes([FORMAT_VERSION, len(key_id)]) + key_id + nonce + sealed

    def open(self, sealed: bytes, context: str) -> bytes:
        key_id = key_id_of(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SealError(f"sealed with unknown key {key_id!r}")
        start = 2 + len(key_id.encode())
        nonce, body = sealed[start : start + NONCE_BYTES], sealed[start + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, body, _aad(key_id.encode(), context))
        except Exception:  # InvalidTag: another row's value, or altered
            raise SealError("a sealed value does not open in this place") from None

    def seal_json(self, value: Any, context: str) -> bytes:
        return self.seal(json.dumps(value, separators=(",", ":"), default=str).encode(), context)

    def open_json(self, sealed: bytes, context: str) -> Any:
        return json.loads(self.open(sealed, context))

    def is_current(self, sealed: bytes) -> bool:
        """Sealed under the current key (else `reencrypt` has work to do)."""
        return key_id_of(sealed) == self.current

    def reseal(self, sealed: bytes, context: str) -> bytes:
        """The same value under the current key."""
        return self.seal(self.open(sealed, context), context)


def key_id_of(sealed: bytes) -> str:
    if len(sealed) < 2 or sealed[0] != FORMAT_VERSION:
        raise SealError("not a sealed value")
    return sealed[2 : 2 + sealed[1]].decode()


def _aad(key_id: bytes, context: str) -> bytes:
    return key_id + b"\x1f" + context.encode()


class BlindIndex:
    """Keyed digests of normalised values, by kind (mrn, birth_date, phone, name)."""

    def __init__(self, key_secret: str) -> None:
        self._key = hmac.new(
            key_secret.encode(), b"carebridge blind index", hashlib.sha256
        ).digest()

    def digest(self, kind: str, normalised: str) -> bytes:
        material = f"{kind}\x1f{normalised}".encode()
        return hmac.new(self._key, material, hashlib.sha256).digest()[:16]

    def digests(self, kind: str, values: Iterable[str]) -> list[bytes]:
        return [self.digest(kind, v) for v in dict.fromkeys(values) if v]


def normalise_identifier(value: str) -> str:
    """An MRN or other identifier as compared: trimmed, upper case, no inner spaces."""
    return re.sub(r"\s+", "", value).upper()


def normalise_phone(value: str) -> str:
    """The digits that identify a number: its last 10 (a NANP number with or without the
    leading 1), or all of a shorter one; "" for fewer than 7."""
    digits = re.sub(r"\D", "", value)
    return digits[-10:] if len(digits) >= 7 else ""


def name_tokens(value: str) -> list[str]:
    """A name as the tokens a search compares: accents folded, upper case, letters and
    digits only ("O'Brien-Núñez" -> OBRIEN, NUNEZ)."""
    folded = unicodedata.normalize("NFKD", value)
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    tokens = re.split(r"[\s\-,.^]+", ascii_only.upper())
    return [t for t in (re.sub(r"[^A-Z0-9]", "", token) for token in tokens) if t]


def name_prefixes(value: str) -> list[str]:
    """Every token and its prefixes from MIN_PREFIX letters on (a search by "GARC" finds
    GARCIA): what the registry indexes for a name."""
    out: list[str] = []
    for token in name_tokens(value):
        out.extend(token[:n] for n in range(MIN_PREFIX, min(len(token), MAX_PREFIX) + 1))
        if len(token) > MAX_PREFIX or len(token) < MIN_PREFIX:
            out.append(token)
    return list(dict.fromkeys(out))


def normalise_birth_date(value: date) -> str:
    return value.isoformat()
