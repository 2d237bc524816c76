"""Production refuses to run on the public development key secret or a short one (issue 18
item 1): every command stops with one line that names CAREBRIDGE_KEY_SECRET."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from workers.cli import app
from workers.settings import get_settings

runner = CliRunner()
STRONG = "k" * 40


def invoke(*args: str, **env: str) -> tuple[int, str]:
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, list(args), env={"CAREBRIDGE_ENVIRONMENT": "production", **env})
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "secret",
    [None, "carebridge-dev-only-secret", "short-secret", "REPLACE-ME-with-a-long-random-secret"],
)
def test_production_refuses_the_default_or_a_short_key_secret(secret: str | None) -> None:
    env = {"CAREBRIDGE_KEY_SECRET": secret} if secret is not None else {}
    code, output = invoke("api", **env)
    assert code == 1
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "CAREBRIDGE_KEY_SECRET" in lines[0], output


def test_a_strong_key_secret_passes_that_check() -> None:
    code, output = invoke("example", "a03", CAREBRIDGE_KEY_SECRET=STRONG)
    assert code == 0, output
    assert output.startswith("MSH|")


def test_development_keeps_its_default() -> None:
    get_settings.cache_clear()
    try:
        result = runner.invoke(
            app, ["example", "a03"], env={"CAREBRIDGE_ENVIRONMENT": "development"}
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
