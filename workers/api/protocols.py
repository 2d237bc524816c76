"""The protocol library over HTTP: every protocol's latest version, as loaded and validated
from the protocol folder (schemas/protocol_library.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from workers.api.auth import READERS, Role, require
from workers.api.common import Svc

router = APIRouter(tags=["transitions"])  # the group it has always had in /docs


@router.get("/protocols", dependencies=[Depends(require(*READERS, Role.AUDITOR))])
async def list_protocols(svc: Svc) -> list[dict[str, Any]]:
    """Every protocol (latest version) and the site's selection table."""
    return [p.model_dump(mode="json") for p in svc.library.all_latest()]
