"""Configurations that must not run (issue 18): production on the public development key
secret or a short one (every command stops with one line naming CAREBRIDGE_KEY_SECRET), and
an OIDC issuer without an audience or with a JWKS URL that is not https."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from workers.cli.main import app
from workers.runtime.settings import Settings, get_settings

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


@pytest.mark.parametrize(
    ("oidc", "problem"),
    [
        ({"oidc_jwks_url": "https://idp.example.org/jwks"}, "CAREBRIDGE_OIDC_AUDIENCE"),
        (
            {"oidc_audience": "carebridge", "oidc_jwks_url": "http://idp.example.org/jwks"},
            "https",
        ),
        (
            {
                "oidc_audience": "carebridge",
                "oidc_jwks_url": "http://127.0.0.1:9000/jwks",
                "environment": "production",
            },
            "https",
        ),
    ],
)
def test_an_oidc_issuer_needs_an_audience_and_an_https_jwks_url(
    oidc: dict[str, str], problem: str
) -> None:
    """Issue 18 item 6: else a token minted for another application would be accepted."""
    with pytest.raises(ValidationError, match=problem):
        Settings(oidc_issuer="https://idp.example.org", **oidc)  # type: ignore[arg-type]


def test_a_complete_oidc_configuration_is_accepted() -> None:
    settings = Settings(
        oidc_issuer="https://idp.example.org",
        oidc_audience="carebridge",
        oidc_jwks_url="https://idp.example.org/jwks",
    )
    assert settings.oidc_audience == "carebridge"


def test_the_database_dsn_and_its_password_are_never_printed() -> None:
    """Issue 18 item 15: the DSN is a secret (it holds the password)."""
    settings = Settings(database_url="postgresql://carebridge:hunter2@db/carebridge")  # type: ignore[arg-type]
    assert "hunter2" not in str(settings) and "hunter2" not in repr(settings)
    assert settings.database_url is not None
    assert "hunter2" in settings.database_url.get_secret_value()
