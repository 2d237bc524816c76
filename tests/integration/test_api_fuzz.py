"""schemathesis against the running API's OpenAPI document: generated requests for every
operation; none may get a 5xx."""

from __future__ import annotations

import asyncio

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.integration.conftest import RunningStack


def fuzz(base_url: str, examples: int, auth: dict[str, str]) -> list[str]:
    """Runs in a thread: the stack's event loop keeps serving meanwhile. Every request (the
    schema's too) carries `auth`, so generated requests reach the handlers."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=auth)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, timeout=30, headers=auth)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        check()
    return failures


async def test_no_generated_request_gets_a_server_error(stack: RunningStack) -> None:
    base_url = str(stack.http.base_url).rstrip("/")
    auth = {"Authorization": stack.http.headers["Authorization"]}  # the development admin's
    failures = await asyncio.to_thread(fuzz, base_url, 25, auth)
    assert failures == []
