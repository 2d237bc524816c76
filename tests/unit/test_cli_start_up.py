"""The CLI starts without loading what only its commands need (Temporal's SDK, FastAPI,
asyncpg, uvicorn, httpx): `carebridge --help` and `carebridge list --help` answer without
them, and each command imports what it runs in its own body."""

from __future__ import annotations

import subprocess
import sys

from workers.api.auth import Role
from workers.cli.security import ROLES

HEAVY = ("temporalio", "fastapi", "asyncpg", "uvicorn", "httpx", "workflows.transition")


def loaded_after(*argv: str) -> set[str]:
    """The heavy modules a fresh interpreter has loaded after running the CLI with argv."""
    script = (
        "import sys\n"
        "from workers.cli.main import app\n"
        "try:\n"
        f"    app({list(argv)!r}, prog_name='carebridge')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stderr.strip().splitlines()[-1].removeprefix("loaded:")
    return set(filter(None, loaded.split(",")))


def test_help_loads_none_of_the_heavy_modules() -> None:
    assert loaded_after("--help") == set()


def test_a_commands_help_loads_none_of_them_either() -> None:
    assert loaded_after("list", "--help") == set()
    assert loaded_after("snooze", "--help") == set()


def test_the_token_roles_offered_are_the_api_roles_people_may_hold() -> None:
    assert [role.value for role in Role if role != Role.DEVELOPER] == ROLES
