"""Opaque keys: the encounter key and transition id derived from sending facility + visit number.

HMAC-SHA256 with a site secret, so that neither the id nor the Temporal workflow id reveals
the visit number, and a short visit number cannot be recovered by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac

TRANSITION_ID_LENGTH = 24  # hex characters: 96 bits, collision-free at any hospital's volume


def encounter_key(secret: str, sending_facility: str, visit_number: str) -> str:
    material = f"{sending_facility.strip().upper()}\x1f{visit_number.strip()}".encode()
    return hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()


def patient_key(secret: str, assigning_authority: str, identifier: str) -> str:
    """Opaque key of one PID-3 identifier (authority + id): joins a patient's encounters."""
    material = f"patient\x1f{assigning_authority.strip().upper()}\x1f{identifier.strip()}"
    return hmac.new(secret.encode(), material.encode(), hashlib.sha256).hexdigest()


def transition_id(key: str) -> str:
    return key[:TRANSITION_ID_LENGTH]


def workflow_id(transition: str) -> str:
    return f"transition-{transition}"
