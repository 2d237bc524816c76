"""The codec server the Temporal Web UI calls to show decrypted payloads (and to encrypt
what an operator sends from the UI). Same JSON shape as Temporal's reference codec server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Depends, Request, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads

from workers.api.auth import Role, require
from workers.api.common import Svc, problem
from workers.runtime.codec import BOUND_TO, EncryptionCodec
from workers.runtime.services import Services
from workers.runtime.settings import Settings

router = APIRouter(
    prefix="/codec",
    tags=["codec"],
    dependencies=[Depends(require(Role.OPERATOR, Role.SUPERVISOR))],
)


def codec_origins(settings: Settings) -> list[str]:
    """The origins allowed to call /codec: the embedded Temporal UI's in development only,
    plus CAREBRIDGE_CORS_ORIGINS (never `*`: the settings refuse it)."""
    local = (
        [
            f"http://127.0.0.1:{settings.temporal_ui_port}",
            f"http://localhost:{settings.temporal_ui_port}",
        ]
        if settings.environment == "development"
        else []
    )
    return [*local, *settings.cors_origins_list]


class CodecCors(CORSMiddleware):
    """CORS for the codec endpoint alone (the Temporal UI calls it from its own origin); every
    other route answers no cross-origin request, so a page elsewhere cannot use a logged-in
    browser against the API."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        super().__init__(
            app,
            allow_origins=codec_origins(settings),
            allow_methods=["POST"],
            allow_headers=["Content-Type", "Authorization", "X-Namespace"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith(router.prefix):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _apply(
    request: Request, transform: Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as exc:
        return problem(422, "Invalid request", f"not a Payloads JSON document: {exc}")
    # Whose data this is: the workflows the payloads are bound to (the audit row names them).
    bound = {p.metadata[BOUND_TO].decode() for p in payloads.payloads if BOUND_TO in p.metadata}
    if bound:
        request.state.audit_resource = ",".join(sorted(bound))
    try:
        result = Payloads(payloads=await transform(payloads.payloads))
    except Exception as exc:  # unknown key, tampered payload: say so, never 500
        return problem(422, "Cannot transform payloads", type(exc).__name__)
    return Response(json_format.MessageToJson(result), media_type="application/json")


def _codec(svc: Services) -> EncryptionCodec:
    codec = svc.client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    return codec


@router.post("/encode")
async def encode(request: Request, svc: Svc) -> Response:
    return await _apply(request, _codec(svc).encode)


@router.post("/decode")
async def decode(request: Request, svc: Svc) -> Response:
    return await _apply(request, _codec(svc).decode)
