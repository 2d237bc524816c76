"""Bodies are counted as they stream (issue 18 item 8): a chunked body without Content-Length
over the limit is cut with 413 (before, only a declared length was checked and a chunked body
was read whole), on /codec too, and the 413 carries the security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.integration.conftest import RunningStack, bearer

LIMIT = 4096


async def chunks(total: int, size: int = 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def limited_client(stack: RunningStack) -> httpx.AsyncClient:
    from workers.http_server import create_app
    from workers.runtime.services import Services

    settings = stack.services.settings.model_copy(update={"max_message_bytes": LIMIT})
    services = Services.build(settings, stack.services.pool, stack.services.client)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(services)),
        base_url="http://api",
        headers=await bearer(stack.services.pool, "dev-admin"),  # every route admits it
    )


async def test_a_chunked_body_over_the_limit_is_cut_with_413_and_the_security_headers(
    stack: RunningStack,
) -> None:
    async with await limited_client(stack) as http:
        for path, kind in (
            ("/adt", "x-application/hl7-v2+er7"),
            ("/codec/decode", "application/json"),
        ):
            response = await http.post(
                path, content=chunks(LIMIT * 4), headers={"Content-Type": kind}
            )
            assert response.status_code == 413, (path, response.text)
            assert response.headers.get("x-content-type-options") == "nosniff"
        small = await http.post(
            "/codec/decode",
            content=b'{"payloads": []}',
            headers={"Content-Type": "application/json"},
        )
    assert small.status_code == 200, small.text
