"""CORS is for the codec endpoint alone, never with localhost origins in production, never `*`
(issue 18 item 4): before, every route answered cross-origin requests with credentials."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from tests.integration.conftest import RunningStack
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


async def test_only_the_codec_endpoint_answers_the_temporal_ui_origin(
    stack: RunningStack,
) -> None:
    ui = f"http://localhost:{stack.services.settings.temporal_ui_port}"
    codec = await stack.http.options("/codec/decode", headers=preflight(ui))
    assert codec.headers.get("access-control-allow-origin") == ui
    for path in ("/transitions", "/adt", "/messages"):
        other = await stack.http.options(path, headers=preflight(ui))
        assert "access-control-allow-origin" not in other.headers, path
    listed = await stack.http.get("/healthz", headers={"Origin": ui})
    assert "access-control-allow-origin" not in listed.headers


async def test_production_allows_only_the_configured_origins(stack: RunningStack) -> None:
    settings = stack.services.settings.model_copy(
        update={"environment": "production", "cors_origins": "https://temporal.example.org"}
    )
    services = Services.build(settings, stack.services.pool, stack.services.client)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        local = f"http://localhost:{settings.temporal_ui_port}"
        refused = await http.options("/codec/decode", headers=preflight(local))
        allowed = await http.options(
            "/codec/decode", headers=preflight("https://temporal.example.org")
        )
    assert "access-control-allow-origin" not in refused.headers
    assert allowed.headers.get("access-control-allow-origin") == "https://temporal.example.org"


def test_a_wildcard_origin_is_refused() -> None:
    with pytest.raises(ValidationError, match="not \\*"):
        Settings(cors_origins="https://a.example.org, *")
