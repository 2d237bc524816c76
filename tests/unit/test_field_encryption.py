"""PHI at rest (store/encryption.py): sealed values carry their key id, open only in their
place, survive rotation; blind indexes match equal normalised values and nothing else."""

from __future__ import annotations

import os
from datetime import date

import pytest

from store.encryption import (
    BlindIndex,
    FieldCipher,
    SealError,
    key_id_of,
    name_prefixes,
    name_tokens,
    normalise_phone,
)

KEY_A, KEY_B = os.urandom(32), os.urandom(32)


def test_a_sealed_value_opens_in_its_place_only_and_hides_the_plaintext() -> None:
    cipher = FieldCipher({"a": KEY_A}, "a")
    sealed = cipher.seal(b"GARCIA^MARIA", "patients\x1fk1")
    assert b"GARCIA" not in sealed and key_id_of(sealed) == "a"
    assert cipher.open(sealed, "patients\x1fk1") == b"GARCIA^MARIA"
    with pytest.raises(SealError):
        cipher.open(sealed, "patients\x1fk2")  # copied into another row
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        cipher.open(tampered, "patients\x1fk1")


def test_rotation_reads_old_values_and_reseals_under_the_current_key() -> None:
    old = FieldCipher({"a": KEY_A}, "a").seal_json({"mrn": "M1"}, "ctx")
    rotated = FieldCipher({"a": KEY_A, "b": KEY_B}, "b")
    assert not rotated.is_current(old)
    resealed = rotated.reseal(old, "ctx")
    assert key_id_of(resealed) == "b" and rotated.open_json(resealed, "ctx") == {"mrn": "M1"}
    with pytest.raises(SealError, match="unknown key"):
        FieldCipher({"b": KEY_B}, "b").open(old, "ctx")
    assert FieldCipher({"b": KEY_B}, "b").open_json(resealed, "ctx") == {"mrn": "M1"}


def test_blind_index_matches_equal_values_under_one_secret_only() -> None:
    index = BlindIndex("secret-one")
    assert index.digest("mrn", "M1") == index.digest("mrn", "M1")
    assert index.digest("mrn", "M1") != index.digest("phone", "M1")
    assert index.digest("mrn", "M1") != BlindIndex("secret-two").digest("mrn", "M1")
    assert index.digest("birth_date", date(1950, 3, 9).isoformat()) == index.digest(
        "birth_date", "1950-03-09"
    )


def test_names_and_phones_normalise_as_a_search_compares_them() -> None:
    assert name_tokens("O'Brien-Núñez, María") == ["OBRIEN", "NUNEZ", "MARIA"]
    assert {"GA", "GAR", "GARCIA"} <= set(name_prefixes("García"))
    assert "G" not in name_prefixes("García")
    assert normalise_phone("+1 (413) 555-0143") == normalise_phone("413.555.0143") == "4135550143"
    assert normalise_phone("12") == ""
